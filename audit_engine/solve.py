"""Solve for the budget: the largest mu (and eps at delta) at which an image still meets a
protection level against an attacker with this prior.

Levels (verdict.py's rules, over K trials against chance):
- "not recognisable": the attacker does not pick the image out of 10 of its kind more
  often than chance (the identification verdict is "not recognisable");
- "no attribute": the reconstructions do not show the image's class more often than the
  prior draws it on its own (needs a prior with an attribute classifier).

The search. Protection falls as mu grows, in expectation; one audit's verdict is a rate over
K trials and can waver between neighbouring budgets. Every budget is audited with the same
noise streams (keyed by seed, image and trial: common random numbers), which keeps the
verdicts of neighbouring budgets consistent, and the answer is defined conservatively:

    mu_max = the largest evaluated budget at which the level holds *and holds at every
             evaluated budget below it*; the bracket's upper end is the smallest evaluated
             budget above mu_max, where the level fails.

Rounds: (1) a geometric grid over SEARCH_RANGE (factor about 2.2) finds the first failure;
(2) three budgets inside the bracket shrink it to a ratio of at most ``tolerance`` (1.25);
(3) the level is checked at ``below`` x mu_max (0.8) and ``confirm`` x mu_max (2): a failure
below moves the answer down (it is the first failure from below), and the result reports
what the audit at 2 x mu_max found; (4) the failure that bounds the answer is measured
again with ``recheck_trials`` tries (default 4 x, at most 32; the same noise streams
extended, so its first K tries are the ones already seen): a single unlucky set of K tries
(with exact intervals, guessing passes for disclosure at most 2.5% of the time per budget,
and the search looks at many budgets) must not decide the answer. If it holds with more
tries, the search goes on above it. Each round is one batched audit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import torch

from . import accounting
from .audit import MAX_TRIALS, AuditResult, default_trials, run_audit
from .images import ImageLike
from .priors import Prior, load_prior
from .reconstruct import DEFAULT_DDIM_STEPS

__all__ = ["LEVELS", "SEARCH_RANGE", "SolveResult", "NotSolvable", "level_holds", "solve_budget",
           "dataset_budget"]

LEVELS = ("not recognisable", "no attribute")
SEARCH_RANGE = (0.05, 500.0)  # mu: the slider's range
GRID = 13  # budgets of the first round (factor 2.15 between neighbours)
Progress = Callable[[float, str], None]


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
    delta: float
    mu_max: float | None  # None: the level fails at every searched budget
    eps_max: float | None
    bracket: list  # [mu_lo, mu_hi]: holds at mu_lo, fails at mu_hi (None: beyond the range)
    evaluations: int  # budgets audited (a re-measured one counted again)
    trials: int  # tries per budget to begin with; a budget measured again has more (see grid)
    in_domain: bool
    grid: list[dict] = field(default_factory=list)  # every evaluated budget, by mu
    confirm: dict | None = None  # the audit at confirm_factor x mu_max
    confirm_factor: float = 2.0
    seed: int = 0
    elapsed_s: float = 0.0
    note: str = ""
    # the audits of mu_max and of the bracket's upper end (what the dashboard shows side by
    # side, with the tries the search used); not written to solve.json
    results: dict = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "results"}

    def sentence(self) -> str:
        """The answer in one sentence a privacy officer can act on."""
        if self.mu_max is None:
            return (f"Even at the smallest budget searched (mu = {self.bracket[1]:.3g}), an "
                    f"attacker with this prior {self._fails_words()}: no budget in the "
                    "searched range protects this image at this level.")
        at = next((g for g in self.grid if math.isclose(g["mu"], self.mu_max)), {"trials": self.trials})
        head = (f"Up to eps = {self.eps_max:.3g} (delta = {self.delta:g}; mu = {self.mu_max:.3g}), "
                f"an attacker with this prior {self._holds_words()} in {at['trials']} tries")
        if self.bracket[1] is None:
            return head + (f"; the level still holds at the largest budget searched "
                           f"(mu = {self.mu_max:.3g}).")
        above = self.confirm if self.confirm and not self.confirm["holds"] else \
            next(g for g in self.grid if math.isclose(g["mu"], self.bracket[1]))
        k = above["successes"]
        return head + (f"; at eps = {above['eps']:.3g} (mu = {above['mu']:.3g}) it "
                       f"{self._does_words()} in {k} of {above['trials']}.")

    def _holds_words(self) -> str:
        if self.level == "not recognisable":
            return "does not pick your image out of 10 of its kind more often than chance"
        return "does not read your image's class from its reconstructions more often than chance"

    def _fails_words(self) -> str:
        if self.level == "not recognisable":
            return "picks your image out of 10 of its kind more often than chance"
        return "reads your image's class more often than chance"

    def _does_words(self) -> str:
        return "does" if self.level == "not recognisable" else "reads it"


def level_holds(verdict, level: str) -> bool:
    """Whether a budget's verdict (verdict.BudgetVerdict) meets the level."""
    if level == "not recognisable":
        return verdict.verdict == "not recognisable"
    return verdict.attribute is None or not verdict.attribute.revealed


