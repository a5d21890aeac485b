"""The reverse diffusion process started at the matched timestep, batched.

Every sample i enters the batch at its own t*_i with x_{t*} = c_i * y_i (see
``schedule.TimestepMatch.start_scale``) and walks its own descending grid of
timesteps down to 0. All samples advance together, one UNet call per round, each
conditioned on its own timestep; a sample whose grid is shorter leaves the batch
when it is done. Randomness enters only through per-sample generators, so a result
depends on its seed, never on what else was in the batch.

DDIM (Song et al. 2021, eq. 12 with eta = 0):
    x0_hat   = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1]
    x_s      = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps
DDPM ancestral (Ho et al. 2020, eqs. 6-7; on a sub-grid this is the posterior of the
respaced process, on the full grid exactly DDPM with the "fixed_small" variance):
    x_s      = mean(x_t, x0_hat) + sqrt(beta~) z,  z ~ N(0, I),  no noise at the last step
with abar_s = 1 after the last step (t = 0).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..images import to_model, to_unit
from ..maths import streams
from ..maths.schedule import TimestepMatch
from ..progress import Progress, counted
from .priors import Prior

__all__ = [
    "SAMPLERS",
    "DEFAULT_DDIM_STEPS",
    "timestep_grid",
    "reconstruct",
    "sample",
    "count_unet_calls",
    "default_batch",
    "predict_x0",
    "ddim_step",
    "ddpm_step",
]

SAMPLERS = ("ddim", "ddpm")
# DDIM steps from t* by default: chosen from bench/steps.py (docs/PERFORMANCE.md): on 100
# held-out digits, 10 steps score within 2% SSIM of DDPM with every step at each budget
DEFAULT_DDIM_STEPS = 10


def timestep_grid(t_star: int, steps: int | None) -> list[int]:
    """Descending timesteps from t_star to 0, evenly spaced, at most ``steps`` of them.

    ``steps=None`` gives every timestep t_star, t_star - 1, ..., 0.
    """
    if t_star < 0:
        raise ValueError(f"t_star must be >= 0, got t_star={t_star}")
    if steps is None or steps >= t_star + 1:
        return list(range(t_star, -1, -1))
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got steps={steps}")
    if steps == 1:
        return [t_star]
    grid = np.round(np.linspace(t_star, 0, steps)).astype(int)
    return sorted(set(grid.tolist()), reverse=True)


def count_unet_calls(grids: Sequence[Sequence[int]]) -> tuple[int, int]:
    """(UNet calls = rounds, sample evaluations) that ``reconstruct`` makes for these grids."""
    return max((len(g) for g in grids), default=0), sum(len(g) for g in grids)


def _ticker(total: int, progress: Progress | None) -> Callable[[], None]:
    """A function to call after each UNet call: reports the UNet calls done to ``progress``."""
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        counted(progress, done, total, "reverse diffusion step")

    return tick


# pixels per UNet call by default: 1,024 images at 32x32, 16 at 256x256 (a 256-pixel UNet
# such as CelebA-HQ's needs about 0.25 GB of activations per image on a CPU)
MAX_BATCH_PIXELS = 2**20


def default_batch(prior: Prior) -> int:
    """Samples per UNet call when none is given: bounded in pixels, so that a large prior's
    ladder does not ask for tens of gigabytes at once."""
    return max(1, MAX_BATCH_PIXELS // (prior.sample_size**2))


@torch.inference_mode()
def reconstruct(
    prior: Prior,
    observations: torch.Tensor,
    matches: Sequence[TimestepMatch],
    *,
    sampler: str = "ddim",
    steps: int | None = DEFAULT_DDIM_STEPS,
    seeds: Sequence[int] | None = None,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Reconstruct images from privatized observations with the prior's reverse process.

    observations: (B, C, H, W) unclipped x_tilde in [0, 1] pixel scale.
    matches: one ``TimestepMatch`` per observation (where its reverse process starts).
    sampler: "ddim" (deterministic, eta = 0) or "ddpm" (ancestral: posterior samples).
    steps: grid points per sample (None: every timestep from t*; the usual for DDPM).
    seeds: per-sample seeds for DDPM noise (samples sharing a seed share the noise).
    progress: ``progress(fraction, "reverse diffusion step d/n")`` after every UNet call.
    batch_size: at most this many samples per UNet call (chunks run one after another);
        default ``default_batch(prior)``.
    Returns (B, C, H, W) reconstructions in [0, 1].
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got sampler={sampler!r}")
    if observations.ndim != 4:
        raise ValueError(f"observations must be (B, C, H, W), got {tuple(observations.shape)}")
    n = observations.shape[0]
    if len(matches) != n:
        raise ValueError(f"{len(matches)} timestep matches for {n} observations")
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} observations")
    expected = (prior.channels, prior.sample_size, prior.sample_size)
    if tuple(observations.shape[1:]) != expected:
        raise ValueError(
            f"observations are {tuple(observations.shape[1:])}, the prior expects {expected}"
        )
    grids = [timestep_grid(m.t_star, steps) for m in matches]
    chunk = max(1, int(batch_size)) if batch_size else default_batch(prior)
    chunks = [range(i, min(i + chunk, n)) for i in range(0, n, chunk)]
    tick = _ticker(sum(count_unet_calls([grids[i] for i in c])[0] for c in chunks), progress)
    scale = torch.tensor([m.start_scale for m in matches], dtype=torch.float64)
    starts = scale.view(-1, 1, 1, 1) * to_model(observations.double().cpu())  # x_{t*} = c y
    out = [
        _reverse(
            prior,
            starts[c.start : c.stop],
            [grids[i] for i in c],
            [seeds[i] for i in c],
            sampler,
            tick,
        )
        for c in chunks
    ]
    return torch.cat(out).cpu()


@torch.inference_mode()
def sample(
    prior: Prior,
    n: int,
    *,
    sampler: str = "ddim",
    steps: int | None = 100,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """n unconditional samples from the prior: the reverse process from x_T ~ N(0, I).

    Returns (n, C, H, W) in [0, 1]. Sample i uses seed + i.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got sampler={sampler!r}")
    shape = (prior.channels, prior.sample_size, prior.sample_size)
    seeds = [seed + i for i in range(n)]
    x_T = torch.stack(
        [
            torch.randn(
                shape, generator=streams.keyed(k % 2**64, streams.SAMPLE), dtype=torch.float64
            )
            for k in seeds
        ]
    )
    grid = timestep_grid(prior.num_train_timesteps - 1, steps)
    chunk = default_batch(prior)
    tick = _ticker(len(grid) * -(-n // chunk), progress)
    return torch.cat(
        [
            _reverse(
                prior,
                x_T[i : i + chunk],
                [grid] * len(x_T[i : i + chunk]),
                seeds[i : i + chunk],
                sampler,
                tick,
            ).cpu()
            for i in range(0, n, chunk)
        ]
    )


# The samplers' updates, each a pure function of tensors (abar_t: alphas_cumprod at the
# current timestep t, abar_s at the next one s < t, 1 after the last step; all broadcast).


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor) -> torch.Tensor:
    """The clean image the noise prediction implies (Ho et al. 2020, eq. 15; Song et al.
    2021, eq. 12's "predicted x0"): (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped
    to the data range [-1, 1]."""
    return ((x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, abar_s: torch.Tensor) -> torch.Tensor:
    """DDIM with eta = 0 (Song et al. 2021, eq. 12): x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps."""
    return abar_s.sqrt() * x0 + (1 - abar_s).sqrt() * eps


def ddpm_step(
    x_t: torch.Tensor, x0: torch.Tensor, abar_t: torch.Tensor, abar_s: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """One ancestral step from the posterior q(x_s | x_t, x0) (Ho et al. 2020, eqs. 6-7, with
    alpha = abar_t / abar_s, beta = 1 - alpha for a step that may skip timesteps):
    mean = sqrt(abar_s) beta / (1 - abar_t) x0 + sqrt(alpha) (1 - abar_s) / (1 - abar_t) x_t,
    variance beta~ = (1 - abar_s) / (1 - abar_t) beta; ``z`` is N(0, I) (zero at the last step)."""
    alpha = abar_t / abar_s
    beta = 1 - alpha
    mean = (abar_s.sqrt() * beta / (1 - abar_t)) * x0 + (
        alpha.sqrt() * (1 - abar_s) / (1 - abar_t)
    ) * x_t
    var = ((1 - abar_s) / (1 - abar_t) * beta).clamp(min=1e-20)
    return mean + var.sqrt() * z


def _reverse(prior: Prior, x_start, grids, seeds, sampler, tick) -> torch.Tensor:
    """One batch through the reverse process (see the module docstring).

    x_start: (B, C, H, W) in the model's scale, at each sample's first grid timestep.
    """
    device = prior.device
    work = torch.float64 if prior.dtype == torch.float64 else torch.float32
    abar = prior.alphas_cumprod  # float64, CPU
    x = x_start.to(device, work)
    gens = (
        [streams.keyed(seed % 2**64, streams.REVERSE) for seed in seeds]
        if sampler == "ddpm"
        else None
    )
    rounds = max(len(g) for g in grids)
    for k in range(rounds):
        active = [i for i, g in enumerate(grids) if k < len(g)]
        t = [grids[i][k] for i in active]
        t_next = torch.tensor([grids[i][k + 1] if k + 1 < len(grids[i]) else -1 for i in active])
        idx = torch.tensor(active, device=device)
        x_t = x if len(active) == len(grids) else x.index_select(0, idx)

        eps = prior.predict_eps(x_t, torch.tensor(t, device=device))  # the UNet call

        a_t = abar[t].view(-1, 1, 1, 1)
        a_s = torch.where(t_next >= 0, abar[t_next.clamp(min=0)], 1.0)
        a_s = a_s.view(-1, 1, 1, 1)
        a_t, a_s = a_t.to(device, x.dtype), a_s.to(device, x.dtype)
        x0 = predict_x0(x_t, eps, a_t)
        if sampler == "ddim":
            x_s = ddim_step(x0, eps, a_s)
        else:
            z = torch.stack(
                [torch.randn(x.shape[1:], generator=gens[i], dtype=work) for i in active]
            )
            z = z.to(device, work) * (t_next.to(device) >= 0).view(-1, 1, 1, 1)
            x_s = ddpm_step(x_t, x0, a_t, a_s, z)
        if len(active) == len(grids):
            x = x_s
        else:
            x = x.index_copy(0, idx, x_s)
        tick()
    return to_unit(x).clamp(0, 1)
