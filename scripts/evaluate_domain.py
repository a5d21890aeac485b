"""Measure the domain check (audit_engine/audit/verdict.py domain_check, DOMAIN_PERCENTILE) on
in-domain digits and on images outside the embedded prior's domain; write
docs/domain-check.json and the table of docs/DOMAIN.md from the same run.

In-domain rates are measured two-fold: the reference statistics are fitted on one half of
the 500 held-out digits and the other half is judged (then the halves swap), so no digit
judges itself. Out-of-domain sets: photographs (scikit-image's bundled photographs and
random crops of them), a face, printed text (letters and words, both polarities; then other
words, sizes and places, white on black, the harder case), flat and smooth images (constant
grey levels, gradients), dark digits on white, noise. Geometric outlines (white strokes on
black, like a 0 or a 1) are reported but could be either.

    python scripts/evaluate_domain.py
    python scripts/evaluate_domain.py --prior /path/to/candidate --json cand.json --no-doc
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
from audit_engine.attacker.priors import load_prior
from audit_engine.audit.reference import IMAGE_STATISTICS, reference_for, typicality
from audit_engine.audit.verdict import DOMAIN_FACTOR, DOMAIN_PERCENTILE, outside_domain
from audit_engine.docblocks import fill_file

PHOTOS = [
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "moon",
    "brick",
    "grass",
    "hubble_deep_field",
    "clock",
    "horse",
    "immunohistochemistry",
    "gravel",
    "retina",
    "cell",
    "colorwheel",
    "logo",
]
WORDS = ["Hello", "privacy", "AB", "xyz", "Text", "Q", "K", "data", "w", "M", "Audit", "R&D"]
OTHER_WORDS = [
    "Zoo",
    "ok",
    "Fig",
    "ID",
    "name",
    "Lab",
    "g",
    "T",
    "yes",
    "No",
    "5",
    "#7",
    "sign",
    "pay",
    "VIP",
    "&",
]


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
    return [
        face,
        face.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        face.crop((20, 20, 160, 180)),
        face.convert("L"),
    ]


def _text() -> list[Image.Image]:
    out = []
    for word in WORDS:
        for size in (18, 30):
            for dark_on_light in (True, False):
                img = Image.new("L", (96, 96), 255 if dark_on_light else 0)
                ImageDraw.Draw(img).text(
                    (6, 30),
                    word,
                    fill=0 if dark_on_light else 255,
                    font=ImageFont.load_default(size=size),
                )
                out.append(img)
    return out


def _other_text(rng) -> list[Image.Image]:
    """White words on black, as handwritten strokes are, at three sizes and random places."""
    out = []
    for word in OTHER_WORDS:
        for size in (14, 24, 40):
            img = Image.new("L", (96, 96), 0)
            ImageDraw.Draw(img).text(
                (int(rng.integers(0, 30)), int(rng.integers(10, 50))),
                word,
                fill=255,
                font=ImageFont.load_default(size=size),
            )
            out.append(img)
    return out


def _outlines(rng) -> list[Image.Image]:
    """Ellipses, rectangles and lines drawn in white on black, 2 to 6 pixels wide."""
    out = []
    for k in range(40):
        img = Image.new("L", (64, 64), 0)
        draw = ImageDraw.Draw(img)
        box = [int(v) for v in (*rng.integers(4, 24, 2), *rng.integers(40, 60, 2))]
        width = int(rng.integers(2, 7))
        if k % 3 == 0:
            draw.ellipse(box, outline=255, width=width)
        elif k % 3 == 1:
            draw.rectangle(box, outline=255, width=width)
        else:
            draw.line(box, fill=255, width=width)
        out.append(img)
    return out


def _noise(rng) -> list[np.ndarray]:
    return [rng.uniform(0, 1, (32, 32)) for _ in range(10)] + [
        np.clip(rng.normal(0.5, 0.2, (32, 32)), 0, 1) for _ in range(10)
    ]


def _flat() -> list[np.ndarray]:
    out = [np.full((32, 32), v) for v in np.linspace(0, 1, 11)]
    ramp = np.linspace(0, 1, 32)
    out += [
        np.tile(ramp, (32, 1)),
        np.tile(ramp, (32, 1)).T,
        np.outer(ramp, ramp),
        1 - np.tile(ramp, (32, 1)),
    ]
    return out


def _perturbed(held: torch.Tensor, rng) -> torch.Tensor:
    """Held-out digits shifted by up to 2 pixels and rotated by up to 10 degrees."""
    out = []
    for x in held:
        img = Image.fromarray((x[0].numpy() * 255).astype(np.uint8))
        img = img.rotate(
            float(rng.uniform(-10, 10)),
            resample=Image.Resampling.BILINEAR,
            translate=tuple(int(v) for v in rng.integers(-2, 3, 2)),
        )
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)[None])
    return torch.stack(out)


SHOULD_BE = {True: "in", False: "out", None: "either"}


def domain_table(rows: list[dict]) -> list[str]:
    """docs/DOMAIN.md's table (tests/test_docs.py checks it against the JSON)."""
    table = [
        "| images | should be | n | flagged outside the domain | flagged by the denoising "
        "profile alone |",
        "|---|---|---|---|---|",
    ]
    return table + [
        f"| {r['set']} | {SHOULD_BE[r['in_domain_expected']]} | {r['n']} | "
        f"{r['flagged']} ({r['flagged_rate']:.1%}) | {r['flagged_profile_only']} "
        f"({r['flagged_profile_only_rate']:.1%}) |"
        for r in rows
    ]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--prior",
        default="embedded",
        help="a prior folder with its reference set "
        "(scripts/build_reference.py) and held-out digits (default: embedded)",
    )
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "domain-check.json")
    ap.add_argument("--no-doc", action="store_true", help="leave docs/DOMAIN.md as it is")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    prior = load_prior(args.prior)
    ref = reference_for(prior)
    held = ref.images
    prof = typicality(prior, held)
    k = len(IMAGE_STATISTICS)
    variants = {"flagged": lambda q: q, "flagged_profile_only": lambda q: q[:, :-k]}

    def flags(reference_profiles: np.ndarray, judged: np.ndarray) -> dict:
        """Images flagged by the rule in use and, as an ablation, by the prior's denoising
        profile alone (without the image statistics)."""
        out = {}
        for key, cols in variants.items():
            out[key] = int(np.sum(outside_domain(cols(reference_profiles), cols(judged))))
        return out

    halves = [np.arange(0, len(held), 2), np.arange(1, len(held), 2)]
    folds = [flags(prof[a], prof[b]) for a, b in (halves, halves[::-1])]
    sets = {
        "perturbed held-out digits (shift <= 2 px, rotation <= 10 deg)": _perturbed(held, rng),
        "photographs (18 scikit-image photos and 3 random crops of each)": _photos(rng),
        "face (crops of scikit-image's astronaut)": _faces(),
        "printed text (letters and words, both polarities, 2 sizes)": _text(),
        "flat and smooth images (11 grey levels, 4 gradients)": _flat(),
        "printed text, white on black (16 other words and signs, 3 sizes, random places)": _other_text(
            np.random.default_rng(7)
        ),
        "dark digits on white (100 held-out digits inverted)": 1 - held[:100],
        "noise (10 uniform, 10 Gaussian)": _noise(np.random.default_rng(2)),
        "geometric outlines (40 ellipses, rectangles, lines; white on black)": _outlines(
            np.random.default_rng(1)
        ),
    }
    expected = {"perturbed": True, "geometric": None}  # None: could be either
    rows = [
        {
            "set": "held-out digits (two-fold: reference on one half, judged on the other)",
            "in_domain_expected": True,
            "n": len(held),
            **{key: sum(f[key] for f in folds) for key in variants},
        }
    ]
    for name, images in sets.items():
        x = (
            images
            if isinstance(images, torch.Tensor)
            else torch.stack([prior.load_image(i) for i in images])
        )
        rows.append(
            {
                "set": name,
                "in_domain_expected": expected.get(name.split()[0], False),
                "n": len(x),
                **flags(ref.profiles, typicality(prior, x)),
            }
        )
    for r in rows:
        for key in variants:
            r[key + "_rate"] = r[key] / r["n"]
    out = {
        "prior": args.prior,
        "rule": f"outside when the typicality distance exceeds "
        f"{DOMAIN_FACTOR:g} x the {DOMAIN_PERCENTILE:g}th percentile of the reference images' "
        "distances",
        "ablation": "flagged_profile_only: the same rule on the prior's "
        "denoising-error profile alone, without the image's mean grey level and contrast",
        "rows": rows,
    }
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    table = domain_table(rows)
    print("\n".join(table))
    if args.no_doc:
        return
    doc = ROOT / "docs" / "DOMAIN.md"
    fill_file(doc, {"domain-table": "\n".join(table)}, every=False)


if __name__ == "__main__":
    main()
