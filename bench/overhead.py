"""Overhead: the engine's 8-budget sweep time divided by the UNet floor (the UNet calls it
makes, each timed alone at the same batch shape, in the same run), on a UNet with the
architecture of google/ddpm-cifar10-32 (random weights: timing only).

    python -m bench.overhead [--arch google/ddpm-cifar10-32] [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

from audit_engine.attacker.reconstruct import reconstruct, timestep_grid
from bench.common import ladder_inputs, machine, median_of, random_prior


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="google/ddpm-cifar10-32")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    prior = random_prior(args.arch, device=args.device, dtype=dtype)
    size = prior.sample_size
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, size, size, generator=g)
    _, obs, matches = ladder_inputs(prior, x, torch.randn(x.shape, generator=g))

    def sweep():
        reconstruct(prior, obs, matches, steps=args.steps)
        sync(args.device)

    t_engine = median_of(sweep, args.repeats)

    # the floor: one UNet forward per round, at the batch size of that round
    grids = [timestep_grid(m.t_star, args.steps) for m in matches]
    rounds = Counter(sum(1 for gr in grids if k < len(gr)) for k in range(max(map(len, grids))))
    floor = 0.0
    with torch.inference_mode():
        for batch, count in sorted(rounds.items()):
            xb = torch.randn(batch, 3, size, size, device=args.device, dtype=dtype)
            tb = torch.full((batch,), 500, device=args.device)

            def forward():
                prior.unet(xb, tb)
                sync(args.device)

            floor += count * median_of(forward, args.repeats)
    print(f"machine: {machine()}; device {args.device}, {args.dtype}")
    print(
        f"{args.arch} architecture (random weights), 8 budgets, DDIM {args.steps} steps: "
        f"{sum(rounds.values())} UNet calls, batch sizes {dict(sorted(rounds.items()))}"
    )
    print(f"engine sweep {t_engine:.3f} s, UNet floor {floor:.3f} s")
    print(f"overhead (engine / floor): {t_engine / floor:.3f}x")


if __name__ == "__main__":
    main()