def _row(result: AuditResult, mu: float, level: str) -> dict:
    v = result.verdict_at(mu)
    successes = (v.identification.successes if level == "not recognisable"
                 else v.attribute.successes)
    chance = v.identification.chance if level == "not recognisable" else v.attribute.chance
    return {"mu": float(mu), "eps": float(v.eps), "holds": level_holds(v, level),
            "verdict": v.verdict, "successes": int(successes), "trials": int(v.trials),
            "chance": float(chance),
            "attribute_revealed": None if v.attribute is None else bool(v.attribute.revealed)}


def _answer(rows: dict[float, dict]) -> tuple[float | None, float | None]:
    """(mu_max, first failing mu above it) by the first-failure-from-below rule."""
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
    delta: float = 1e-5,
    trials: int | None = None,
    seed: int = 0,
    steps: int | None = DEFAULT_DDIM_STEPS,
    tolerance: float = 1.25,
    below: float = 0.8,
    confirm: float = 2.0,
    search_range: tuple[float, float] = SEARCH_RANGE,
    recheck_trials: int | None = None,
    progress: Progress | None = None,
) -> SolveResult:
    """The largest budget at which ``image`` meets ``level`` (see the module docstring).

    Raises NotSolvable when no answer can be trusted: the image is outside the prior's
    domain, the prior has no reference set, or the level needs a classifier it lacks.
    """
    t0 = time.perf_counter()
    say = progress or (lambda f, m: None)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got level={level!r}")
    if not tolerance > 1 or not 0 < below < 1 or not confirm > 1:
        raise ValueError("need tolerance > 1, 0 < below < 1 and confirm > 1")
    lo_mu, hi_mu = (float(v) for v in search_range)
    if not 0 < lo_mu < hi_mu:
        raise ValueError(f"the search range must satisfy 0 < low < high, got {search_range}")
    delta = accounting.validate_delta(delta)
    if not isinstance(prior, Prior):
        prior = load_prior(prior)
    x = image.detach().float().cpu() if isinstance(image, torch.Tensor) else prior.load_image(image)
    trials = default_trials(prior) if trials is None else trials
    recheck = min(MAX_TRIALS, 4 * trials) if recheck_trials is None else max(trials, recheck_trials)
    rows: dict[float, dict] = {}  # every evaluated budget's verdict, by mu
    audits: dict[float, AuditResult] = {}  # the batched audit that holds each of them
    evaluated = 0  # budgets audited, a re-measured one counted again
    tries = trials  # tries per new budget: raised to `recheck` once K tries were unlucky

    def known(m: float) -> float | None:
        return next((r for r in rows if math.isclose(r, m, rel_tol=1e-6)), None)

    def audit(mus: list[float], frac: float, what: str, k: int | None = None) -> None:
        nonlocal evaluated
        if k is None:  # new budgets only; an explicit k measures a budget again
            k = tries
            mus = [m for m in mus if known(m) is None]
        if not mus:
            return
        say(frac, f"{what}: {len(mus)} budgets")
        evaluated += len(mus)
        result = run_audit(x, mus=mus, delta=delta, prior=prior, trials=k, seed=seed,
                           steps=steps, lpips=None,
                           progress=lambda f, m: say(frac + 0.1 * f, f"{what}: {m}"))
        _check(result, level)
        for m in result.budgets():
            old = known(m)
            rows.pop(old, None)
            audits.pop(old, None)
            rows[m], audits[m] = _row(result, m, level), result

    audit(np.geomspace(lo_mu, hi_mu, GRID).tolist(), 0.0, "first round")
    for round_ in range(24):  # converges in 3 or 4 rounds in practice
        lo, hi = _answer(rows)
        wanted = []
        if lo is not None and hi is not None and hi / lo > tolerance:
            wanted += np.geomspace(lo, hi, 5)[1:-1].tolist()
        if lo is not None:
            wanted += [lo * below, lo * confirm]
        wanted = [m for m in wanted if known(m) is None]
        frac = min(0.9, 0.3 + 0.1 * round_)
        if wanted:
            audit(wanted, frac, "refining")
        elif hi is not None and rows[hi]["trials"] < recheck:
            # the failure that bounds the answer, measured again with more tries (the same
            # streams extended): one unlucky set of tries must not decide the answer
            audit([hi], frac, f"confirming with {recheck} tries", k=recheck)
            if rows[hi]["holds"]:
                # the first K tries of this image's streams were unlucky, and common random
                # numbers carry them to every budget: measure every further budget with more
                tries = recheck
        else:
            break
    lo, hi = _answer(rows)
    check = rows.get(known(lo * confirm)) if lo is not None else None
    say(1.0, "done")
    return SolveResult(
        prior=prior.name, level=level, delta=delta, mu_max=lo,
        eps_max=None if lo is None else accounting.eps_from_mu(lo, delta),
        bracket=[lo, hi] if lo is not None else [None, min(rows)], evaluations=evaluated,
        trials=trials, in_domain=True, grid=[rows[m] for m in sorted(rows)], confirm=check,
        confirm_factor=confirm, seed=seed, elapsed_s=time.perf_counter() - t0,
        note=("the level holds at every searched budget" if lo is not None and hi is None else ""),
        results={m: audits[m].subset([m]) for m in (lo, hi) if m is not None})


