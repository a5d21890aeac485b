"""The dashboard's first page on the embedded prior (the 8-budget ladder and the chosen budget,
with their verdicts) against a baseline commit, side by side in one run, and the solver.

    python -m bench.first_page [--baseline REF] [--rounds 3]

The baseline is checked out in a temporary git worktree; each round runs both trees in fresh
processes, one after the other (the order alternates), on the same example digits, after a
warm-up (the prior, its reference set and the classifier are loaded once per process).
Reported: the median time to the first page of each tree and their ratio; for this tree also
the time until the sequential rule's added tries are in (the page's second update), and the
solver's median time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ["digit-0-0", "digit-1-510", "digit-3-1543", "digit-7-3517"]

PROBE = r"""
import json, sys, time
from audit_engine.session import ladder as db
from audit_engine.attacker.priors import load_prior
names, solve = sys.argv[1].split(","), sys.argv[2] == "1"
prior = load_prior()
settings = db.Settings(lpips=None)
path = lambda n: f"{sys.argv[3]}/assets/examples/{n}.png"
list(db.ladder_steps(path(names[0]), settings, current_mu=2.0))  # warm-up
first, full, solved = [], [], []
for n in names:
    t = time.perf_counter()
    steps = db.ladder_steps(path(n), settings, current_mu=2.0)
    next(steps)
    first.append(time.perf_counter() - t)
    for _ in steps:
        pass
    full.append(time.perf_counter() - t)
    if solve:
        from audit_engine.audit.solve import solve_budget
        t = time.perf_counter()
        solve_budget(path(n), prior=prior)
        solved.append(time.perf_counter() - t)
print(json.dumps({"first": first, "full": full, "solve": solved}))
"""


def run(tree: Path, solve: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(DIGITS), "1" if solve else "0", str(ROOT)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin", "GRADIO_ANALYTICS_ENABLED": "False"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="HEAD", help="git ref to compare with (default HEAD)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from bench.common import machine

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            res = {
                "baseline": {"first": [], "full": [], "solve": []},
                "this": {"first": [], "full": [], "solve": []},
            }
            for r in range(args.rounds):
                order = [("baseline", base), ("this", ROOT)]
                for name, tree in order if r % 2 == 0 else order[::-1]:
                    got = run(tree, solve=name == "this" and r == 0)
                    for k, v in got.items():
                        res[name][k] += v
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                capture_output=True,
            )
    med = {n: {k: statistics.median(v) for k, v in d.items() if v} for n, d in res.items()}
    print(f"first page with its verdicts, median over {len(DIGITS)} digits x {args.rounds} rounds:")
    print(f"  baseline {args.baseline}: {med['baseline']['first']:.2f} s")
    print(
        f"  this tree: {med['this']['first']:.2f} s   ratio {med['this']['first'] / med['baseline']['first']:.2f}x"
    )
    print(
        f"  this tree, with the sequential rule's added tries: {med['this']['full']:.2f} s   "
        f"ratio {med['this']['full'] / med['baseline']['first']:.2f}x the baseline's page"
    )
    print(f"solver (this tree), median over {len(DIGITS)} digits: {med['this']['solve']:.2f} s")


if __name__ == "__main__":
    main()
