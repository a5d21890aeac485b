"""Measure the domain check (audit_engine/reference.py, verdict.DOMAIN_PERCENTILE) on
in-domain digits and on images outside the embedded prior's domain; write
docs/domain-check.json and the table of docs/DOMAIN.md from the same run.

In-domain rates are measured two-fold: the reference statistics are fitted on one half of
the 500 held-out digits and the other half is judged (then the halves swap), so no digit
judges itself. Out-of-domain sets: photographs (scikit-image's bundled photographs and
random crops of them), a face, printed text (letters and words, both polarities), flat
and smooth images (constant grey levels, gradients).

    python scripts/evaluate_domain.py
    python scripts/evaluate_domain.py --prior /path/to/candidate --json cand.json --no-doc
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from audit_engine.priors import load_prior  # noqa: E402
from audit_engine.reference import Reference, reference_for, typicality  # noqa: E402
from audit_engine.verdict import DOMAIN_FACTOR, DOMAIN_PERCENTILE  # noqa: E402

PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "brick", "grass",
          "hubble_deep_field", "clock", "horse", "immunohistochemistry", "gravel", "retina",
          "cell", "colorwheel", "logo"]
WORDS = ["Hello", "privacy", "AB", "xyz", "Text", "Q", "K", "data", "w", "M", "Audit", "R&D"]


def _photos(rng) -> list[Image.Image]:
    import skimage.data as d

    out = []
    for name in PHOTOS:
        a = getattr(d, name)()
        img = Image.fromarray(a if a.dtype == np.uint8 else (a * 255).astype(np.uint8))
        out.append(img)
        w, h = img.size
        for _ in range(3):  # random square crops of a third to two thirds of the side
            s = int(min(w, h) * rng.uniform(0.33, 0.67))
            x0, y0 = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
            out.append(img.crop((x0, y0, x0 + s, y0 + s)))
    return out


def _faces() -> list[Image.Image]:
    import skimage.data as d

    face = Image.fromarray(d.astronaut()).crop((150, 20, 330, 220))
    return [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face.crop((20, 20, 160, 180)),
            face.convert("L")]


def _text() -> list[Image.Image]:
    out = []
    for word in WORDS:
        for size in (18, 30):
            for dark_on_light in (True, False):
                img = Image.new("L", (96, 96), 255 if dark_on_light else 0)
                ImageDraw.Draw(img).text((6, 30), word, fill=0 if dark_on_light else 255,
                                         font=ImageFont.load_default(size=size))
                out.append(img)
    return out


def _flat() -> list[np.ndarray]:
    out = [np.full((32, 32), v) for v in np.linspace(0, 1, 11)]
    ramp = np.linspace(0, 1, 32)
    out += [np.tile(ramp, (32, 1)), np.tile(ramp, (32, 1)).T, np.outer(ramp, ramp),
            1 - np.tile(ramp, (32, 1))]
    return out


def _perturbed(held: torch.Tensor, rng) -> torch.Tensor:
    """Held-out digits shifted by up to 2 pixels and rotated by up to 10 degrees."""
    out = []
    for x in held:
        img = Image.fromarray((x[0].numpy() * 255).astype(np.uint8))
        img = img.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BILINEAR,
                         translate=tuple(int(v) for v in rng.integers(-2, 3, 2)))
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)[None])
    return torch.stack(out)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default="embedded", help="a prior folder with its reference set "
                    "(scripts/build_reference.py) and held-out digits (default: embedded)")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "domain-check.json")
    ap.add_argument("--no-doc", action="store_true", help="leave docs/DOMAIN.md as it is")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    prior = load_prior(args.prior)
    ref = reference_for(prior)
    held = ref.images
    prof = typicality(prior, held)
    halves = [np.arange(0, len(held), 2), np.arange(1, len(held), 2)]
    flagged = 0
    for a, b in (halves, halves[::-1]):
        half_ref = Reference(images=held[a], samples=ref.samples, profiles=prof[a], source="half")
        flagged += sum(not half_ref.domain(p[None])["in_domain"] for p in prof[b])
    sets = {
        "perturbed held-out digits (shift <= 2 px, rotation <= 10 deg)": _perturbed(held, rng),
        "photographs (18 scikit-image photos and 3 random crops of each)": _photos(rng),
        "face (crops of scikit-image's astronaut)": _faces(),
        "printed text (letters and words, both polarities, 2 sizes)": _text(),
        "flat and smooth images (11 grey levels, 4 gradients)": _flat(),
    }
    rows = [{"set": "held-out digits (two-fold: reference on one half, judged on the other)",
             "in_domain_expected": True, "n": len(held), "flagged": int(flagged)}]
    for name, images in sets.items():
        x = images if isinstance(images, torch.Tensor) else torch.stack(
            [prior.load_image(i) for i in images])
        flags = [not ref.domain(p[None])["in_domain"] for p in typicality(prior, x)]
        rows.append({"set": name, "in_domain_expected": name.startswith("perturbed"),
                     "n": len(x), "flagged": int(sum(flags))})
    for r in rows:
        r["flagged_rate"] = r["flagged"] / r["n"]
    out = {"prior": args.prior, "rule": f"outside when the typicality distance exceeds "
           f"{DOMAIN_FACTOR:g} x the {DOMAIN_PERCENTILE:g}th percentile of the reference images' "
           "distances",
           "rows": rows}
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    table = ["| images | should be | n | flagged outside the domain |", "|---|---|---|---|"]
    table += [f"| {r['set']} | {'in' if r['in_domain_expected'] else 'out'} | {r['n']} | "
              f"{r['flagged']} ({r['flagged_rate']:.1%}) |" for r in rows]
    print("\n".join(table))
    if args.no_doc:
        return
    doc = ROOT / "docs" / "DOMAIN.md"
    text = doc.read_text()
    start, end = "<!-- domain-table:start -->", "<!-- domain-table:end -->"
    doc.write_text(text[:text.index(start) + len(start)] + "\n" + "\n".join(table) + "\n"
                   + text[text.index(end):])


if __name__ == "__main__":
    main()
