"""The image sets of a reproduction: targets of the prior's domain (its held-out images or a
folder), out-of-domain sets (folders, or what ships with scikit-image) and candidate sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..attacker.priors import Prior
from ..images import IMAGE_SUFFIXES, stack_to_tensor

__all__ = [
    "IN_DOMAIN",
    "FACES",
    "NATURAL",
    "heldout_images",
    "folder_images",
    "ood_sets",
    "candidate_sets",
]

IN_DOMAIN = "in-domain (held-out)"
FACES = "faces (LFW subset, scikit-image)"
NATURAL = "natural image patches (scikit-image)"


def _balanced_order(labels: np.ndarray) -> np.ndarray:
    """Indices that take the classes in turn (first of each class, then second, ...)."""
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels, rank))


def heldout_images(prior: Prior, n: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """Up to n held-out images (N, C, H, W) in [0, 1] shipped with the prior, and their labels;
    with labels, the classes are taken in turn, so any n is balanced across classes."""
    path = (prior.folder or Path(".")) / "heldout.npz"
    if prior.folder is None or not path.is_file():
        raise ValueError(
            f"prior {prior.name!r} ships no held-out images ({path.name} beside its "
            "UNet): give a folder of images of its domain that it was not trained "
            "on (--images DIR)"
        )
    held = np.load(path)
    labels = held["labels"] if "labels" in held.files else None
    n = min(n, len(held["images"]))
    order = _balanced_order(labels)[:n] if labels is not None else np.arange(n)
    x = stack_to_tensor(held["images"][order])
    labels = labels[order] if labels is not None else None
    return _to_channels(x, prior.channels), labels


def folder_images(
    folder: str | Path, prior: Prior, n: int | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Up to n images of a folder (sorted by name) as the prior sees them; unreadable files
    are skipped and named in the second value."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images, skipped = [], []
    for p in files:
        if n is not None and len(images) >= n:
            break
        try:
            images.append(prior.load_image(p))
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            skipped.append(f"{p.name}: {exc}")
    if len(images) < 2:
        raise ValueError(f"{folder} holds {len(images)} readable images; at least 2 are needed")
    return torch.stack(images), skipped


def _to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return (x[:, :3] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
    return x[:, :1].expand(-1, channels, -1, -1).contiguous()


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    ).clamp(0, 1)


def ood_sets(n: int, *, size: int, channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Out-of-domain images available offline (bundled with scikit-image), n per set."""
    from skimage import color, data

    rng = np.random.default_rng(seed)
    faces = data.lfw_subset()  # (200, 25, 25) in [0, 1]
    pick = rng.choice(len(faces), size=min(n, len(faces)), replace=False)
    faces_t = _resize(torch.from_numpy(faces[pick]).float().unsqueeze(1), size)

    names = [
        "camera",
        "coins",
        "moon",
        "page",
        "text",
        "brick",
        "grass",
        "gravel",
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "horse",
        "cell",
        "clock",
        "hubble_deep_field",
    ]
    pictures = []
    for name in names:
        img = np.asarray(getattr(data, name)(), dtype=np.float64)
        if img.ndim == 3:
            img = color.rgb2gray(img[..., :3] / (255.0 if img.max() > 1 else 1.0))
        elif img.max() > 1:
            img = img / 255.0
        pictures.append(img)
    patches = []
    for _ in range(n):
        img = pictures[rng.integers(len(pictures))]
        h, w = img.shape
        side = int(rng.integers(min(h, w) // 8, min(h, w) // 2 + 1))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patches.append(
            torch.from_numpy(img[top : top + side, left : left + side].copy()).float()[None, None]
        )
    natural = torch.cat([_resize(p, size) for p in patches])
    return {FACES: _to_channels(faces_t, channels), NATURAL: _to_channels(natural, channels)}


def candidate_sets(
    n_images: int, n_candidates: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N, n) into the image set, position of the target in each row)."""
    if not 2 <= n_candidates <= n_images:
        raise ValueError(
            f"a candidate set of {n_candidates} needs at least that many target "
            f"images; {n_images} are available"
        )
    idx = np.empty((n_images, n_candidates), dtype=np.int64)
    pos = rng.integers(0, n_candidates, n_images)
    for i in range(n_images):
        others = rng.choice(np.delete(np.arange(n_images), i), n_candidates - 1, replace=False)
        idx[i] = np.insert(others, pos[i], i)
    return idx, pos
