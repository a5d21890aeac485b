"""The mutation check: do the tests fail when the mathematics or the verdict rule is wrong?

Each mutant below breaks one formula of maths/ or one step of the verdict rule the way a
plausible slip would (a sign, a square, a comparison, a bound's side); the check applies it,
runs the tests that guard it, expects at least one failure, and restores the file. It fails
(exit 1) when a mutant survives or when a mutant's target text is no longer in its file (the
list must follow the code: a stale mutant is an error, never skipped).

    python scripts/mutation_check.py            # every mutant (a few minutes)
    python scripts/mutation_check.py -k verdict # those whose name contains "verdict"

The slow test ``tests/test_mutation.py`` (marker ``mutation``) runs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments that must fail with the mutant


MUTANTS = [
    # the mu-GDP trade-off curve (eps <-> mu at delta)
    Mutant(
        "accounting: delta(eps; mu), first term's sign",
        "audit_engine/maths/accounting.py",
        "a = special.log_ndtr(-eps / mu + mu / 2)",
        "a = special.log_ndtr(-eps / mu - mu / 2)",
        ("tests/test_accounting.py",),
    ),
    Mutant(
        "accounting: delta(eps; mu), second term's half",
        "audit_engine/maths/accounting.py",
        "b = special.log_ndtr(-eps / mu - mu / 2)",
        "b = special.log_ndtr(-eps / mu - mu)",
        ("tests/test_accounting.py",),
    ),
    # the reconstruction bound of a mu-GDP release
    Mutant(
        "bounds: ReRo bound Phi(Phi^-1(kappa) + mu)",
        "audit_engine/maths/bounds.py",
        "return special.ndtr(special.ndtri(_check_kappa(kappa)) + mu)",
        "return special.ndtr(special.ndtri(_check_kappa(kappa)) + mu / 2)",
        ("tests/test_bounds.py",),
    ),
    # the release: clipping
    Mutant(
        "mechanism: clipping never enlarges",
        "audit_engine/maths/mechanism.py",
        "return x * torch.clamp(c / norms, max=1.0)",
        "return x * (c / norms)",
        ("tests/test_mechanism.py",),
    ),
    # the timestep whose noise level matches the release's
    Mutant(
        "schedule: noise-to-signal ratio",
        "audit_engine/maths/schedule.py",
        "target = sig**2",
        "target = sig",
        ("tests/test_schedule.py",),
    ),
    Mutant(
        "schedule: the nearer neighbour",
        "audit_engine/maths/schedule.py",
        "t = np.where(np.abs(ratio[lo] - target) <= np.abs(ratio[hi] - target), lo, hi)",
        "t = hi",
        ("tests/test_schedule.py",),
    ),
    # the verdict rule
    Mutant(
        "verdict: protection needs the upper bound",
        "audit_engine/audit/verdict.py",
        "    if hi <= chance + tolerance:\n        return PROTECTED, lo, hi",
        "    if lo <= chance + tolerance:\n        return PROTECTED, lo, hi",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: disclosure needs the lower bound above chance",
        "audit_engine/audit/verdict.py",
        "    if lo > chance:\n",
        "    if hi > chance:\n",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: recognisable needs a rate above one half",
        "audit_engine/audit/verdict.py",
        'return ("recognisable" if successes / trials > 0.5',
        'return ("recognisable" if successes / trials > 0.0',
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: Bonferroni over the looks",
        "audit_engine/audit/verdict.py",
        "alpha_lo=ALPHA_DISCLOSURE / n_looks,",
        "alpha_lo=ALPHA_DISCLOSURE,",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: exact lower bound's parameters",
        "audit_engine/audit/verdict.py",
        "beta.ppf(alpha_lo, successes, trials - successes + 1)",
        "beta.ppf(alpha_lo, successes + 1, trials - successes)",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: the DP bound proves protection",
        "audit_engine/audit/verdict.py",
        "return bound, bound <= chance + tolerance",
        "return bound, bound <= chance",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: looks double",
        "audit_engine/audit/verdict.py",
        "out.append(min(2 * out[-1], int(cap)))",
        "out.append(min(4 * out[-1], int(cap)))",
        ("tests/test_verdict.py",),
    ),
    Mutant(
        "verdict: the domain threshold",
        "audit_engine/audit/verdict.py",
        "    return distance <= threshold\n",
        "    return distance <= 2 * threshold\n",
        ("tests/test_embedded_prior.py", "-k", "domain or photo or outside"),
    ),
]


def run(m: Mutant) -> str:
    """'killed', 'SURVIVED' or 'STALE' (the target text is gone) for one mutant."""
    path = ROOT / m.file
    text = path.read_text()
    if text.count(m.old) != 1:
        return "STALE"
    try:
        path.write_text(text.replace(m.old, m.new, 1))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        path.write_text(text)
    return "killed" if done.returncode != 0 else "SURVIVED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only mutants whose name contains this")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if args.k in m.name]
    bad = 0
    for m in chosen:
        t = time.perf_counter()
        outcome = run(m)
        bad += outcome != "killed"
        print(f"{outcome:8s} {m.name} ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} mutants killed")
    return 1 if bad or not chosen else 0


if __name__ == "__main__":
    sys.exit(main())
