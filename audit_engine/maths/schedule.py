"""Timestep matching (Carlini et al. 2023): the diffusion step whose noise level equals the
privatization noise.

In diffusion scale the observation is y = 2 x_tilde - 1 = x0 + sigma_dm * xi with
sigma_dm = 2 s (``images.model_std``; ``match_release`` takes s itself). The forward process is x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, so
y * sqrt(abar_t) looks like x_t when (1 - abar_t) / abar_t = sigma_dm^2. ``t_star`` is the
scheduler's own timestep index (0 .. T-1, the value the UNet is conditioned on) whose
ratio is closest to sigma_dm^2; the schedule is always read from the scheduler, never
hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..images import model_std

__all__ = ["TimestepMatch", "noise_to_signal", "match_timestep", "match_timesteps", "match_release"]


@dataclass(frozen=True)
class TimestepMatch:
    """Where the reverse process starts for one observation."""

    t_star: int  # scheduler timestep index in 0 .. T-1
    sigma_dm: float  # observation noise std in the model's [-1, 1] scale
    sigma_t: float  # the noise std the schedule has at t_star: sqrt((1 - abar) / abar)
    abar: float  # alphas_cumprod[t_star]
    beyond_range: bool  # sigma_dm above the schedule's maximum: start at T-1, prior sample
    below_range: bool  # sigma_dm below the first step's noise: t_star = 0
    sigma_max: float  # the schedule's largest expressible noise std

    @property
    def start_scale(self) -> float:
        """Factor c so that c * y starts the reverse process at t_star.

        Within the schedule's range c = sqrt(abar_t*) (Carlini et al.). Beyond it,
        sqrt(abar_T) * y would carry more noise than x_T may have, so y is scaled to the
        variance x_T expects: c = sqrt(1 - abar_T) / sigma_dm (< sqrt(abar_T)).
        """
        c = float(np.sqrt(self.abar))
        if self.beyond_range:
            c = min(c, float(np.sqrt(1.0 - self.abar)) / self.sigma_dm)
        return c

    def describe(self) -> str:
        if self.beyond_range:
            return (
                f"beyond the prior's range: noise std {self.sigma_dm:.3g} exceeds the "
                f"schedule's maximum {self.sigma_max:.3g}; the reconstruction is "
                "essentially a sample from the prior"
            )
        if self.below_range:
            return (
                f"below the prior's smallest step: noise std {self.sigma_dm:.3g} < "
                f"{self.sigma_t:.3g}; one denoising step at t = 0"
            )
        return f"t* = {self.t_star} (noise std {self.sigma_dm:.3g}, schedule {self.sigma_t:.3g})"


def noise_to_signal(alphas_cumprod: torch.Tensor | np.ndarray) -> np.ndarray:
    """(1 - abar_t) / abar_t for every timestep, float64."""
    abar = np.asarray(torch.as_tensor(alphas_cumprod).double().cpu().numpy(), dtype=np.float64)
    if abar.ndim != 1 or abar.size < 2:
        raise ValueError(f"alphas_cumprod must be a 1-d schedule, got shape {abar.shape}")
    if not np.all(np.diff(abar) < 0) or abar[0] > 1 or abar[-1] <= 0:
        raise ValueError("alphas_cumprod must decrease strictly inside (0, 1]")
    return (1.0 - abar) / abar


def match_timestep(sigma_dm: float, alphas_cumprod: torch.Tensor | np.ndarray) -> TimestepMatch:
    """t* = argmin_t |(1 - abar_t) / abar_t - sigma_dm^2| over the scheduler's timesteps."""
    return match_timesteps([sigma_dm], alphas_cumprod)[0]


def match_timesteps(sigmas_dm, alphas_cumprod: torch.Tensor | np.ndarray) -> list[TimestepMatch]:
    """Vectorised ``match_timestep`` for several noise levels."""
    sig = np.asarray(sigmas_dm, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"noise levels must be finite and >= 0, got {sig.tolist()}")
    ratio = noise_to_signal(alphas_cumprod)
    abar = 1.0 / (1.0 + ratio)
    target = sig**2
    # ratio is increasing: the closest entry is one of the two neighbours of the insertion point.
    hi = np.clip(np.searchsorted(ratio, target), 0, len(ratio) - 1)
    lo = np.clip(hi - 1, 0, len(ratio) - 1)
    t = np.where(np.abs(ratio[lo] - target) <= np.abs(ratio[hi] - target), lo, hi)
    sigma_max = float(np.sqrt(ratio[-1]))
    out = []
    for s, ti in zip(sig, t):
        out.append(
            TimestepMatch(
                t_star=int(ti),
                sigma_dm=float(s),
                sigma_t=float(np.sqrt(ratio[ti])),
                abar=float(abar[ti]),
                beyond_range=bool(s > sigma_max),
                below_range=bool(s < np.sqrt(ratio[0])),
                sigma_max=sigma_max,
            )
        )
    return out


def match_release(pixel_stds, alphas_cumprod: torch.Tensor | np.ndarray) -> list[TimestepMatch]:
    """Where the reverse process starts for releases whose noise std is given in [0, 1]
    pixel scale (s = C / mu for the release, times the attacker's public rescaling): the std is converted to the
    model's scale here, the one place the pipeline does so, then matched."""
    return match_timesteps(
        [model_std(float(s)) for s in np.asarray(pixel_stds, dtype=np.float64).reshape(-1)],
        alphas_cumprod,
    )
