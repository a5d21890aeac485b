"""Solving for the budget against one dashboard ladder, side by side in one run, on the
embedded prior with the dashboard's defaults (8 tries, 10 DDIM steps, no LPIPS): the
single-image search (solve.py) must finish in under 10 s on this machine; here it is given
as a ratio to one 8-budget ladder (plus the chosen budget) on the same image.

    python bench/solve.py [--images N] [--check M]

``--check M`` also does what a reviewer would on M held-out digits (never used in training):
solve, then a fresh audit (the audit command's defaults) at 0.8 x and at 2 x the budget
found, and counts how often the level holds at 0.8 x and fails at 2 x.

Each timing is the median over the example digits (both warmed up first: the prior, its
reference set and the classifier are loaded once per process).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import machine

from audit_engine import dashboard as db
from audit_engine.priors import load_prior
from audit_engine.solve import solve_budget

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6, help="example digits to time (default 6)")
    ap.add_argument("--check", type=int, default=0, help="held-out digits to check at 0.8x / 2x")
    args = ap.parse_args()
    if args.check:
        check(args.check)
    if not args.images:
        return
    digits = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[: args.images]
    prior = load_prior()
    settings = db.Settings(lpips=None)
    db.compute_ladder(digits[0], settings, current_mu=3.0)  # warm-up: prior, reference, classifier
    solve_budget(digits[0], prior=prior)
    ladder, search, evals = [], [], []
    for d in digits:
        t = time.perf_counter()
        db.compute_ladder(d, settings, current_mu=3.0)
        ladder.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = solve_budget(d, prior=prior)
        search.append(time.perf_counter() - t)
        evals.append(r.evaluations)
        print(f"{d.name}: ladder {ladder[-1]:.2f} s, search {search[-1]:.2f} s "
              f"({r.evaluations} budgets; eps_max {r.eps_max:.3g})")
    lad, sol = statistics.median(ladder), statistics.median(search)
    print(machine())
    print(f"median over {len(digits)} digits: one ladder (9 budgets x 8 tries) {lad:.2f} s; "
          f"the search ({statistics.median(evals):.0f} budgets x 8 tries) {sol:.2f} s")
    print(f"search / one ladder: {sol / lad:.2f}x; search under 10 s: "
          f"{'yes' if max(search) < 10 else 'no'} (slowest {max(search):.2f} s)")


def check(n: int) -> None:
    from common import heldout

    from audit_engine.audit import run_audit
    from audit_engine.solve import level_holds

    x, _ = heldout(n)
    prior = load_prior()
    below = above = found = 0
    for i in range(n):
        r = solve_budget(x[i], prior=prior)
        if r.mu_max is None or r.bracket[1] is None:
            print(f"held-out digit {i}: no bracket ({r.sentence()})")
            continue
        found += 1
        a = run_audit(x[i], mus=[0.8 * r.mu_max, 2 * r.mu_max], prior=prior, lpips=None)
        lo_ok = level_holds(a.verdicts[0], r.level)
        hi_fails = not level_holds(a.verdicts[1], r.level)
        below += lo_ok
        above += hi_fails
        print(f"held-out digit {i}: eps_max {r.eps_max:.3g}; at 0.8x holds: {lo_ok}; "
              f"at 2x fails: {hi_fails} ({a.verdicts[1].identification.successes} of 8)")
    print(f"{found} of {n} digits bracketed; level holds at 0.8x in {below} of {found}; "
          f"fails at 2x in {above} of {found}")


if __name__ == "__main__":
    main()
