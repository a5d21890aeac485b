"""Two embedded-prior candidates side by side, in one run, on the measures of issue 18.

    python scripts/compare_priors.py --a assets/prior-mnist32 --b /work/train/prior-stage3 \
        --out docs/prior-comparison.json

For each prior:
1. sample quality: N unconditional samples (DDPM, every step) read by an independent
   classifier (scikit-learn SVC on raw pixels, trained on the prior's training split):
   the fraction classified with probability > 0.9, against the same fraction on the
   held-out digits; the class proportions; the Frechet distance between samples and
   held-out digits in the feature space of the project's digit classifier (its 128-unit
   penultimate layer);
2. reconstruction: on the held-out digits, the honest-verdict rule of the audit
   (identification among 10 candidates, attribute against the prior's own class rate,
   8 tries) at mu = 2, 5, 10: the fraction judged "recognisable" (and "partly"), the
   fraction with the attribute revealed;
3. memorization: for each sample, the L2 distance to its nearest training digit and the
   ratio to the second nearest (a ratio below 1/3 marks a near-copy, as in Carlini et al.
   2023), against the same distances for held-out digits;
4. speed: the dashboard's first audit (9 budgets, default tries), median of 3, measured
   for both priors in this run; weight file sizes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit_engine import dashboard as db  # noqa: E402
from audit_engine.attributes import load_classifier  # noqa: E402
from audit_engine.audit import run_audit  # noqa: E402
from audit_engine.priors import load_prior  # noqa: E402
from audit_engine.reconstruct import sample  # noqa: E402

MUS = (2.0, 5.0, 10.0)


def training_digits(prior_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prior's training split (uint8 (N, 32, 32), labels), rebuilt as train_prior.py splits."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_prior import load_digits

    digits, labels = load_digits()
    held = set(json.loads((prior_dir / "split.json").read_text())["test_indices"])
    keep = np.array([i for i in range(len(digits)) if i not in held])
    return digits[keep], labels[keep]


def svc(train_x: np.ndarray, train_y: np.ndarray, calibration: str):
    """The independent classifier: an RBF SVC on raw pixels with Platt-scaled probabilities,
    either libsvm's own (``svc``: SVC(probability=True), what issue 18 measured with) or
    scikit-learn's CalibratedClassifierCV (``platt-cv``), whose probabilities are less
    confident; both are reported because the confident-sample rate depends on it."""
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    x = train_x.reshape(len(train_x), -1) / 255.0
    if calibration == "platt-cv":
        return CalibratedClassifierCV(SVC(random_state=0), ensemble=False).fit(x, train_y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability= is deprecated in 1.9
        return SVC(probability=True, random_state=0).fit(x, train_y)


def features(clf, x: torch.Tensor) -> np.ndarray:
    """The digit classifier's penultimate (128-unit) activations."""
    with torch.inference_mode():
        h = clf.features(x.float().clamp(0, 1) * 2 - 1).flatten(1)
        for layer in list(clf.head)[:-1]:
            if not isinstance(layer, torch.nn.Dropout):
                h = layer(h)
    return h.numpy().astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * np.real(root)))


