"""The paper's algorithm, written once: every caller (the audit, the reproduction, the
benchmarks, the prior's evaluation) goes through these two steps.

1. ``observe``: image(s) + budget(s) + noise -> the releases an attacker inverts from DP-SGD
   (mechanism.py), each release's own per-pixel noise std, and the diffusion timestep whose
   noise level matches it (schedule.match_release, which converts the std to the model's
   scale).
2. ``attack``: the observations -> reconstructions by the prior's reverse process started
   at the matched timesteps (reconstruct.py).

Which noise enters is the caller's choice (a standard-normal draw per release for the
analytic law, a generator per release for a real Opacus step): streams.py keys them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .mechanism import noise_std, privatize, privatize_dpsgd
from .priors import Prior
from .reconstruct import DEFAULT_DDIM_STEPS, Progress, reconstruct
from .schedule import TimestepMatch, match_release

__all__ = ["MECHANISMS", "Observations", "clip_to", "observe", "attack"]

MECHANISMS = ("analytic", "dpsgd")


@dataclass(frozen=True)
class Observations:
    """N releases and where the reverse process starts for each."""

    images: torch.Tensor  # (N, C, H, W) x_tilde in [0, 1] pixel scale, unclipped
    noise_std: list[float]  # each release's per-pixel noise std, [0, 1] pixel scale
    matches: list[TimestepMatch]

    def __len__(self) -> int:
        return len(self.noise_std)


def clip_to(x: torch.Tensor, c: float) -> torch.Tensor:
    """clip_C(x) = x min(1, C / ||x||) for each image of (N, C, H, W)."""
    norms = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    return x * torch.clamp(c / norms, max=1.0).view(-1, 1, 1, 1)


def observe(
    prior: Prior,
    x: torch.Tensor,
    mus: float | Sequence[float],
    *,
    xi: torch.Tensor | None = None,
    generators: Sequence[torch.Generator] | None = None,
    mechanism: str = "analytic",
    clip_norm: float | None = None,
) -> Observations:
    """Privatize each image of x (N, C, H, W) at its budget and match its timestep.

    mus: one mu-GDP budget for all images, or one per image.
    mechanism "analytic": x + ||x|| / mu * xi with xi (N, C, H, W) standard normal;
        "dpsgd": one real Opacus step per image, noised from ``generators[i]``, inverted.
    clip_norm: None for the paper's release (the attacker knows ||x|| and undoes the
        clipping); a public clip norm C releases clip_C(x) + C / mu * xi instead (the
        reproduction's candidate setting; a DP-SGD step on 4 rows clips at 2 C, the
        per-sample gradient norm being 2 ||x||).
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got mechanism={mechanism!r}")
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    n = len(x)
    mu = [float(mus)] * n if isinstance(mus, (int, float)) else [float(m) for m in mus]
    if len(mu) != n:
        raise ValueError(f"{len(mu)} budgets for {n} images")
    if mechanism == "analytic":
        if xi is None or xi.shape != x.shape:
            raise ValueError("the analytic release needs a standard-normal draw xi shaped like x")
        if clip_norm is None:
            images = torch.stack([privatize(x[i], mu[i], xi=xi[i]) for i in range(n)])
            stds = [float(noise_std(x[i], mu[i])) for i in range(n)]
        else:
            stds = [clip_norm / m for m in mu]
            images = clip_to(x, clip_norm) + torch.tensor(stds, dtype=x.dtype).view(-1, 1, 1, 1) * xi
    else:
        if generators is None or len(generators) != n:
            raise ValueError("a DP-SGD release needs one generator per image")
        if clip_norm is None:  # each release's own noise: ||x|| / mu when the step clips,
            # z C when the gradient is below the clip norm (a faint image)
            releases = [privatize_dpsgd(x[i], mu[i], generator=generators[i]) for i in range(n)]
            stds = [r.noise_std for r in releases]
        else:
            releases = [privatize_dpsgd(x[i], mu[i], clip_norm=2 * clip_norm, rows=4,
                                        undo_clipping=False, generator=generators[i])
                        for i in range(n)]
            stds = [clip_norm / m for m in mu]
        images = torch.stack([r.x_tilde for r in releases])
    return Observations(images, stds, match_release(stds, prior.alphas_cumprod))


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
    return reconstruct(prior, obs.images, obs.matches, sampler=sampler, steps=steps,
                       seeds=seeds, batch_size=batch_size, progress=progress)
