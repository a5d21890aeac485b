"""Attribute disclosure: does a reconstruction carry a high-level attribute of the original?

For the embedded digit prior the attribute is the digit's class, read by a small CNN
trained only on the prior's training split (scripts/train_classifier.py) and shipped
beside the prior as ``classifier.safetensors``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

__all__ = ["DigitCNN", "load_classifier", "classify", "classifier_for", "ATTRIBUTE_NAME"]

ATTRIBUTE_NAME = "digit class"


class DigitCNN(nn.Module):
    """A small CNN for 1x32x32 digits in [0, 1] (about 0.55 M parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                                  nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * 2 - 1).flatten(1))


def load_classifier(folder: str | Path) -> DigitCNN | None:
    """The classifier shipped with a prior folder, or None if it has none."""
    from safetensors.torch import load_file

    path = Path(folder) / "classifier.safetensors"
    if not path.is_file():
        return None
    model = DigitCNN()
    model.load_state_dict(load_file(path))
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=8)
def _cached_classifier(folder: str) -> DigitCNN | None:
    return load_classifier(folder)


def classifier_for(prior) -> DigitCNN | None:
    """The attribute classifier shipped with a loaded prior (1x32x32 priors only), or None."""
    folder = getattr(prior, "folder", None)
    if folder is None or (prior.channels, prior.sample_size) != (1, 32):
        return None
    return _cached_classifier(str(folder))


@torch.inference_mode()
def classify(model: nn.Module, images: torch.Tensor, *, batch: int = 512
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, confidences) for images (N, 1, H, W) in [0, 1] (clipped first)."""
    labels, conf = [], []
    for i in range(0, len(images), batch):
        p = model(images[i:i + batch].float().clamp(0, 1)).softmax(dim=1)
        c, l = p.max(dim=1)
        labels.append(l)
        conf.append(c)
    return torch.cat(labels), torch.cat(conf)
