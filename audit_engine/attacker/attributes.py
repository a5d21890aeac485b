"""Attribute disclosure: does a release or a reconstruction carry a label of the original?

The label is whatever the prior's folder was labelled with (a digit's class, a diagnosis, a
disease grade): ``privacy-audit train-prior DIR --attribute NAME`` reads labels where users
keep them (class subfolders, torchvision's ImageFolder convention, or a ``labels.csv``),
trains one classifier for the prior on its training split only
(``training/classifier.py``) and ships it beside the weights:

- ``classifier.safetensors``: the weights of an ``AttributeCNN``;
- ``classifier.json``: the attribute's name, the label names (index order), the
  architecture, the temperature that calibrates its confidences, and its held-out accuracy
  and calibration;
- ``attack-pool.npz``: labelled training images (at most POOL_BYTES of them), which the
  prior-free attribute attacker (a Bayes classifier of the release, verdict.py) holds beside
  the held-out images: an attacker who has the prior's training data.

The embedded digit prior's classifier is one such instance (attribute "digit class", labels
"0" to "9"). A prior without ``classifier.json`` (trained without labels, a Hub prior) has
no attribute to audit, and ``no_attribute_reason`` says why.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "AttributeCNN",
    "architecture",
    "load_classifier",
    "classify",
    "classifier_for",
    "no_attribute_reason",
    "WEIGHTS",
    "SPEC",
    "generic_caveat",
    "attribute_name",
    "POOL",
    "POOL_BYTES",
    "save_pool",
    "attack_pool",
]

WEIGHTS, SPEC, POOL = "classifier.safetensors", "classifier.json", "attack-pool.npz"
POOL_BYTES = 20_000_000  # the attack pool's images at most (a seeded choice beyond)
FEATURE_SIDE = 8  # the feature map's side before the head, at every image size


def architecture(size: int, channels: int) -> dict:
    """The classifier for ``channels`` x ``size`` x ``size`` images: convolution and pooling
    stages until the feature map is 8 x 8 (one stage at 16 pixels, two at 32, five at 256),
    widths doubling from 32 up to 256, then one hidden layer of 128."""
    stages = math.log2(size / FEATURE_SIDE) if size >= FEATURE_SIDE else -1
    if stages < 1 or stages != int(stages):
        raise ValueError(
            f"an attribute classifier needs a power-of-two size of at least "
            f"{2 * FEATURE_SIDE} pixels, got {size}"
        )
    if channels not in (1, 3):
        raise ValueError(f"an attribute classifier reads 1 or 3 channels, got {channels}")
    return {
        "kind": "AttributeCNN",
        "size": int(size),
        "channels": int(channels),
        "widths": [min(32 * 2**i, 256) for i in range(int(stages))],
        "hidden": 128,
    }


class AttributeCNN(nn.Module):
    """A small CNN reading images in [0, 1] of one prior's shape; ``architecture`` chooses
    it. Carries its attribute's name, label names and temperature (not parameters)."""

    def __init__(
        self,
        arch: dict,
        labels: list[str],
        *,
        name: str = "class",
        temperature: float = 1.0,
        caveat: str = "",
    ) -> None:
        super().__init__()
        if len(labels) < 2:
            raise ValueError(f"an attribute needs at least two labels, got {labels}")
        layers, width = [], arch["channels"]
        for w in arch["widths"]:
            layers += [nn.Conv2d(width, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Dropout(0.3),
            nn.Linear(width * FEATURE_SIDE**2, arch["hidden"]),
            nn.ReLU(),
            nn.Linear(arch["hidden"], len(labels)),
        )
        self.arch, self.labels, self.name = dict(arch), [str(v) for v in labels], name
        self.temperature, self.caveat = float(temperature), caveat

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits (what training fits)."""
        return self.head(self.features(x * 2 - 1).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated logits: the temperature fitted on the training split's validation part."""
        return self.logits(x) / self.temperature


def generic_caveat(name: str, labels: list[str]) -> str:
    """What a reading of the original assumes, for a classifier no near-domain check was
    measured for (docs/DOMAIN.md measures the embedded one's)."""
    return (
        f"This reading assumes your image is one of the kinds the classifier was trained "
        f"on ({name}: {', '.join(labels)}): a classifier reads any image as one of its "
        "labels, and no check here tells an image of another kind apart reliably."
    )


def load_classifier(folder: str | Path) -> AttributeCNN | None:
    """The attribute classifier shipped with a prior folder, or None if it has none."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / SPEC).is_file():
        return None
    spec = json.loads((folder / SPEC).read_text())
    if "labels" not in spec or "architecture" not in spec:
        return None  # an older description without the attribute's labels
    model = AttributeCNN(
        spec["architecture"],
        spec["labels"],
        name=spec["attribute"],
        temperature=spec.get("temperature", 1.0),
        caveat=spec.get("caveat") or generic_caveat(spec["attribute"], spec["labels"]),
    )
    model.load_state_dict(load_file(folder / WEIGHTS))
    return model.eval().requires_grad_(False)


def attribute_name(source: str | Path | None) -> str | None:
    """The attribute a prior folder's classifier reads ("digit class"), without loading
    anything; None when the source is not a local folder with a classifier."""
    spec = Path(source) / SPEC if source else None
    if spec is None or not spec.is_file() or not (spec.parent / WEIGHTS).is_file():
        return None
    data = json.loads(spec.read_text())
    return data.get("attribute") if "labels" in data else None


@functools.lru_cache(maxsize=8)
def _cached_classifier(folder: str, stamp: float) -> AttributeCNN | None:
    return load_classifier(folder)


def _stamp(folder: Path) -> float:
    spec = folder / SPEC
    return spec.stat().st_mtime if spec.is_file() else 0.0


def classifier_for(prior) -> AttributeCNN | None:
    """The attribute classifier shipped with a loaded prior, when it reads the prior's
    images (its size and channels); else None (``no_attribute_reason`` says why)."""
    folder = getattr(prior, "folder", None)
    if folder is None:
        return None
    clf = _cached_classifier(str(folder), _stamp(Path(folder)))
    if clf is None or (clf.arch["channels"], clf.arch["size"]) != (
        prior.channels,
        prior.sample_size,
    ):
        return None
    return clf


def no_attribute_reason(prior) -> str:
    """Why a prior has no attribute to audit, in a sentence (empty when it has one)."""
    if classifier_for(prior) is not None:
        return ""
    folder = getattr(prior, "folder", None)
    if folder is not None and (Path(folder) / SPEC).is_file():
        spec = json.loads((Path(folder) / SPEC).read_text())
        if "labels" in spec and "architecture" in spec:
            a = spec["architecture"]
            return (
                f"The prior's attribute classifier reads {a['channels']}x{a['size']}x"
                f"{a['size']} images, not the prior's {prior.channels}x"
                f"{prior.sample_size}x{prior.sample_size}, so no attribute is audited."
            )
    trained = folder is not None and (Path(folder) / "training.json").is_file()
    if trained:
        info = json.loads((Path(folder) / "training.json").read_text())
        why = (info.get("attribute") or {}).get("why")
        if why:
            return f"No attribute is audited with this prior: {why.rstrip('.')}."
    name = Path(prior.name).name if Path(str(prior.name)).is_absolute() else prior.name
    return (
        f"No attribute is audited with {name}: it ships no attribute classifier "
        "(what its images are labelled with is unknown here). A prior trained with "
        "`privacy-audit train-prior DIR --attribute NAME` on a folder with labels (class "
        "subfolders or a labels.csv) audits that attribute."
    )


def save_pool(folder: str | Path, images: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> int:
    """Write the attack pool (uint8 images (N, C, S, S) and label indices): every labelled
    image, or a seeded choice of them within POOL_BYTES. Returns how many were written."""
    keep = np.flatnonzero(np.asarray(labels) >= 0)
    most = max(1, POOL_BYTES // max(1, images[0].nbytes)) if len(images) else 0
    if len(keep) > most:
        keep = np.sort(np.random.default_rng(seed).choice(keep, most, replace=False))
    np.savez_compressed(
        Path(folder) / POOL, images=images[keep], labels=np.asarray(labels)[keep].astype(np.int64)
    )
    return len(keep)


@functools.lru_cache(maxsize=4)
def _cached_pool(folder: str, stamp: float) -> tuple[torch.Tensor, np.ndarray] | None:
    path = Path(folder) / POOL
    if not path.is_file():
        return None
    with np.load(path) as z:
        return torch.from_numpy(z["images"]).float().div(255), z["labels"]


def attack_pool(prior) -> tuple[torch.Tensor, np.ndarray] | None:
    """The prior's attack pool (images in [0, 1], label indices), or None (the embedded prior
    and Hub priors ship none: their attacker holds the held-out images only)."""
    folder = getattr(prior, "folder", None)
    if folder is None or classifier_for(prior) is None:
        return None
    path = Path(folder) / POOL
    return _cached_pool(str(folder), path.stat().st_mtime if path.is_file() else 0.0)


@torch.inference_mode()
def classify(
    model: nn.Module, images: torch.Tensor, *, batch: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """(label indices, confidences) for images (N, C, H, W) in [0, 1] (clipped first)."""
    labels, conf = [], []
    for i in range(0, len(images), batch):
        p = model(images[i : i + batch].float().clamp(0, 1)).softmax(dim=1)
        c, l = p.max(dim=1)
        labels.append(l)
        conf.append(c)
    return torch.cat(labels), torch.cat(conf)
