"""What the sequential rule's extra tries cost, side by side with the first look, on the
embedded prior and on the google/ddpm-celebahq-256 architecture (random weights) on this CPU.

    python -m bench.extra_tries

For each prior: the time of one UNet evaluation (a batch of the first look's tries, float32
and the audit's default precision), the first look of one budget (K tries x 10 DDIM steps)
and the most the rule adds at a budget that stays undetermined (the cap minus K tries), with
the expected added tries when the attacker is at chance (verdict.error_rates). The ratio
of added to first-look work is the same on any hardware; the seconds are this CPU's.
"""

from __future__ import annotations

import time

import torch

from audit_engine.attacker.priors import default_dtype, load_prior
from audit_engine.attacker.reconstruct import DEFAULT_DDIM_STEPS
from audit_engine.audit.run import default_max_trials
from audit_engine.audit.verdict import error_rates
from bench.common import machine, random_prior


def per_eval(prior, batch: int, repeats: int = 3) -> float:
    x = torch.randn(batch, prior.channels, prior.sample_size, prior.sample_size)
    t = torch.full((batch,), 500)
    with torch.inference_mode():
        prior.predict_eps(x.to(prior.dtype), t)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            prior.predict_eps(x.to(prior.dtype), t)
    return (time.perf_counter() - start) / repeats / batch


def main() -> None:
    print(machine())
    cases = [
        ("embedded (32 px)", lambda dt: load_prior(device="cpu", dtype=dt), 8),
        (
            "CelebA-HQ-256 architecture",
            lambda dt: random_prior("google/ddpm-celebahq-256", dtype=dt),
            4,
        ),
    ]
    for name, make, first in cases:
        cap = default_max_trials(first)
        expected = error_rates(first, cap, 0.1, 0.1)["expected_tries"]
        for dt in dict.fromkeys([torch.float32, default_dtype(torch.device("cpu"))]):
            prior = make(dt)
            e = per_eval(prior, first)
            look = first * DEFAULT_DDIM_STEPS * e
            most = (cap - first) * DEFAULT_DDIM_STEPS * e
            mean = (expected - first) * DEFAULT_DDIM_STEPS * e
            print(
                f"{name}, {str(dt).removeprefix('torch.')}: {e * 1000:.1f} ms per evaluation; "
                f"first look ({first} tries) {look:.1f} s; added at an undetermined budget: at "
                f"most {cap - first} tries = {most:.1f} s ({most / look:.1f}x the first look), "
                f"{expected - first:.1f} expected at chance = {mean:.1f} s"
            )


if __name__ == "__main__":
    main()
