"""Solve for the budget: the largest mu (and eps at delta) at which an image is shown to be
protected, at a level, against both attackers (or the one the user chose).

Levels (verdict.py's evidence rule at every budget):
- "not recognisable": neither attacker (the gallery attacker who holds the image among 10
  candidates; the prior attacker who reconstructs it) picks the image out more often than
  chance + tolerance, with 95% confidence (or by the DP bound itself);
- "no attribute": the reconstructions show the image's class no more often than chance +
  tolerance (needs a prior with an attribute classifier and a confidently read original).

The search. Protection falls as mu grows, in expectation; every budget is audited with the
same noise streams (common random numbers) and with the same evidence rule, the sequential
one included: a budget that passes is measured exactly as one that fails, so the search has
no one-way error. The answer is defined conservatively:

    mu_max = the largest evaluated budget at which protection is shown *and is shown at
             every evaluated budget below it*; the bracket's upper end is the smallest
             evaluated budget above it, where protection is not shown (undetermined, or
             disclosure shown).

Rounds: (1) a geometric grid over SEARCH_RANGE (factor about 2.15) finds the first budget
without protection; (2) three budgets inside the bracket shrink it until its ends are within
a ratio of ``tolerance`` (1.25). Each round is one batched audit. The answer's sentence
states the upper bounds measured at mu_max and the first budget above it where disclosure
is shown.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from ..attacker.priors import Prior, load_prior
from ..attacker.reconstruct import DEFAULT_DDIM_STEPS
from ..images import ImageLike
from ..maths import accounting
from ..progress import Progress, within
from .run import AuditResult, default_trials, run_audit
from .verdict import ATTRIBUTE_ATTACKERS, PROTECTED, TOLERANCE

__all__ = [
    "LEVELS",
    "ATTACK_CHOICES",
    "SEARCH_RANGE",
    "SolveResult",
    "NotSolvable",
    "level_holds",
    "disclosed",
    "solve_budget",
    "dataset_budget",
    "write_solve",
    "refusal",
]

LEVELS = ("not recognisable", "no attribute")
ATTACK_CHOICES = {"both": ("gallery", "prior"), "gallery": ("gallery",), "prior": ("prior",)}
SEARCH_RANGE = (0.05, 500.0)  # mu: the slider's range
GRID = 13  # budgets of the first round (factor 2.15 between neighbours)


class NotSolvable(ValueError):
    """The search cannot give a budget for this image (outside the prior's domain, no
    reference set, no attribute classifier); the message says why, ``in_domain`` whether
    the image itself was judged of the prior's kind."""

    def __init__(self, message: str, *, in_domain: bool = True):
        super().__init__(message)
        self.in_domain = in_domain


