"""A folder of images made into a training set and a held-out set.

- Every file under the folder (recursively, hidden files and folders skipped) is read by
  the audit's own decoder and fitted by the same rule it applies to uploads
  (``images.to_prior_tensor``: orientation applied, metadata dropped, transparency onto
  black, the prior's channels, centre-cropped and resized with Lanczos). A file that is not
  a readable image is listed with the reason (``errors.csv``), never fatal.
- The held-out split is chosen by a hash of each file's content, so it is deterministic,
  the same whatever the file names or their order, and the same for two copies of one
  image (duplicates never straddle the split). Held-out images are never trained on: they
  become the prior's reference set (look-alikes, baseline, domain check).
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..images import ImageError, open_image, to_prior_tensor

__all__ = ["ImageFolder", "read_folder", "holdout_of", "guess_channels", "write_errors"]


@dataclass
class ImageFolder:
    """The images of a folder at one size: uint8 (N, C, S, S) arrays, split."""

    root: Path
    size: int
    channels: int
    train: np.ndarray  # uint8 (N_train, C, S, S)
    heldout: np.ndarray  # uint8 (N_heldout, C, S, S)
    train_files: list[str] = field(default_factory=list)  # relative paths
    heldout_files: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    duplicates: int = 0  # files whose content repeats an earlier file's (kept once)

    @property
    def files(self) -> int:
        return len(self.train_files) + len(self.heldout_files) + len(self.errors) + self.duplicates

    def summary(self) -> dict:
        return {"folder": str(self.root), "files": self.files, "images": len(self.train)
                + len(self.heldout), "train": len(self.train), "heldout": len(self.heldout),
                "unreadable": len(self.errors), "duplicates": self.duplicates,
                "size": self.size, "channels": self.channels}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def holdout_of(digest: bytes, fraction: float) -> bool:
    """Whether a file whose content hashes to ``digest`` is held out: the hash read as a
    number in [0, 1) falls below ``fraction``."""
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction


def guess_channels(root: Path, limit: int = 200) -> int:
    """1 when every readable image among the first ``limit`` files is grayscale (or colour
    with equal channels), else 3."""
    for path in _files(Path(root))[:limit]:
        try:
            img = open_image(path)
        except ImageError:
            continue
        if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
            continue
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
        if np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 2:
            return 3
    return 1


def read_folder(root: str | Path, *, size: int, channels: int | None = None,
                holdout: float = 0.1, progress=None) -> ImageFolder:
    """Read every image under ``root`` at ``size`` x ``size`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    if not 0 < holdout < 1:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {holdout}")
    channels = channels or guess_channels(root)
    paths = _files(root)
    if not paths:
        raise ValueError(f"{root} holds no files")
    seen: set[bytes] = set()
    out = {True: ([], []), False: ([], [])}
    errors, duplicates = [], 0
    for k, path in enumerate(paths):
        rel = str(path.relative_to(root))
        try:
            data = path.read_bytes()
            x = to_prior_tensor(data, size=size, channels=channels)
        except (ImageError, OSError, ValueError) as exc:
            errors.append((rel, str(exc)))
            continue
        digest = hashlib.sha256(data).digest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        arrays, names = out[holdout_of(digest, holdout)]
        arrays.append(x.mul(255).round().to(torch.uint8).numpy())
        names.append(rel)
        if progress is not None and (k + 1) % 50 == 0:
            progress((k + 1) / len(paths), f"read {k + 1} of {len(paths)} files")
    empty = np.zeros((0, channels, size, size), np.uint8)
    stack = lambda a: np.stack(a) if a else empty  # noqa: E731
    return ImageFolder(root=root, size=size, channels=channels, train=stack(out[False][0]),
                       heldout=stack(out[True][0]), train_files=out[False][1],
                       heldout_files=out[True][1], errors=errors, duplicates=duplicates)


def write_errors(path: Path, errors: list[tuple[str, str]]) -> None:
    """errors.csv: every file that could not be read, with the reason."""
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "reason"])
        w.writerows(errors)
