"""Sweep: the engine's batched reconstruction of one image at 8 budgets vs a hand-written
per-budget diffusers loop (DDPMScheduler, every step from t*), on the embedded prior.

    python bench/sweep.py [--images 4]

Prints, side by side in one run: wall time of both and their ratio, the mean SSIM of both
against the originals, and the full dashboard ladder (run_audit with every metric) time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import heldout, machine

from audit_engine.audit import run_audit
from audit_engine.dashboard import ladder_mus
from audit_engine.mechanism import noise_std, privatize
from audit_engine.metrics import similarity
from audit_engine.priors import load_prior
from audit_engine.reconstruct import reconstruct
from audit_engine.schedule import match_timesteps

DEFAULT_STEPS = 20


def hand_written(prior, y_obs: torch.Tensor, t_star: int, seed: int) -> torch.Tensor:
    """What a user writes with diffusers: start at t*, scheduler.step every timestep to 0."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_config(prior.scheduler_config)
    sched.set_timesteps(sched.config.num_train_timesteps)
    g = torch.Generator().manual_seed(seed)
    abar = sched.alphas_cumprod[t_star]
    x = abar.sqrt() * (2 * y_obs - 1)
    with torch.no_grad():
        for t in sched.timesteps:
            if t > t_star:
                continue
            eps = prior.unet(x, t).sample
            x = sched.step(eps, t, x, generator=g).prev_sample
    return ((x + 1) / 2).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    args = ap.parse_args()
    prior = load_prior(device="cpu")
    xs, _ = heldout(args.images)
    t_engine = t_hand = t_ladder = 0.0
    ssim_engine, ssim_hand, calls_hand = [], [], 0
    for i, x in enumerate(xs):
        mus = ladder_mus(float(x.norm()))
        xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        obs = torch.stack([privatize(x, mu, xi=xi) for mu in mus])
        matches = match_timesteps([2 * float(noise_std(x, mu)) for mu in mus], prior.alphas_cumprod)

        t = time.perf_counter()
        rec = reconstruct(prior, obs, matches, steps=args.steps)
        t_engine += time.perf_counter() - t

        t = time.perf_counter()
        hand = torch.cat([hand_written(prior, o[None], m.t_star, seed=i) for o, m in zip(obs, matches)])
        t_hand += time.perf_counter() - t
        calls_hand += sum(m.t_star + 1 for m in matches)

        ssim_engine += [r["ssim"] for r in similarity(x, rec)]
        ssim_hand += [r["ssim"] for r in similarity(x, hand)]

        t = time.perf_counter()
        run_audit(x, mus=mus, prior=prior, steps=args.steps, lpips="alex")
        t_ladder += time.perf_counter() - t

    n = len(xs)
    print(f"machine: {machine()}")
    print(f"embedded prior, {n} held-out digits x 8 budgets (the dashboard's ladder), "
          f"DDIM {args.steps} steps vs hand-written DDPM loop ({calls_hand / n:.0f} UNet calls per image)")
    print(f"{'':34s} {'per image (s)':>14s} {'mean SSIM':>10s}")
    print(f"{'engine, batched DDIM':34s} {t_engine / n:14.3f} {np.mean(ssim_engine):10.3f}")
    print(f"{'hand-written DDPM loop per budget':34s} {t_hand / n:14.3f} {np.mean(ssim_hand):10.3f}")
    print(f"speed-up (hand-written / engine): {t_hand / t_engine:.1f}x")
    print(f"full ladder incl. privatization and all metrics (run_audit): {t_ladder / n:.3f} s per image "
          f"({t_ladder / t_engine:.2f}x the reconstruction alone)")


if __name__ == "__main__":
    main()
