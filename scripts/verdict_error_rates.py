"""Both error rates of the verdict rule (verdict.decide, the sequential looks), computed
exactly for the schedules the product uses and the chance levels it meets, written to
docs/verdict-error-rates.json and the generated block of docs/VERDICTS.md.

    python scripts/verdict_error_rates.py            # rewrites both
    python scripts/verdict_error_rates.py --check    # exit 1 if either is out of date

The rates are exact (dynamic programming over the binomial counts, verdict.error_rates);
tests/test_verdict.py checks that function against a simulation of the rule, and
tests/test_docs.py that these files match it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from audit_engine.audit.verdict import (
    ALPHA_DISCLOSURE,
    ALPHA_PROTECTION,
    GALLERY_TRIES,
    RELEASE_TRIES,
    TOLERANCE,
    demonstrated_validity,
    error_rates,
    looks,
)
from audit_engine.docblocks import publish

SCHEDULES = {
    "prior attacker, priors up to 64 px": (8, 64),
    "prior attacker, larger priors": (4, 32),
    "gallery attacker": (GALLERY_TRIES, GALLERY_TRIES),
    # the attribute: read off the reconstruction, the prior attacker's schedules above
    # (the same rule and tries); read off the release, one look of RELEASE_TRIES
    "attribute read off the release": (RELEASE_TRIES, RELEASE_TRIES),
}
CHANCES = (0.1, 0.15, 0.2, 0.3, 0.5)
VALIDITY_MUS = (0.5, 1.0, 2.0, 5.0)  # the image's own budgets of the validity table
JSON = ROOT / "docs" / "verdict-error-rates.json"
DOC = ROOT / "docs" / "VERDICTS.md"


def compute() -> dict:
    rows = []
    for name, (first, cap) in SCHEDULES.items():
        for c in CHANCES:
            at_chance = error_rates(first, cap, c, c)
            at_tol = error_rates(first, cap, c, c + TOLERANCE)
            at_high = error_rates(first, cap, c, min(1.0, c + 0.3))
            # 12 significant digits: the last bits of a float sum differ between machines'
            # numerical libraries, and the check must not depend on them
            r12 = lambda v: float(f"{v:.12g}")
            rows.append(
                {
                    "attacker": name,
                    "looks": looks(first, cap),
                    "chance": c,
                    "false_disclosure": r12(at_chance["disclosure"]),
                    "false_protection": r12(at_tol["protection"]),
                    "protected_at_chance": r12(at_chance["protection"]),
                    "tries_at_chance": r12(at_chance["expected_tries"]),
                    "disclosure_at_chance_plus_0.3": r12(at_high["disclosure"]),
                }
            )
    validity = [
        {
            "attacker": name,
            "chance": c,
            "valid": {
                f"{m:g}": float(f"{demonstrated_validity(first, cap, c, m):.12g}")
                for m in VALIDITY_MUS
            },
        }
        for name, (first, cap) in SCHEDULES.items()
        for c in CHANCES
    ]
    return {
        "tolerance": TOLERANCE,
        "alpha_disclosure": ALPHA_DISCLOSURE,
        "alpha_protection": ALPHA_PROTECTION,
        "rows": rows,
        "demonstrated_validity": validity,
    }


def table(data: dict) -> str:
    lines = [
        "| attacker | tries after each look | chance | disclosure called at chance "
        f"(at most {data['alpha_disclosure']:.1%}) | protection called at chance + "
        f"{data['tolerance']:.2f} (at most {data['alpha_protection']:.0%}) | protection "
        "called at chance | mean tries at chance | disclosure called at chance + 0.30 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['attacker']} | {' -> '.join(map(str, r['looks']))} | {r['chance']:.2f} "
            f"| {r['false_disclosure']:.2%} | {r['false_protection']:.2%} "
            f"| {r['protected_at_chance']:.1%} | {r['tries_at_chance']:.1f} "
            f"| {r['disclosure_at_chance_plus_0.3']:.1%} |"
        )
    mus = list(data["demonstrated_validity"][0]["valid"])
    lines += [
        "",
        "How often the budget an attacker is shown to use stays at or below the image's own "
        'budget mu_x (METHOD.md, "Three budgets"), exactly, for an attack succeeding at the '
        "DP bound itself (the most any attack can, so the least valid case); the product "
        f"promises at least {1 - data['alpha_disclosure']:.1%}:",
        "",
        "| attacker | chance | " + " | ".join(f"mu_x = {m}" for m in mus) + " |",
        "|---|---|" + "---|" * len(mus),
    ]
    for r in data["demonstrated_validity"]:
        lines.append(
            f"| {r['attacker']} | {r['chance']:.2f} | "
            + " | ".join(f"{r['valid'][m]:.2%}" for m in mus)
            + " |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the files are up to date")
    args = ap.parse_args(argv)
    data = compute()
    return publish(
        data, table(data), json_path=JSON, doc_path=DOC, block="error-rates", check=args.check
    )


if __name__ == "__main__":
    sys.exit(main())
