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

__all__ = [
    "PRIVATIZE",
    "REVERSE",
    "DECOYS",
    "GALLERY",
    "SAMPLE",
    "RELEASE_CLASS",
    "image_digest",
    "keyed_seed",
    "keyed",
    "stream_seed",
    "generator",
]

PRIVATIZE, REVERSE, DECOYS = 0xD1, 0x5EED, 0xDEC0
GALLERY = 0x6A11  # the gallery attack's look-alikes and noise (all its tries, one stream)
SAMPLE = 0x7  # the starting noise x_T of an unconditional sample
RELEASE_CLASS = 0xC1A5  # the prior-free attribute attack's releases (all its tries, one stream)


def keyed_seed(*words: int) -> int:
    """A 63-bit seed from whole numbers >= 0 (mixed by numpy's SeedSequence, so neighbouring
    keys give unrelated streams). Every seeded generator of the engine comes from here.

    The last word is the stream's purpose and must not be 0: SeedSequence ignores trailing
    zeros, so (1, 2) and (1, 2, 0) would be one stream."""
    if not words or any(int(w) < 0 for w in words):
        raise ValueError(f"stream keys must be whole numbers >= 0, got {words}")
    if int(words[-1]) == 0:
        raise ValueError(f"the last stream key is its purpose and must not be 0, got {words}")
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & 0x7FFF_FFFF_FFFF_FFFF


def keyed(*words: int) -> torch.Generator:
    """A CPU torch generator for the stream keyed by ``words``."""
    return torch.Generator().manual_seed(keyed_seed(*words))


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
    return keyed_seed(seed, *np.frombuffer(digest, dtype=np.uint32).tolist(), trial, purpose)


def generator(seed: int, digest: bytes, trial: int, purpose: int) -> torch.Generator:
    """A CPU torch generator for the stream (seed, image digest, trial, purpose)."""
    return keyed(seed, *np.frombuffer(digest, dtype=np.uint32).tolist(), trial, purpose)
