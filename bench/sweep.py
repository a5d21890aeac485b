"""Sweep: the engine's batched reconstruction of one image at 8 budgets vs a hand-written
per-budget diffusers loop (DDPMScheduler, every step from t*), on the embedded prior.

    python -m bench.sweep [--images 4]

Prints, side by side in one run: wall time per image and the speed-up over the hand-written
loop, mean SSIM against the originals (overall and per budget) for the engine's default
DDIM, the engine's DDPM on the same number of (respaced) steps and the hand-written loop,
and the full dashboard ladder (run_audit with every metric) time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit_engine.attacker.metrics import similarity
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import reconstruct
from audit_engine.audit.run import run_audit
from audit_engine.session.ladder import Settings
from bench.common import heldout, ladder_inputs, machine

DEFAULT_STEPS = Settings().steps


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
    prior = load_prior(device="cpu")  # the engine's defaults (bfloat16 on CPUs that have it)
    plain = load_prior(device="cpu", dtype=torch.float32)  # what a hand-written loop uses
    xs, _ = heldout(args.images)
    names = [
        f"engine, batched DDIM {args.steps} steps (default)",
        f"engine, batched DDPM {args.steps} steps",
        "hand-written DDPM loop, every step",
    ]
    times = dict.fromkeys(names, 0.0)
    ssim = {k: [] for k in names}
    t_ladder, calls_hand = 0.0, 0
    for i, x in enumerate(xs):
        xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        mus, obs, matches = ladder_inputs(prior, x, xi)
        runs = {
            names[0]: lambda: reconstruct(prior, obs, matches, steps=args.steps),
            names[1]: lambda: reconstruct(
                prior, obs, matches, sampler="ddpm", steps=args.steps, seeds=[i] * len(mus)
            ),
            names[2]: lambda: torch.cat(
                [hand_written(plain, o[None], m.t_star, seed=i) for o, m in zip(obs, matches)]
            ),
        }
        for name, fn in runs.items():
            t = time.perf_counter()
            rec = fn()
            times[name] += time.perf_counter() - t
            ssim[name].append([r["ssim"] for r in similarity(x, rec)])
        calls_hand += sum(m.t_star + 1 for m in matches)
        t = time.perf_counter()
        run_audit(x, mus=mus, prior=prior, steps=args.steps, lpips="alex")
        t_ladder += time.perf_counter() - t

    n = len(xs)
    hand = times[names[2]]
    print(f"machine: {machine()}")
    print(
        f"embedded prior ({prior.dtype} in the engine, float32 by hand), {n} held-out digits "
        f"(classes in turn) x the dashboard's 8-budget ladder; "
        f"the hand-written loop makes {calls_hand / n:.0f} UNet calls per image"
    )
    print(
        f"{'':44s} {'s/image':>8s} {'speed-up':>8s} {'SSIM':>6s}   SSIM per budget, strongest protection first"
    )
    for name in names:
        per = np.mean(ssim[name], axis=0)
        print(
            f"{name:44s} {times[name] / n:8.3f} {hand / times[name]:7.1f}x {per.mean():6.3f}   "
            + " ".join(f"{v:.3f}" for v in per)
        )
    print(
        f"full ladder incl. privatization and all metrics (run_audit, DDIM {args.steps}): "
        f"{t_ladder / n:.3f} s per image"
    )


if __name__ == "__main__":
    main()
