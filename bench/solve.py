"""Solving for the budget against one dashboard ladder, side by side in one run, on the
embedded prior with the dashboard's defaults (8 tries, 10 DDIM steps, no LPIPS): the
single-image search (solve.py) must finish in under 10 s on this machine; here it is given
as a ratio to one 8-budget ladder (plus the chosen budget) on the same image.

    python bench/solve.py [--images N]

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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
