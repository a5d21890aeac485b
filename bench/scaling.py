"""How the cost grows: reconstruction time against the number of budgets, the number of
seeds, and the image size (the embedded prior's architecture at 32, 64 and 128 pixels,
random weights), each relative to the smallest case, measured side by side in one run.

    python -m bench.scaling
"""

from __future__ import annotations

import json

import torch

from audit_engine.attacker import pipeline
from audit_engine.attacker.priors import ASSETS, Prior, load_prior
from bench.common import machine, median_of

STEPS = 20


def sweep_time(prior: Prior, n_budgets: int, n_seeds: int) -> float:
    size = prior.sample_size
    x = torch.rand(prior.channels, size, size, generator=torch.Generator().manual_seed(0))
    mus = torch.logspace(0, 2, n_budgets).tolist()  # mu 1 .. 100: all inside the prior's range
    xi = torch.stack(
        [
            torch.randn(x.shape, generator=torch.Generator().manual_seed(k))
            for k in range(n_seeds)
            for _ in mus
        ]
    )
    seeds = [k for k in range(n_seeds) for _ in mus]
    obs = pipeline.observe(
        prior, x.expand(len(seeds), *x.shape), mus * n_seeds, clip_norm=float(x.norm()), xi=xi
    )
    return median_of(lambda: pipeline.attack(prior, obs, steps=STEPS, seeds=seeds), 2)


def resized_prior(side: int) -> Prior:
    from diffusers import UNet2DModel

    base = load_prior(device="cpu")
    cfg = json.loads((ASSETS / "prior-mnist32" / "unet" / "config.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")} | {"sample_size": side}
    torch.manual_seed(0)
    unet = UNet2DModel(**cfg).eval().requires_grad_(False)
    return Prior(
        name=f"embedded architecture at {side}px",
        source="",
        unet=unet,
        alphas_cumprod=base.alphas_cumprod,
        prediction_type="epsilon",
        scheduler_config=base.scheduler_config,
    )


def main() -> None:
    prior = load_prior(device="cpu")
    print(f"machine: {machine()}; DDIM {STEPS} steps, budgets mu 1..100")
    base = sweep_time(prior, 1, 1)
    print(
        "budgets (1 seed):  "
        + "  ".join(f"{b}: {sweep_time(prior, b, 1) / base:.2f}x" for b in (1, 2, 4, 8, 16, 32))
    )
    print(
        "seeds (8 budgets): "
        + "  ".join(f"{k}: {sweep_time(prior, 8, k) / base:.2f}x" for k in (1, 2, 4, 8))
    )
    t32 = sweep_time(resized_prior(32), 8, 1)
    print(
        "image side (8 budgets, 1 seed, embedded architecture): "
        + "  ".join(
            f"{s}px: {sweep_time(resized_prior(s), 8, 1) / t32:.2f}x" for s in (32, 64, 128)
        )
    )


if __name__ == "__main__":
    main()