def nearest(query: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, second nearest) L2 distances of each query row to the pool rows."""
    q = query.reshape(len(query), -1).astype(np.float64) / 255.0
    p = pool.reshape(len(pool), -1).astype(np.float64) / 255.0
    d2 = (q**2).sum(1)[:, None] - 2 * q @ p.T + (p**2).sum(1)[None, :]
    d = np.sqrt(np.clip(d2, 0, None))
    part = np.partition(d, 1, axis=1)
    return part[:, 0], part[:, 1]


def evaluate(prior_dir: Path, n_samples: int, n_heldout: int, model, train, held) -> dict:
    prior = load_prior(str(prior_dir), device="cpu")
    clf = load_classifier(prior_dir)
    out = {"prior": str(prior_dir), "parameters": prior.num_parameters,
           "weights_mb": sum(p.stat().st_size for p in (prior_dir / "unet").glob("*")) / 2**20}
    t = time.perf_counter()
    s = sample(prior, n_samples, sampler="ddpm", seed=0)
    out["sampling_s"] = time.perf_counter() - t
    s_u8 = s.clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0].numpy()
    proba = model.predict_proba(s_u8.reshape(n_samples, -1) / 255.0)
    labels = proba.argmax(1)
    out["svc_confident_samples"] = float((proba.max(1) > 0.9).mean())
    out["class_proportions"] = np.bincount(labels, minlength=10).tolist()
    out["class_proportion_max_deviation"] = float(np.abs(np.bincount(labels, minlength=10)
                                                         / n_samples - 0.1).max())
    held_x = torch.from_numpy(held[0]).float().div(255)[:, None]
    out["frechet_classifier_features"] = frechet(features(clf, s), features(clf, held_x))
    d1, d2 = nearest(s_u8, train[0])
    h1, h2 = nearest(held[0], train[0])
    out["memorization"] = {
        "samples_near_copies": float((d1 < d2 / 3).mean()),
        "heldout_near_copies": float((h1 < h2 / 3).mean()),
        "samples_nearest_train_median": float(np.median(d1)),
        "heldout_nearest_train_median": float(np.median(h1)),
    }
    if n_heldout == 0:  # sample quality, memorization and speed only
        out["first_audit_s_median"] = _first_audit(prior_dir, held_x)
        return out
    rows = {m: {"recognisable": 0, "partly": 0, "attribute": 0, "out_of_domain": 0} for m in MUS}
    t = time.perf_counter()
    for i in range(n_heldout):
        res = run_audit(held_x[i], mus=list(MUS), prior=prior, lpips=None)
        for m in MUS:
            v = res.verdict_at(m)
            if not res.domain["in_domain"]:
                rows[m]["out_of_domain"] += 1
                continue
            rows[m]["recognisable"] += v.verdict == "recognisable"
            rows[m]["partly"] += v.verdict == "partly recognisable"
            rows[m]["attribute"] += bool(v.attribute and v.attribute.revealed)
    out["audit_s_per_image"] = (time.perf_counter() - t) / n_heldout
    out["reconstruction"] = {str(m): {k: v / n_heldout for k, v in r.items()} | {"n": n_heldout}
                             for m, r in rows.items()}
    out["first_audit_s_median"] = _first_audit(prior_dir, held_x)
    return out


def _first_audit(prior_dir: Path, held_x: torch.Tensor) -> float:
    """The dashboard's first audit (ladder + current budget, default tries), median of 3."""
    times = []
    for k in range(3):
        t = time.perf_counter()
        db.compute_ladder(held_x[k], db.Settings(prior=str(prior_dir)), current_mu=3.0)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", type=Path, default=ROOT / "assets" / "prior-mnist32")
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument("--n-heldout", type=int, default=500,
                    help="held-out digits audited at mu 2, 5, 10 (0: sample quality and speed only)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--calibration", choices=["svc", "platt-cv"], default="svc")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "prior-comparison.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train = training_digits(args.a)
    heldout = np.load(args.a / "heldout.npz")
    held = (heldout["images"], heldout["labels"])  # all of them for sample quality; the
    # first n_heldout for the audits
    model = svc(*train, args.calibration)
    proba = model.predict_proba(held[0].reshape(len(held[0]), -1) / 255.0)
    report = {
        "command": " ".join(["python"] + sys.argv), "calibration": args.calibration,
        "svc_heldout_accuracy": float((proba.argmax(1) == held[1]).mean()),
        "svc_confident_heldout": float((proba.max(1) > 0.9).mean()),
        "n_samples": args.n_samples, "n_heldout": args.n_heldout, "mus": list(MUS),
        "threads": torch.get_num_threads(),
    }
    for key, folder in (("a", args.a), ("b", args.b)):
        print(f"evaluating {folder}", flush=True)
        report[key] = evaluate(folder, args.n_samples, args.n_heldout, model, train, held)
        print(json.dumps(report[key], indent=1), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