@dataclass
class SolveResult:
    prior: str
    level: str
    attackers: list  # the attackers the level is held against
    delta: float
    tolerance: float
    clip_norm: float  # the release's public clipping bound
    mu_max: float | None  # None: protection is not shown at any searched budget
    eps_max: float | None
    bracket: list  # [mu_lo, mu_hi]: shown at mu_lo, not shown at mu_hi (None: beyond the range)
    evaluations: int  # budgets audited
    trials: int  # tries per budget at the first look; the sequential rule adds (see grid)
    in_domain: bool
    grid: list[dict] = field(default_factory=list)  # every evaluated budget, by mu
    disclosure: dict | None = None  # the first evaluated budget above mu_max with disclosure
    seed: int = 0
    elapsed_s: float = 0.0
    note: str = ""
    # the audits of mu_max and of the bracket's upper end (what the dashboard shows side by
    # side, with the tries the search used); not written to solve.json
    results: dict = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "results"}

    def at(self, mu: float | None) -> dict | None:
        return next((g for g in self.grid if mu is not None and math.isclose(g["mu"], mu)), None)

    def sentence(self) -> str:
        """The answer in one sentence a privacy officer can act on."""
        if self.level == "no attribute":
            return self._attribute_sentence()
        who = " nor ".join(_WHO[a] for a in self.attackers)
        who = ("neither " if len(self.attackers) > 1 else "") + who
        tol = f"chance + {self.tolerance:.0%}"
        if self.mu_max is None:
            first = self.at(self.bracket[1])
            return (
                f"Protection is not shown even at the smallest budget searched (mu = "
                f"{self.bracket[1]:.3g}: {first['verdict']}): no budget in the searched "
                f"range is shown to keep the attacker from picking your image out of 10 of "
                f"its kind more often than {tol}."
            )
        at = self.at(self.mu_max)
        bounds = "; ".join(_bound_words(a, at) for a in self.attackers)
        verb = (
            "picks" if len(self.attackers) > 1 else "pick"
        ) + " your image out of 10 of its kind"
        head = (
            f"Up to eps = {self.eps_max:.4g} (delta = {self.delta:g}; mu = {self.mu_max:.4g}; "
            f"clipping bound {self.clip_norm:.3g}), it is shown with 95% confidence that "
            f"{who} {verb if len(self.attackers) > 1 else 'does not ' + verb} more often "
            f"than {tol} ({bounds})"
        )
        own = (
            f" At the answer this image's own budget is eps {at['own_eps']:.3g}."
            if at.get("own_eps") is not None
            else ""
        )
        if self.bracket[1] is None:
            return head + "; protection is shown at every budget searched." + own
        d = self.disclosure
        if d is None:
            return (
                head
                + (
                    f"; above mu = {self.bracket[1]:.3g} protection is not shown "
                    "(undetermined), and no searched budget shows disclosure."
                )
                + own
            )
        shown = (
            f"; there it is shown to use at least eps {d['demonstrated_eps']:.3g} of the image"
            if d.get("demonstrated_eps")
            else ""
        )
        return (
            head
            + (
                f"; disclosure is first shown at eps = {d['eps']:.3g} (mu = {d['mu']:.3g}): "
                f"{d['by_words']} succeeds in {d['successes']} of {d['trials_disclosed']} "
                f"tries (at least {d['lower']:.0%} with 95% confidence){shown}."
            )
            + own
        )

    def _attribute_sentence(self) -> str:
        """The class search's answer, in the class verdict's own terms: both attribute
        attackers against their base rates."""
        rows = [r for r in self.grid if r.get("attribute_name")]
        name = rows[0]["attribute_name"] if rows else "class"
        tol = f"its base rate + {self.tolerance:.0%}"
        if self.mu_max is None:
            first = self.at(self.bracket[1])
            return (
                f"That the {name} stays hidden is not shown even at the smallest budget "
                f"searched (mu = {self.bracket[1]:.3g}: the {name} is "
                f"{first['attribute_level']})."
            )
        at = self.at(self.mu_max)
        bounds = "; ".join(
            _attribute_bound_words(w, at)
            for w in ("prior", "release")
            if at.get(f"attribute_{w}_level") is not None
        )
        head = (
            f"Up to eps = {self.eps_max:.4g} (delta = {self.delta:g}; mu = {self.mu_max:.4g}; "
            f"clipping bound {self.clip_norm:.3g}), it is shown with 95% confidence that "
            f"the {name} is not revealed: neither an attacker reading it off its "
            f"reconstruction nor one reading it off the release names it more often than "
            f"{tol} ({bounds})"
        )
        if self.bracket[1] is None:
            return head + "; this holds at every budget searched."
        d = self.disclosure
        if d is None:
            return head + (
                f"; above mu = {self.bracket[1]:.3g} that is not shown (undetermined), "
                f"and no searched budget shows the {name} revealed."
            )
        return head + (
            f"; the {name} is first shown revealed at eps = {d['eps']:.3g} "
            f"(mu = {d['mu']:.3g}): {d['by_words']} names it in {d['successes']} of "
            f"{d['trials_disclosed']} tries (at least {d['lower']:.0%} with 95% "
            f"confidence, above its base rate of {d['chance_disclosed']:.0%})."
        )


def _bound_words(attacker: str, row: dict) -> str:
    name = "holding it among 10" if attacker == "gallery" else "reconstructing"
    if row[attacker + "_proven"]:
        return f"{name}: chance {row[attacker + '_chance']:.0%}, proven by the DP guarantee"
    return (
        f"{name}: at most {row[attacker + '_upper']:.0%} with 95% confidence, chance "
        f"{row[attacker + '_chance']:.0%}"
    )


