"""The paper's algorithm, written once: every caller (the audit, the reproduction, the
benchmarks, the prior's evaluation) goes through these two steps.

1. ``observe``: image(s) + budget(s) + noise -> the releases an attacker inverts from DP-SGD
   (mechanism.py: clip_C(x) + (C / mu) xi with a public clipping bound C), the release's
   public per-pixel noise std C / mu, and the diffusion timestep whose noise level matches
   it after the attacker's public rescaling (schedule.match_release, which converts the std
   to the model's scale).
2. ``attack``: the observations -> reconstructions by the prior's reverse process started
   at the matched timesteps (reconstruct.py).

Which noise enters is the caller's choice (a standard-normal draw per release for the
analytic law, a generator per release for a real Opacus step): streams.py keys them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..maths.mechanism import clip_to, noise_std, privatize_dpsgd
from ..maths.schedule import TimestepMatch, match_release
from ..progress import Progress
from .priors import Prior
from .reconstruct import DEFAULT_DDIM_STEPS, reconstruct

__all__ = ["MECHANISMS", "Observations", "clip_to", "observe", "observe_at_own_norm", "attack"]

MECHANISMS = ("analytic", "dpsgd")


@dataclass(frozen=True)
class Observations:
    """N releases and where the reverse process starts for each."""

    images: torch.Tensor  # (N, C, H, W) x_tilde in [0, 1] pixel scale, unclipped, as released
    noise_std: list[float]  # each release's per-pixel noise std C / mu, [0, 1] pixel scale
    matches: list[TimestepMatch]  # matched on the rescaled release (scale * noise_std)
    clip_norm: float = 0.0  # the public clipping bound C
    scale: float = 1.0  # the attacker's public rescaling (mechanism.attacker_scale)

    def __len__(self) -> int:
        return len(self.noise_std)


def observe(
    prior: Prior,
    x: torch.Tensor,
    mus: float | Sequence[float],
    *,
    clip_norm: float,
    xi: torch.Tensor | None = None,
    generators: Sequence[torch.Generator] | None = None,
    mechanism: str = "analytic",
    scale: float = 1.0,
) -> Observations:
    """Privatize each image of x (N, C, H, W) at its budget and match its timestep.

    mus: one mu-GDP budget for all images, or one per image.
    clip_norm: the public clipping bound C; the release is clip_C(x) + (C / mu) xi.
    mechanism "analytic": that law with xi (N, C, H, W) standard normal; "dpsgd": one real
        Opacus step per image, noised from ``generators[i]``, inverted (the same law).
    scale: the attacker's public rescaling before it reconstructs (>= 1; the timestep is
        matched to scale * C / mu).
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got mechanism={mechanism!r}")
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    if not scale >= 1:
        raise ValueError(f"the attacker's rescaling must be >= 1, got {scale!r}")
    n = len(x)
    mu = [float(mus)] * n if isinstance(mus, (int, float)) else [float(m) for m in mus]
    if len(mu) != n:
        raise ValueError(f"{len(mu)} budgets for {n} images")
    stds = [noise_std(m, clip_norm) for m in mu]
    if mechanism == "analytic":
        if xi is None or xi.shape != x.shape:
            raise ValueError("the analytic release needs a standard-normal draw xi shaped like x")
        images = clip_to(x, clip_norm) + torch.tensor(stds, dtype=x.dtype).view(-1, 1, 1, 1) * xi
    else:
        if generators is None or len(generators) != n:
            raise ValueError("a DP-SGD release needs one generator per image")
        images = torch.stack(
            [
                privatize_dpsgd(x[i], mu[i], clip_norm=clip_norm, generator=generators[i]).x_tilde
                for i in range(n)
            ]
        )
    matches = match_release([scale * s for s in stds], prior.alphas_cumprod)
    return Observations(images, stds, matches, float(clip_norm), float(scale))


def observe_at_own_norm(
    prior: Prior, x: torch.Tensor, mus: float | Sequence[float], *, xi: torch.Tensor
) -> Observations:
    """Each image released with its own norm as the clipping bound (x + ||x|| / mu xi, the
    noise scale of the source paper's single-image figures): for measuring reconstruction
    quality against a noise level (docs/PRIOR.md, bench/steps.py), never for a verdict, as
    the noise scale tells the attacker the image's norm (verdict.py uses ``observe``)."""
    n = len(x)
    mu = [float(mus)] * n if isinstance(mus, (int, float)) else [float(m) for m in mus]
    parts = [
        observe(
            prior, x[i : i + 1], mu[i], clip_norm=max(float(x[i].norm()), 1e-12), xi=xi[i : i + 1]
        )
        for i in range(n)
    ]
    return Observations(
        torch.cat([p.images for p in parts]),
        [s for p in parts for s in p.noise_std],
        [m for p in parts for m in p.matches],
    )


def attack(
    prior: Prior,
    obs: Observations,
    *,
    sampler: str = "ddim",
    steps: int | None = DEFAULT_DDIM_STEPS,
    seeds: Sequence[int] | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Reconstructions (N, C, H, W) in [0, 1]: the prior's reverse process from each
    observation's matched timestep (see reconstruct.reconstruct for the arguments)."""
    return reconstruct(
        prior,
        obs.images * obs.scale,
        obs.matches,
        sampler=sampler,
        steps=steps,
        seeds=seeds,
        batch_size=batch_size,
        progress=progress,
    )
