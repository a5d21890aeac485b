"""Seeded random streams: every random draw of an audit comes from a generator keyed by
(seed, image, trial, purpose), so two images never share a draw and a result is
reproducible from (image, seed) alone.

The image enters through a digest of its pixels at the prior's resolution (float32
bytes, SHA-256); the purpose is a small constant so that, say, the privatization noise
and the reverse process's noise of the same trial are independent streams.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

__all__ = ["PRIVATIZE", "REVERSE", "DECOYS", "image_digest", "stream_seed", "generator"]

PRIVATIZE, REVERSE, DECOYS = 0xD1, 0x5EED, 0xDEC0


def image_digest(x: torch.Tensor) -> bytes:
    """SHA-256 of an image's float32 pixels (its shape included)."""
    a = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.digest()


def stream_seed(seed: int, digest: bytes, trial: int, purpose: int) -> int:
    """A 63-bit seed for the stream (seed, image digest, trial, purpose)."""
    if seed < 0 or trial < 0:
        raise ValueError(f"seed and trial must be >= 0, got seed={seed}, trial={trial}")
    words = np.frombuffer(digest, dtype=np.uint32).tolist()
    state = np.random.SeedSequence([int(seed), *words, int(trial), int(purpose)]).generate_state(
        1, dtype=np.uint64)[0]
    return int(state) & 0x7FFF_FFFF_FFFF_FFFF


def generator(seed: int, digest: bytes, trial: int, purpose: int) -> torch.Generator:
    """A CPU torch generator for the stream (seed, image digest, trial, purpose)."""
    return torch.Generator().manual_seed(stream_seed(seed, digest, trial, purpose))