def _attribute_bound_words(who: str, row: dict) -> str:
    name = "reading the reconstruction" if who == "prior" else "reading the release"
    k = f"attribute_{who}_"
    if row[k + "proven"]:
        return (
            f"{name}: base rate {row[k + 'chance']:.0%}, at most {row[k + 'bound']:.0%} "
            "by the DP guarantee"
        )
    return (
        f"{name}: at most {row[k + 'upper']:.0%} with 95% confidence, base rate "
        f"{row[k + 'chance']:.0%}"
    )


_WHO = {
    "gallery": "an attacker who already holds your image among 10 candidates",
    "prior": "an attacker who only knows what such images look like",
}


def level_holds(verdict, level: str, attackers=("gallery", "prior")) -> bool:
    """Whether a budget's verdict (verdict.BudgetVerdict) shows the level's protection."""
    if level == "not recognisable":
        return all(verdict.attack(a).level == PROTECTED for a in attackers)
    return verdict.attribute is not None and verdict.attribute.level == "not revealed"


def disclosed(verdict, level: str, attackers=("gallery", "prior")):
    """The attacker verdict that shows disclosure at this budget, or None."""
    if level == "not recognisable":
        hits = [
            verdict.attack(a)
            for a in attackers
            if verdict.attack(a).level in ("recognisable", "partly recognisable")
        ]
        return max(hits, key=lambda v: v.lower) if hits else None
    a = verdict.attribute
    if a is None or not a.revealed:
        return None
    return max(
        (x for x in (a.prior, a.release) if x is not None and x.level == "revealed"),
        key=lambda x: x.lower,
    )


def _row(result: AuditResult, mu: float, level: str, attackers) -> dict:
    v = result.verdict_at(mu)
    row = {
        "mu": float(mu),
        "eps": float(v.eps),
        "holds": level_holds(v, level, attackers),
        "verdict": v.verdict,
        "trials": int(v.trials),
        "own_mu": v.own_mu,
        "own_eps": v.eps_of(v.own_mu),
    }
    for a in ("gallery", "prior"):
        av = v.attack(a)
        row.update(
            {
                f"{a}_successes": av.successes,
                f"{a}_trials": av.trials,
                f"{a}_rate": av.rate,
                f"{a}_upper": av.upper,
                f"{a}_lower": av.lower,
                f"{a}_chance": av.chance,
                f"{a}_level": av.level,
                f"{a}_proven": av.proven,
                f"{a}_demonstrated_mu": av.demonstrated_mu,
                f"{a}_demonstrated_eps": v.eps_of(av.demonstrated_mu),
            }
        )
    a = v.attribute
    row.update(
        {
            "attribute_level": None if a is None else a.level,
            "attribute_name": None if a is None else a.name,
            "attribute_successes": None if a is None else a.successes,
            "attribute_upper": None if a is None else a.upper,
        }
    )
    for who in ("prior", "release"):
        x = None if a is None else getattr(a, who)
        row.update(
            {
                f"attribute_{who}_{k}": None if x is None else getattr(x, k)
                for k in (
                    "successes",
                    "trials",
                    "rate",
                    "lower",
                    "upper",
                    "chance",
                    "level",
                    "proven",
                    "bound",
                )
            }
        )
    d = disclosed(v, level, attackers)
    row["disclosed"] = d is not None
    words = _WHO if level == "not recognisable" else ATTRIBUTE_ATTACKERS
    row.update(
        successes=None if d is None else d.successes,
        trials_disclosed=None if d is None else d.trials,
        lower=None if d is None else d.lower,
        chance_disclosed=None if d is None else d.chance,
        by_words=None if d is None else words[d.attacker],
        demonstrated_eps=None if d is None else v.eps_of(d.demonstrated_mu),
    )
    return row


def _answer(rows: dict[float, dict]) -> tuple[float | None, float | None]:
    """(mu_max, first mu above it without protection) by the first-failure-from-below rule."""
    lo = None
    for mu in sorted(rows):
        if not rows[mu]["holds"]:
            return lo, mu
        lo = mu
    return lo, None


