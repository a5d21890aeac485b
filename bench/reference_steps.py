"""How many DDIM steps the reference set's samples need, side by side on the embedded prior:
the samples stand for what the attack outputs when the release carries nothing, and are
used for one number per image, the prior attacker's chance level (attacks.guess_rate). For
held-out digits, the chance level from 500 samples drawn with 10 steps (the default,
reconstruct.DEFAULT_DDIM_STEPS) against 25 and 100 steps, and what each costs.

    python -m bench.reference_steps [--images 50] [--samples 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audit_engine.attacker.attacks import guess_rate
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import sample
from audit_engine.audit.reference import reference_for
from bench.common import heldout, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--samples", type=int, default=500)
    args = ap.parse_args()
    print(machine())
    prior = load_prior()
    ref = reference_for(prior)
    x, _ = heldout(args.images)
    rates, seconds = {}, {}
    for steps in (10, 25, 100):
        t = time.perf_counter()
        s = sample(prior, args.samples, sampler="ddim", steps=steps, seed=0)
        seconds[steps] = time.perf_counter() - t
        rates[steps] = np.array(
            [max(0.1, guess_rate(x[i], s, ref.images, candidates=10)) for i in range(len(x))]
        )
    for steps in (10, 25):
        d = rates[steps] - rates[100]
        print(
            f"{steps} steps against 100: chance level mean {rates[steps].mean():.4f} vs "
            f"{rates[100].mean():.4f}, mean |difference| {np.abs(d).mean():.4f}, largest "
            f"{np.abs(d).max():.4f} over {len(x)} held-out digits; time "
            f"{seconds[steps]:.1f} s vs {seconds[100]:.1f} s ({seconds[steps] / seconds[100]:.2f}x)"
        )


if __name__ == "__main__":
    main()
