"""Streaming: the time to the dashboard's first picture against the time of one budget
alone, side by side in one run, on the google/ddpm-celebahq-256 architecture with random
weights on this CPU (default tries: 4 above 64 pixels; 10 DDIM steps).

    python -m bench.first_picture

The prior's reference set (look-alikes, typicality) is built once per prior and cached on
disk for every later audit; here it is made from N_REFERENCE random images (not the 50
samples a real 256-pixel prior gets: with 10 the warm-up alone ran past 11 minutes on this
CPU), and it is excluded from both timings alike. The identification then has fewer look-alikes
than 10; the work timed (one budget's reverse process and the image's domain check) is the same.
"""

from __future__ import annotations

import time

import torch

from audit_engine.audit import reference as ref_mod
from audit_engine.audit.run import run_audit
from audit_engine.session import ladder as db
from audit_engine.session import views
from bench.common import machine, random_prior

N_REFERENCE = 2  # images in the bench's stand-in reference set (the warm-up dominates)


def main() -> None:
    print(machine())
    prior = random_prior("google/ddpm-celebahq-256")
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N_REFERENCE, 3, 256, 256, generator=g)
    t = time.perf_counter()
    arrays = ref_mod.build_reference(prior, images=images, n_samples=N_REFERENCE)
    ref = ref_mod.reference_from_arrays(arrays, f"{N_REFERENCE} random images (bench)", prior)
    ref_mod._MEMORY.put((prior.name, str(prior.folder), None), ref)
    print(f"warm-up: reference set built in {time.perf_counter() - t:.0f} s (once per prior)")
    x = torch.rand(3, 256, 256, generator=g)
    settings = db.Settings(prior=prior.name, trials=4, lpips=None)
    mu = 3.0

    t = time.perf_counter()
    run_audit(x, mus=[mu], prior=prior, trials=4, lpips=None)
    one = time.perf_counter() - t

    orig = db.load_prior
    db.load_prior = lambda name=None, **kw: prior  # the dashboard loads this random prior
    try:
        t = time.perf_counter()
        steps = db.ladder_steps(x, settings, current_mu=mu)
        first = next(steps)
        to_first = time.perf_counter() - t
        steps.close()  # the rest of the ladder is not timed here
    finally:
        db.load_prior = orig
    assert first.pending == db.LADDER_SIZE and views.view_budget(first, mu).exact
    print(f"one budget alone (run_audit, 4 tries): {one:.1f} s")
    print(f"dashboard's first picture (ladder_steps, the chosen budget): {to_first:.1f} s")
    print(f"first picture / one budget: {to_first / one:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
