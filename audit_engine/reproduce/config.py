"""What a reproduction run is asked to do."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from ..attacker.pipeline import MECHANISMS
from ..attacker.reconstruct import DEFAULT_DDIM_STEPS
from ..maths import accounting

__all__ = ["DEFAULT_MUS", "DEFAULT_CANDIDATES", "ReproConfig"]

DEFAULT_MUS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
DEFAULT_CANDIDATES = 10


@dataclass
class ReproConfig:
    prior: str | None = None
    images: str | None = None  # folder of target images of the prior's domain (default: held-out)
    ood: Sequence[str] = field(
        default_factory=tuple
    )  # out-of-domain folders (default: scikit-image)
    n_images: int = 200
    mus: Sequence[float] = DEFAULT_MUS
    n_candidates: int | None = None  # kappa = 1 / n; default min(10, images available)
    n_draws: int = 64  # privatization draws per image and mu for the candidate and norm attacks
    n_ood: int = 100  # images per out-of-domain set (0: skip Figure B)
    steps: int = DEFAULT_DDIM_STEPS  # DDIM steps from t*
    seed: int = 0
    lpips: str | None = "alex"
    # the public clipping norm C of the release clip_C(x) + (C / mu) xi: one mu-GDP mechanism
    # over every candidate. Default: the largest norm of each image set (nothing is clipped)
    clip_norm: float | None = None
    mechanism: str = "analytic"  # or "dpsgd": draw 0 of every image is a real Opacus step
    # the UNet's precision: float32 by default, so that the committed tables reproduce on any
    # x86 CPU (the audit's default, bfloat16 on CPUs that compute it natively, differs by CPU)
    dtype: str = "float32"
    # success thresholds: more than half-way from an unrelated image (the baseline b) to a
    # copy, r = (SSIM - b) / (1 - b) >= 0.5, and MSE <= (1 - r) b_MSE; and PSNR >= 20 dB
    recognisable_r: float = 0.5
    psnr_threshold: float = 20.0
    n_boot: int = 1000  # bootstrap resamples of the images for the success intervals
    delta: float = 1e-5

    def candidates(self, n_available: int) -> int:
        return self.n_candidates or min(DEFAULT_CANDIDATES, n_available)

    def validate(self) -> None:
        if self.n_images < 2:
            raise ValueError(f"n_images must be >= 2, got {self.n_images}")
        if self.n_candidates is not None and self.n_candidates < 2:
            raise ValueError(f"n_candidates must be >= 2, got {self.n_candidates}")
        if self.n_draws < 1 or self.n_ood < 0 or self.steps < 1 or self.n_boot < 10:
            raise ValueError("n_draws and steps must be >= 1, n_ood >= 0 and n_boot >= 10")
        if not self.mus or any(not (math.isfinite(m) and m > 0) for m in self.mus):
            raise ValueError(f"mus must be finite and > 0, got {list(self.mus)}")
        if self.clip_norm is not None and not (
            math.isfinite(self.clip_norm) and self.clip_norm > 0
        ):
            raise ValueError(f"clip_norm must be a finite number > 0, got {self.clip_norm}")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {self.dtype!r}")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        if not 0 < self.recognisable_r < 1:
            raise ValueError(f"recognisable_r must lie in (0, 1), got {self.recognisable_r}")
        accounting.validate_delta(self.delta)
