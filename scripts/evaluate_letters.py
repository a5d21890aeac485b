"""Near-domain inputs for the digit-class claim: letters drawn like digits (font-rendered in
matplotlib's DejaVu fonts, and hand-drawn strokes of H, X, K, A, E, T, L, V, N, Z, Y, F),
centred as MNIST digits are. How many pass the domain check, how many the classifier reads
as a digit with the confidence a claim needs, and how many each candidate check rejects when
it is calibrated so that at most 5% of held-out digits lose their claim (two-fold: the
threshold from one half of the held-out digits, the loss measured on the other half).

    python scripts/evaluate_letters.py           # docs/letters.json and docs/DOMAIN.md's block
    python scripts/evaluate_letters.py --check   # exit 1 if either is out of date

Candidates: the classifier's largest softmax probability, its energy (-logsumexp of the
logits; Liu et al. 2020), the distance to the 5th nearest held-out digit in its penultimate
features (Sun et al. 2022; the other half of the held-out digits as the neighbours), and the
class-conditional Mahalanobis distance in those features (Lee et al. 2018; class means and a
shared covariance from the prior's samples and the other half of the held-out digits).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
JSON = ROOT / "docs" / "letters.json"
DOC = ROOT / "docs" / "DOMAIN.md"
BLOCK = "letters"
LOSS = 0.05  # held-out digits that may lose their claim
STROKES = {
    "H": [((0, 0), (0, 1)), ((1, 0), (1, 1)), ((0, 0.5), (1, 0.5))],
    "X": [((0, 0), (1, 1)), ((1, 0), (0, 1))],
    "K": [((0, 0), (0, 1)), ((1, 0), (0, 0.5)), ((0, 0.5), (1, 1))],
    "A": [((0, 1), (0.5, 0)), ((0.5, 0), (1, 1)), ((0.25, 0.55), (0.75, 0.55))],
    "E": [((0, 0), (0, 1)), ((0, 0), (1, 0)), ((0, 0.5), (0.8, 0.5)), ((0, 1), (1, 1))],
    "T": [((0, 0), (1, 0)), ((0.5, 0), (0.5, 1))],
    "L": [((0, 0), (0, 1)), ((0, 1), (1, 1))],
    "V": [((0, 0), (0.5, 1)), ((0.5, 1), (1, 0))],
    "N": [((0, 1), (0, 0)), ((0, 0), (1, 1)), ((1, 1), (1, 0))],
    "Z": [((0, 0), (1, 0)), ((1, 0), (0, 1)), ((0, 1), (1, 1))],
    "Y": [((0, 0), (0.5, 0.5)), ((1, 0), (0.5, 0.5)), ((0.5, 0.5), (0.5, 1))],
    "F": [((0, 0), (0, 1)), ((0, 0), (1, 0)), ((0, 0.5), (0.8, 0.5))],
}


def _centre(img: Image.Image) -> np.ndarray:
    """As MNIST: the ink fitted in a 20 x 20 box, its centre of mass at the centre of 28 x 28,
    padded to 32 x 32; values in [0, 1]."""
    a = np.asarray(img, dtype=np.float64)
    ys, xs = np.nonzero(a > 20)
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = a.shape
    s = 20 / max(h, w)
    b = np.asarray(
        Image.fromarray(a.astype(np.uint8)).resize(
            (max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS
        ),
        dtype=np.float64,
    )
    h, w = b.shape
    cy, cx = np.array(np.nonzero(b > 0)).mean(1)
    oy = min(max(int(round(14 - cy)), 0), 28 - h)
    ox = min(max(int(round(14 - cx)), 0), 28 - w)
    out = np.zeros((28, 28))
    out[oy : oy + h, ox : ox + w] = b
    return np.pad(out, 2) / 255


def letters(seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """(images (N, 1, 32, 32), how each was made)."""
    import matplotlib

    fontdir = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    fonts = [f for f in sorted(fontdir.glob("DejaVu*.ttf")) if "Display" not in f.name]
    out, kinds = [], []
    for f in fonts:
        for ch in "AEHKXTLVNZYF":
            img = Image.new("L", (96, 96))
            ImageDraw.Draw(img).text((10, 0), ch, fill=255, font=ImageFont.truetype(str(f), 72))
            out.append(_centre(img))
            kinds.append(f"font {ch}")
    rng = np.random.default_rng(seed)
    for ch, strokes in STROKES.items():
        for _ in range(12):
            img = Image.new("L", (96, 96))
            d = ImageDraw.Draw(img)
            width = int(rng.integers(6, 11))
            sx, sy = rng.uniform(40, 60), rng.uniform(55, 70)
            for a, b in strokes:
                jit = lambda p: (
                    18 + p[0] * sx + rng.normal(0, 2.5),
                    12 + p[1] * sy + rng.normal(0, 2.5),
                )
                d.line([jit(a), jit(b)], fill=255, width=width)
            out.append(_centre(img.rotate(rng.uniform(-12, 12))))
            kinds.append(f"drawn {ch}")
    return torch.tensor(np.array(out), dtype=torch.float32)[:, None], kinds


def compute() -> dict:
    from audit_engine.attacker.attributes import classifier_for, classify
    from audit_engine.attacker.priors import load_prior
    from audit_engine.audit.reference import reference_for, typicality
    from audit_engine.audit.verdict import ATTRIBUTE_CONFIDENCE, domain_check

    torch.manual_seed(0)
    prior = load_prior(device="cpu", dtype=torch.float32)
    ref, clf = reference_for(prior), classifier_for(prior)
    held = np.load(prior.folder / "heldout.npz")
    digits = torch.from_numpy(held["images"]).float().div(255).reshape(-1, 1, 32, 32)
    lets, kinds = letters()
    inside = np.array([domain_check(ref, p[None]).in_domain for p in typicality(prior, lets)])
    label, conf = classify(clf, lets)
    read = conf.numpy() >= ATTRIBUTE_CONFIDENCE
    claimed = inside & read  # what would get a class claim today

    def features(x):
        with torch.inference_mode():
            h = clf.features(x * 2 - 1).flatten(1)
            h = clf.head[2](clf.head[1](h))
            return h, clf.head[3](h)

    def mahalanobis(fit, lab):
        mus = torch.stack([fit[lab == c].mean(0) for c in range(10)])
        cov = torch.cov((fit - mus[lab]).T)
        prec = torch.linalg.inv(cov + 0.01 * cov.diagonal().mean() * torch.eye(fit.shape[1]))
        return lambda f: (
            torch.stack([((f - m) @ prec * (f - m)).sum(1) for m in mus], 1).min(1).values.numpy()
        )

    rows = {}
    for fold in (0, 1):
        half = np.arange(len(digits)) % 2 == fold  # neighbours / fit; the rest calibrate and judge
        cal = digits[~half]
        fh, _ = features(digits[half])
        fs, _ = features(ref.samples.float())
        fc, lc = features(cal)
        fl, ll = features(lets)
        norm = torch.nn.functional.normalize
        knn = lambda f: (
            (1 - norm(f, dim=1) @ norm(fh, dim=1).T).topk(5, largest=False).values[:, -1].numpy()
        )
        fit = torch.cat([fs, fh])
        maha = mahalanobis(fit, classify(clf, torch.cat([ref.samples.float(), digits[half]]))[0])
        scores = {
            "largest softmax probability": (
                -lc.softmax(1).max(1).values.numpy(),
                -ll.softmax(1).max(1).values.numpy(),
            ),
            "energy": (-torch.logsumexp(lc, 1).numpy(), -torch.logsumexp(ll, 1).numpy()),
            "5th nearest digit in the classifier's features": (knn(fc), knn(fl)),
            "class-conditional Mahalanobis in the classifier's features": (maha(fc), maha(fl)),
        }
        for name, (sc, sl) in scores.items():
            a = np.arange(len(sc)) % 2 == 0  # calibrate on a, judge digits b
            thr = np.percentile(sc[a], 100 * (1 - LOSS))
            r = rows.setdefault(name, {"digits_lost": [], "letters_rejected": []})
            r["digits_lost"].append(float(np.mean(sc[~a] > thr)))
            r["letters_rejected"].append(float(np.mean(sl[claimed] > thr)))
    r12 = lambda v: float(f"{v:.12g}")
    return {
        "letters": len(lets),
        "inside_domain": r12(inside.mean()),
        "read_confidently": r12(read.mean()),
        "would_be_claimed": r12(claimed.mean()),
        "confidence": ATTRIBUTE_CONFIDENCE,
        "loss_allowed": LOSS,
        "candidates": {
            k: {
                "digits_lost": r12(np.mean(v["digits_lost"])),
                "letters_rejected": r12(np.mean(v["letters_rejected"])),
            }
            for k, v in rows.items()
        },
    }


def table(d: dict) -> str:
    lines = [
        f"{d['letters']} letters drawn like digits: {d['inside_domain']:.0%} pass the domain "
        f"check, {d['read_confidently']:.0%} are read as a digit with confidence at least "
        f"{d['confidence']:g}, and {d['would_be_claimed']:.0%} would get a class claim "
        "without a further check.",
        "",
        f"| check (calibrated so that at most {d['loss_allowed']:.0%} of held-out digits lose "
        "their claim) | held-out digits losing their claim | letters (of those above) "
        "rejected |",
        "|---|---|---|",
    ]
    for name, r in d["candidates"].items():
        lines.append(f"| {name} | {r['digits_lost']:.1%} | {r['letters_rejected']:.0%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    os.environ.setdefault("AUDIT_DTYPE", "float32")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    data = compute()
    from audit_engine.docblocks import publish

    return publish(
        data, table(data), json_path=JSON, doc_path=DOC, block=BLOCK, check=args.check, every=False
    )


if __name__ == "__main__":
    sys.exit(main())