def solve_budget(
    image: ImageLike | torch.Tensor,
    *,
    prior: Prior | str | None = None,
    level: str = "not recognisable",
    attack: str = "both",
    delta: float = 1e-5,
    trials: int | None = None,
    max_trials: int | None = None,
    seed: int = 0,
    steps: int | None = DEFAULT_DDIM_STEPS,
    clip_norm: float | None = None,
    tolerance: float = TOLERANCE,
    ratio: float = 1.25,
    search_range: tuple[float, float] = SEARCH_RANGE,
    progress: Progress | None = None,
) -> SolveResult:
    """The largest budget at which ``image`` is shown to meet ``level`` (module docstring).

    attack: "both" (default), "gallery" or "prior": which attackers the level is held
    against. ratio: the bracket's ends are refined until within this ratio.
    Raises NotSolvable when no answer can be trusted: the image is outside the prior's
    domain, the prior has no reference set, or the level needs a classifier it lacks.
    """
    t0 = time.perf_counter()
    say = progress or (lambda f, m: None)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got level={level!r}")
    if attack not in ATTACK_CHOICES:
        raise ValueError(f"attack must be one of {tuple(ATTACK_CHOICES)}, got attack={attack!r}")
    attackers = ATTACK_CHOICES[attack]
    if not ratio > 1:
        raise ValueError(f"need ratio > 1, got {ratio!r}")
    lo_mu, hi_mu = (float(v) for v in search_range)
    if not 0 < lo_mu < hi_mu:
        raise ValueError(f"the search range must satisfy 0 < low < high, got {search_range}")
    delta = accounting.validate_delta(delta)
    if not isinstance(prior, Prior):
        prior = load_prior(prior)
    x = image.detach().float().cpu() if isinstance(image, torch.Tensor) else prior.load_image(image)
    trials = default_trials(prior) if trials is None else trials
    rows: dict[float, dict] = {}  # every evaluated budget's verdict, by mu
    audits: dict[float, AuditResult] = {}  # the batched audit that holds each of them
    clip = [clip_norm]

    def known(m: float) -> float | None:
        return next((r for r in rows if math.isclose(r, m, rel_tol=1e-6)), None)

    def audit(mus: list[float], frac: float, what: str) -> None:
        mus = [m for m in mus if known(m) is None]
        if not mus:
            return
        say(frac, f"{what}: {len(mus)} budgets")
        result = run_audit(
            x,
            mus=mus,
            delta=delta,
            prior=prior,
            trials=trials,
            max_trials=max_trials,
            seed=seed,
            steps=steps,
            lpips=None,
            clip_norm=clip_norm,
            tolerance=tolerance,
            progress=within(say, frac, frac + 0.1, what),
        )
        _check(result, level)
        clip[0] = result.clip_norm
        for m in result.budgets():
            rows[m], audits[m] = _row(result, m, level, attackers), result

    audit(np.geomspace(lo_mu, hi_mu, GRID).tolist(), 0.0, "first round")
    for round_ in range(24):  # converges in 3 or 4 rounds in practice
        lo, hi = _answer(rows)
        if lo is None or hi is None or hi / lo <= ratio:
            break
        audit(np.geomspace(lo, hi, 5)[1:-1].tolist(), min(0.9, 0.3 + 0.15 * round_), "refining")
    lo, hi = _answer(rows)
    first_disclosure = next(
        (rows[m] for m in sorted(rows) if (lo is None or m > lo) and rows[m]["disclosed"]), None
    )
    say(1.0, "done")
    return SolveResult(
        prior=prior.name,
        level=level,
        attackers=list(attackers),
        delta=delta,
        tolerance=float(tolerance),
        clip_norm=float(clip[0]),
        mu_max=lo,
        eps_max=None if lo is None else accounting.eps_from_mu(lo, delta),
        bracket=[lo, hi] if lo is not None else [None, min(rows)],
        evaluations=len(rows),
        trials=trials,
        in_domain=True,
        grid=[rows[m] for m in sorted(rows)],
        disclosure=first_disclosure,
        seed=seed,
        elapsed_s=time.perf_counter() - t0,
        note=(
            "protection is shown at every searched budget" if lo is not None and hi is None else ""
        ),
        results={m: audits[m].subset([m]) for m in (lo, hi) if m is not None},
    )


