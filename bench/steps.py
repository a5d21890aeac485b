"""Steps vs quality: DDIM with 5, 10, 20, 50 steps and DDPM with every step from t*, on
held-out digits at several budgets (embedded prior); also the default DDIM setting in
bfloat16 and channels-last, to see whether they are faster and whether quality holds.

    python -m bench.steps [--images 100]

Prints per setting: mean SSIM and MSE against the originals, wall time, and time and SSIM
relative to DDPM with every step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit_engine.attacker import pipeline
from audit_engine.attacker.metrics import similarity
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import DEFAULT_DDIM_STEPS
from bench.common import heldout, machine

MUS = (2.0, 5.0, 10.0, 20.0, 50.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument(
        "--default-steps",
        type=int,
        default=DEFAULT_DDIM_STEPS,
        help="steps for the bfloat16 and channels-last rows",
    )
    args = ap.parse_args()
    prior = load_prior(device="cpu", dtype=torch.float32)
    x, _ = heldout(args.images)
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    ref = x.repeat(len(MUS), 1, 1, 1)
    released = pipeline.observe_at_own_norm(
        prior, ref, [mu for mu in MUS for _ in x], xi=xi.repeat(len(MUS), 1, 1, 1)
    )
    obs = released.images

    settings = [(f"DDIM {k} steps", "ddim", k, prior) for k in (5, 10, 20, 50)]
    settings.append(("DDPM, every step from t*", "ddpm", None, prior))
    bf16 = load_prior(device="cpu", dtype=torch.bfloat16)
    settings.append((f"DDIM {args.default_steps}, bfloat16 UNet", "ddim", args.default_steps, bf16))
    cl = load_prior(device="cpu", dtype=torch.float32)
    cl = type(cl)(**{**cl.__dict__, "unet": cl.unet.to(memory_format=torch.channels_last)})
    settings.append((f"DDIM {args.default_steps}, channels-last", "ddim", args.default_steps, cl))

    rows = []
    for name, sampler, steps, p in settings:
        t = time.perf_counter()
        rec = pipeline.attack(p, released, sampler=sampler, steps=steps, batch_size=256)
        wall = time.perf_counter() - t
        if name.endswith("channels-last"):
            p.unet.to(memory_format=torch.contiguous_format)
        m = [similarity(a, b[None])[0] for a, b in zip(ref, rec)]
        per_mu = np.array([r["ssim"] for r in m]).reshape(len(MUS), -1).mean(1)
        rows.append(
            (name, np.mean([r["ssim"] for r in m]), np.mean([r["mse"] for r in m]), wall, per_mu)
        )
    ddpm = next(r for r in rows if r[0].startswith("DDPM"))
    print(f"machine: {machine()}")
    print(
        f"embedded prior, {args.images} held-out digits x mu in {MUS} ({len(obs)} reconstructions)"
    )
    head = (
        f"{'setting':30s} {'SSIM':>6s} {'MSE':>7s} {'time s':>7s} {'time/DDPM':>9s} "
        f"{'SSIM vs DDPM':>12s}   SSIM per mu"
    )
    print(head)
    print("-" * len(head))
    for name, ssim, mse, wall, per_mu in rows:
        print(
            f"{name:30s} {ssim:6.3f} {mse:7.4f} {wall:7.2f} {wall / ddpm[3]:9.3f} "
            f"{(ssim - ddpm[1]) / ddpm[1]:+11.1%}   " + " ".join(f"{v:.3f}" for v in per_mu)
        )


if __name__ == "__main__":
    main()
