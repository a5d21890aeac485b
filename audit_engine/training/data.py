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
- Labels are read where users keep them (``labels="auto"``): a ``labels.csv`` at the top of
  the folder (a row per image: its path under the folder, or its bare name when that is
  unique, then its label; an optional header row ``file,label``), else class subfolders
  (torchvision's ImageFolder convention: ``DIR/pneumonia/x.png`` is labelled "pneumonia"),
  when every image lies in a subfolder and there are at least two. Label names are sorted
  (as ImageFolder's ``classes``); an image without a label is still trained on by the prior,
  not by the attribute classifier.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..images import ImageError, open_image, to_prior_tensor

__all__ = [
    "ImageFolder",
    "read_folder",
    "holdout_of",
    "guess_channels",
    "write_errors",
    "read_labels",
    "LABELS_CSV",
]

LABELS_CSV = "labels.csv"
_HEADER = {"file", "filename", "path", "image", "name"}


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
    label_names: list[str] = field(default_factory=list)  # sorted; empty: no labels
    label_source: str = ""  # "labels.csv" or "subfolders"; empty: none found
    train_labels: np.ndarray | None = None  # int64 (N_train,), -1 where unlabelled
    heldout_labels: np.ndarray | None = None
    label_notes: list[str] = field(default_factory=list)  # what the labels could not cover

    @property
    def labelled(self) -> bool:
        return bool(self.label_names)

    @property
    def files(self) -> int:
        return len(self.train_files) + len(self.heldout_files) + len(self.errors) + self.duplicates

    def summary(self) -> dict:
        return {
            "folder": str(self.root),
            "files": self.files,
            "images": len(self.train) + len(self.heldout),
            "train": len(self.train),
            "heldout": len(self.heldout),
            "unreadable": len(self.errors),
            "duplicates": self.duplicates,
            "size": self.size,
            "channels": self.channels,
            "labels": self.labels_summary(),
        }

    def labels_summary(self) -> dict | None:
        if not self.labelled:
            return None
        count = lambda a: {n: int((a == k).sum()) for k, n in enumerate(self.label_names)}  # noqa: E731
        return {
            "source": self.label_source,
            "names": self.label_names,
            "train": count(self.train_labels),
            "heldout": count(self.heldout_labels),
            "unlabelled": int((self.train_labels < 0).sum() + (self.heldout_labels < 0).sum()),
            "notes": self.label_notes,
        }


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.relative_to(root).as_posix() != LABELS_CSV
    )


def _csv_labels(path: Path, rels: list[str]) -> tuple[dict[str, str], list[str]]:
    """{relative path: label} from a labels.csv, and notes on rows that name no file."""
    by_name: dict[str, list[str]] = {}
    for rel in rels:
        by_name.setdefault(Path(rel).name, []).append(rel)
    known, out, notes, missing = set(rels), {}, [], 0
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() in _HEADER:
        rows = rows[1:]
    for k, row in enumerate(rows):
        if len(row) < 2 or not row[1].strip():
            raise ValueError(f"{path}: row {k + 1} {row!r} is not 'file,label'")
        name, label = row[0].strip().replace("\\", "/"), row[1].strip()
        if name in known:
            rel = name
        else:
            same = by_name.get(name, [])
            rel = same[0] if len(same) == 1 else None
        if rel is None:
            missing += 1
            continue
        out[rel] = label
    if missing:
        notes.append(
            f"{missing} row(s) of {LABELS_CSV} name no image of the folder "
            "(or a bare name that several images share)"
        )
    return out, notes


def read_labels(
    root: str | Path, rels: list[str], how: str = "auto"
) -> tuple[dict[str, str], str, list[str]]:
    """({relative path: label}, where they came from, notes) for the files ``rels`` under
    ``root``: ``how`` is "auto" (labels.csv, else class subfolders, else none), "none",
    "subfolders", or the path of a CSV file."""
    root = Path(root)
    if how == "none":
        return {}, "", []
    if how not in ("auto", "subfolders"):
        path = Path(how)
        if not path.is_file():
            raise ValueError(
                f"--labels {how}: no such file (give 'auto', 'none', "
                "'subfolders' or a CSV file of file,label rows)"
            )
        labels, notes = _csv_labels(path, rels)
        return labels, path.name, notes
    if how == "auto" and (root / LABELS_CSV).is_file():
        labels, notes = _csv_labels(root / LABELS_CSV, rels)
        return labels, LABELS_CSV, notes
    tops = {Path(r).parts[0] for r in rels if len(Path(r).parts) > 1}
    nested = all(len(Path(r).parts) > 1 for r in rels)
    if how == "subfolders" and not (nested and len(tops) >= 2):
        raise ValueError(
            f"--labels subfolders: {root} must hold every image in one of at "
            "least two class subfolders (DIR/LABEL/IMAGE)"
        )
    if nested and len(tops) >= 2:
        return {r: Path(r).parts[0] for r in rels}, "subfolders", []
    return {}, "", []


def holdout_of(digest: bytes, fraction: float) -> bool:
    """Whether a file whose content hashes to ``digest`` is held out: the hash read as a
    number in [0, 1) falls below ``fraction``."""
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


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
        if (
            np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2
            or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 2
        ):
            return 3
    return 1


def read_folder(
    root: str | Path,
    *,
    size: int,
    channels: int | None = None,
    holdout: float = 0.1,
    progress=None,
    labels: str = "none",
) -> ImageFolder:
    """Read every image under ``root`` at ``size`` x ``size`` (see the module docstring);
    ``labels`` as ``read_labels``'s ``how``."""
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
    folder = ImageFolder(
        root=root,
        size=size,
        channels=channels,
        train=stack(out[False][0]),
        heldout=stack(out[True][0]),
        train_files=out[False][1],
        heldout_files=out[True][1],
        errors=errors,
        duplicates=duplicates,
    )
    read = out[False][1] + out[True][1]
    found, source, notes = read_labels(root, read, labels)
    if found:
        names = sorted(set(found.values()))
        index = {n: k for k, n in enumerate(names)}
        folder.label_names, folder.label_source, folder.label_notes = names, source, notes
        folder.train_labels, folder.heldout_labels = (
            np.array([index.get(found.get(r), -1) for r in rels], dtype=np.int64)
            for rels in (folder.train_files, folder.heldout_files)
        )
    return folder


def write_errors(path: Path, errors: list[tuple[str, str]]) -> None:
    """errors.csv: every file that could not be read, with the reason."""
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "reason"])
        w.writerows(errors)