def _check(result: AuditResult, level: str) -> None:
    if result.domain is None:
        raise NotSolvable(f"no verdict can be made with this prior: {result.reference}")
    if not result.domain.in_domain:
        raise NotSolvable(
            f"{result.domain.warning()} A budget found with this prior would "
            "say nothing about this image.",
            in_domain=False,
        )
    if level == "no attribute" and result.attribute_note():
        raise NotSolvable(
            f"the level 'no attribute' cannot be searched: "
            f"{result.attribute_note()} (use 'not recognisable')"
        )


def dataset_budget(
    per_image: list[float | None],
    *,
    max_fraction: float = 0.05,
    search_high: float = SEARCH_RANGE[1],
) -> dict:
    """The largest mu at which at most ``max_fraction`` of the images fail the level, with
    the fraction's Wilson 95% upper bound (not its point estimate) held to it.

    per_image: each judged image's mu_max (None: fails at every searched budget; an image
    whose level holds at every budget searched counts as holding up to ``search_high``).
    An image counts as failing at mu when mu > its mu_max (conservative: between its
    bracket's ends it is counted as failing). Returns {"mu_max", "allowed_failures", ...};
    mu_max is None when no budget qualifies (too few images for the bound, or too many fail).
    """
    from .verdict import wilson_interval

    if not 0 < max_fraction < 1:
        raise ValueError(f"max_fraction must lie strictly between 0 and 1, got {max_fraction}")
    n = len(per_image)
    if n == 0:
        return {
            "mu_max": None,
            "judged": 0,
            "allowed_failures": None,
            "reason": "no image inside the prior's domain to judge",
        }
    allowed = -1
    while allowed + 1 <= n and wilson_interval(allowed + 1, n)[1] <= max_fraction:
        allowed += 1
    if allowed < 0:
        need = next(m for m in range(n, 100_000) if wilson_interval(0, m)[1] <= max_fraction)
        return {
            "mu_max": None,
            "judged": n,
            "allowed_failures": None,
            "reason": (
                f"with {n} images, even none recognisable cannot show that at most "
                f"{max_fraction:.0%} are (the 95% upper bound of 0 of {n} is "
                f"{wilson_interval(0, n)[1]:.1%}); audit at least {need} images"
            ),
        }
    budgets = sorted(0.0 if m is None else float(m) for m in per_image)
    mu = budgets[allowed]  # at mu, the images with mu_max < mu fail: at most `allowed` of them
    failing = sum(b < mu for b in budgets)
    return {
        "mu_max": mu if mu > 0 else None,
        "judged": n,
        "allowed_failures": allowed,
        "failing_at_mu_max": failing,
        "upper_bound_at_mu_max": wilson_interval(failing, n)[1],
        "capped_at_search_range": bool(mu >= search_high),
        "reason": "" if mu > 0 else f"more than {allowed} images fail at every searched budget",
    }


def write_solve(out, result: SolveResult | None = None, *, refused: dict | None = None) -> dict:
    """OUT/solve.json (the answer, or the refusal with its reason) and OUT/grid.csv (every
    budget evaluated); each written to a temporary name and renamed into place."""
    import csv
    import json
    from pathlib import Path

    from ..files import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = refused if result is None else {**result.to_json(), "sentence": result.sentence()}
    paths = {"solve": out / "solve.json"}
    if result is not None:

        def grid(p):
            with p.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(result.grid[0]))
                w.writeheader()
                w.writerows(result.grid)

        paths["grid"] = out / "grid.csv"
        atomic_write(paths["grid"], grid)
    atomic_write(paths["solve"], lambda p: p.write_text(json.dumps(data, indent=2)))
    return paths


def refusal(prior: str, level: str, delta: float, trials: int, why: NotSolvable) -> dict:
    """solve.json when no budget can be given: no number, the reason instead."""
    return {
        "prior": prior,
        "level": level,
        "delta": delta,
        "mu_max": None,
        "eps_max": None,
        "bracket": [None, None],
        "evaluations": 0,
        "trials": trials,
        "in_domain": why.in_domain,
        "refused": str(why),
    }