def _check(result: AuditResult, level: str) -> None:
    if result.domain is None:
        raise NotSolvable(f"no verdict can be made with this prior: {result.reference}")
    if not result.domain["in_domain"]:
        raise NotSolvable(
            "the image is outside what the prior knows (typicality distance "
            f"{result.domain['score']:.1f}, images of its kind stay below "
            f"{result.domain['threshold']:.1f}): a budget found with this prior would say "
            "nothing about this image. Use a prior trained on images like it.", in_domain=False)
    if level == "no attribute" and result.attribute is None:
        raise NotSolvable("the level 'no attribute' needs a prior that ships an attribute "
                          "classifier; this one does not (use 'not recognisable')")


def dataset_budget(per_image: list[float | None], *, max_fraction: float = 0.05,
                   search_high: float = SEARCH_RANGE[1]) -> dict:
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
        return {"mu_max": None, "judged": 0, "allowed_failures": None,
                "reason": "no image inside the prior's domain to judge"}
    allowed = -1
    while allowed + 1 <= n and wilson_interval(allowed + 1, n)[1] <= max_fraction:
        allowed += 1
    if allowed < 0:
        need = next(m for m in range(n, 100_000) if wilson_interval(0, m)[1] <= max_fraction)
        return {"mu_max": None, "judged": n, "allowed_failures": None,
                "reason": (f"with {n} images, even none recognisable cannot show that at most "
                           f"{max_fraction:.0%} are (the 95% upper bound of 0 of {n} is "
                           f"{wilson_interval(0, n)[1]:.1%}); audit at least {need} images")}
    budgets = sorted(0.0 if m is None else float(m) for m in per_image)
    mu = budgets[allowed]  # at mu, the images with mu_max < mu fail: at most `allowed` of them
    failing = sum(b < mu for b in budgets)
    return {"mu_max": mu if mu > 0 else None, "judged": n, "allowed_failures": allowed,
            "failing_at_mu_max": failing,
            "upper_bound_at_mu_max": wilson_interval(failing, n)[1],
            "capped_at_search_range": bool(mu >= search_high),
            "reason": "" if mu > 0 else f"more than {allowed} images fail at every searched budget"}


def write_solve(out, result: SolveResult | None = None, *, refused: dict | None = None) -> dict:
    """OUT/solve.json (the answer, or the refusal with its reason) and OUT/grid.csv (every
    budget evaluated); each written to a temporary name and renamed into place."""
    import csv
    import json
    from pathlib import Path

    from .report import _atomic_write

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
        _atomic_write(paths["grid"], grid)
    _atomic_write(paths["solve"], lambda p: p.write_text(json.dumps(data, indent=2)))
    return paths


def refusal(prior: str, level: str, delta: float, trials: int, why: NotSolvable) -> dict:
    """solve.json when no budget can be given: no number, the reason instead."""
    return {"prior": prior, "level": level, "delta": delta, "mu_max": None, "eps_max": None,
            "bracket": [None, None], "evaluations": 0, "trials": trials,
            "in_domain": why.in_domain, "refused": str(why)}
