"""What the dashboard computes, without any UI: the slider's mapping to budgets, the settings,
and one image's budget ladder (Session: the ladder and the exact budgets computed since).
views.py turns a ladder into what the page shows; the web app (webui/) only wires these."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from ..attacker.priors import EMBEDDED, REGISTRY, load_prior, prior_status
from ..attacker.reconstruct import DEFAULT_DDIM_STEPS
from ..audit.reference import ReferenceUnavailable, baseline_for, reference_for
from ..audit.run import (
    AuditResult,
    check_settings,
    clip_norm_for,
    continue_audit,
    default_max_trials,
    run_audit,
)
from ..audit.verdict import TOLERANCE
from ..caches import LRU
from ..images import ImageLike
from ..maths import accounting
from ..maths.mechanism import attacker_scale, check_clip_norm
from ..progress import Progress

__all__ = [
    "SLIDER_RANGE",
    "LADDER_SIZE",
    "Settings",
    "Session",
    "slider_to_mu",
    "mu_to_slider",
    "budget_to_slider",
    "budget_label",
    "ladder_mus",
    "compute_ladder",
    "ladder_steps",
    "merge",
    "compute_exact",
    "prior_choices",
    "prior_table",
    "gpu_seconds",
    "ladder_evaluations",
    "first_look_evaluations",
]

# slider positions are log10 of the budget in the chosen unit
SLIDER_RANGE = {"eps": (-1.0, 5.0), "mu": (math.log10(0.05), math.log10(500.0))}
LADDER_SIZE = 8
STREAM_ABOVE = 64  # priors larger than this (pixels a side) show the ladder as it is computed
# exact budgets one session keeps (least recently viewed dropped first): a fast slider may
# ask for hundreds; 16 results of 8 tries at 32x32 are about 1 MB, of 4 tries at 256x256
# (3 channels) about 100 MB
EXACT_CACHE_SIZE = 16
LADDER_SIGMAS = (0.05, 200.0)  # diffusion-scale noise std from "useless" to "strong" protection


def slider_to_mu(value: float, mode: str, delta: float) -> tuple[float, float]:
    """(mu, eps) for a slider position (log10 of eps or of mu)."""
    if mode not in SLIDER_RANGE:
        raise ValueError(f"mode must be 'eps' or 'mu', got mode={mode!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"the budget must be a finite number, got {value!r}")
    lo, hi = SLIDER_RANGE[mode]
    if not lo - 1e-9 <= v <= hi + 1e-9:
        raise ValueError(
            f"the slider gives log10 of {mode}: it must lie between {lo:.3g} and "
            f"{hi:.3g} ({mode} {10**lo:.3g} to {10**hi:.3g}), got {v:g}"
        )
    budget = 10.0**v
    if mode == "eps":
        return accounting.mu_from_eps(budget, delta), budget
    return budget, accounting.eps_from_mu(budget, delta)


def budget_to_slider(value, mode: str) -> float:
    """The slider position of a budget typed as eps or mu itself (not its log10); a value
    outside the slider's range or not a positive number is refused with a sentence."""
    if mode not in SLIDER_RANGE:
        raise ValueError(f"mode must be 'eps' or 'mu', got mode={mode!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Type the budget as a number ({mode} itself, for example 8), not {str(value)[:40]!r}."
        ) from None
    lo, hi = SLIDER_RANGE[mode]
    if not (math.isfinite(v) and 10**lo * (1 - 1e-9) <= v <= 10**hi * (1 + 1e-9)):
        raise ValueError(
            f"The budget ({mode}) must lie between {10**lo:.3g} and "
            f"{10**hi:,.6g} here; you typed {v:g}. The budget on view is "
            "unchanged."
        )
    return min(max(math.log10(v), lo), hi)


def mu_to_slider(mu: float, mode: str, delta: float) -> float:
    lo, hi = SLIDER_RANGE[mode]
    v = math.log10(accounting.eps_from_mu(mu, delta) if mode == "eps" else mu) if mu > 0 else lo
    return float(min(max(v, lo), hi))


def budget_label(mu: float, eps: float, delta: float) -> str:
    return f"eps = {eps:.4g} at delta = {delta:g}  (mu = {mu:.4g})"


def ladder_mus(norm: float, n: int = LADDER_SIZE) -> list[float]:
    """n budgets from 'useless' (noise std 0.05 in the model's scale, as the attacker
    reconstructs) to 'strong' protection (std 200, beyond the linear schedule's range):
    mu = 2 a C / sigma_dm, ``norm`` = a C (the clipping bound times the attacker's public
    rescaling: public, so the ladder says nothing about the image)."""
    sig = np.geomspace(*LADDER_SIGMAS, n)
    return sorted(float(2 * max(norm, 1e-6) / s) for s in sig)


@dataclass(frozen=True)
class Settings:
    prior: str = EMBEDDED
    sampler: str = "ddim"
    steps: int = DEFAULT_DDIM_STEPS
    trials: int = 8
    seed: int = 0
    delta: float = 1e-5
    mechanism: str = "analytic"
    lpips: str = "alex"
    clip_norm: float | None = None  # the release's clipping bound; None: the prior's default
    # how much better than chance an attacker may do and the image still count as protected
    tolerance: float = TOLERANCE

    def __post_init__(self):
        check_settings(
            sampler=self.sampler,
            mechanism=self.mechanism,
            trials=self.trials,
            seed=self.seed,
            steps=self.steps,
            delta=self.delta,
        )
        if self.clip_norm is not None:
            check_clip_norm(self.clip_norm)
        if not 0.005 <= self.tolerance <= 0.5:
            raise ValueError(
                "the tolerance (how much better than guessing an attacker may do) must lie "
                f"between 0.5 and 50 points, got {self.tolerance * 100:g}"
            )

    @classmethod
    def from_inputs(cls, *, prior, delta, sampler, steps, trials, seed, **rest) -> "Settings":
        """Settings from a form's values (numbers may arrive as floats or text): ValueError
        with a message for the user when one is not a number or out of range."""
        try:
            delta = float(delta)
            whole = [float(v) for v in (steps, trials, seed)]
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                "delta must be a number; steps, trials and seed whole numbers"
            ) from None
        if any(not math.isfinite(v) or v != int(v) for v in whole):
            raise ValueError("steps, trials and seed must be whole numbers")
        steps, trials, seed = (int(v) for v in whole)
        return cls(
            prior=prior, sampler=sampler, steps=steps, trials=trials, seed=seed, delta=delta, **rest
        )


@dataclass
class Session:
    """One visitor's session, the page's state (one name wherever it is held): the ladder
    for one (image, prior, settings), the exact budgets computed since (an LRU of at most
    EXACT_CACHE_SIZE results) and the search's answer.

    A session is a value in Gradio's state: nothing changes it in place. Adding a budget
    (``with_exact``) makes a new session, which the handler returns as its new state, while
    slider moves (answered outside the queue, in other threads) go on reading the old one.
    The LRU's own lock covers its reordering on lookups."""

    key: str
    image: torch.Tensor
    settings: Settings
    ladder: AuditResult
    baseline: dict | None
    exact: LRU[float, AuditResult] = field(default_factory=lambda: LRU(EXACT_CACHE_SIZE))
    pending: int = 0  # ladder budgets still being computed (ladder_steps)
    adding: int = 0  # budgets still undetermined, whose further tries are being computed
    search: str = ""  # the largest-safe-budget search's answer for this image, in words

    def result_for(self, mu: float) -> tuple[AuditResult, float, bool]:
        """(result holding mu or its nearest ladder point, that mu, exact?)."""
        hit = self.exact.find(lambda m: math.isclose(m, mu, rel_tol=1e-9))
        if hit is not None:
            m, res = hit
            return res, m, True
        mus = self.ladder.budgets()
        near = min(mus, key=lambda m: abs(math.log(m) - math.log(mu)))
        return self.ladder, near, math.isclose(near, mu, rel_tol=1e-9)

    def with_exact(self, mu: float, result: AuditResult) -> "Session":
        """A new session that also holds ``result`` for ``mu`` (the least recently used
        budget dropped beyond EXACT_CACHE_SIZE)."""
        cache = LRU(self.exact.size)
        for m, res in self.exact.items():
            cache.put(m, res)
        cache.put(float(mu), result.settled())
        return replace(self, exact=cache)


def _key(x: torch.Tensor, settings: Settings) -> str:
    h = hashlib.sha256(x.numpy().tobytes())
    h.update(repr(settings).encode())
    return h.hexdigest()


def compute_ladder(
    image: ImageLike,
    settings: Settings,
    *,
    current_mu: float | None = None,
    progress: Progress | None = None,
    previous: Session | None = None,
) -> Session:
    """The ladder for this image and settings, plus the current budget (the last session of
    ``ladder_steps``). Returns ``previous`` unchanged when image and settings are the same."""
    session = previous
    for session in ladder_steps(
        image, settings, current_mu=current_mu, progress=progress, previous=previous
    ):
        pass
    return session


def ladder_steps(
    image: ImageLike,
    settings: Settings,
    *,
    current_mu: float | None = None,
    progress: Progress | None = None,
    previous: Session | None = None,
) -> Iterator[Session]:
    """The ladder as it is computed, for a page that shows results as they come.

    Priors up to STREAM_ABOVE pixels a side: one batched pass over the ladder and the
    current budget (the fastest; about a second on the embedded prior), one session.
    Larger priors: the current budget first (shown at once), then one ladder budget at a
    time, a session after each (``pending`` counts the ladder budgets still to come); the
    progress messages carry an estimate of the time left."""
    prior = load_prior(settings.prior)
    x = image if isinstance(image, torch.Tensor) else prior.load_image(image)
    key = _key(x, settings)
    if (
        previous is not None
        and previous.key == key
        and not previous.pending
        and not previous.adding
    ):
        yield previous  # a complete ladder of the same image and settings (a stopped stream
        return  # is computed again)
    ladder = ladder_mus(_attacker_norm(prior, settings))
    baseline = baseline_for(prior)
    current = [float(current_mu)] if current_mu is not None else []
    if prior.sample_size <= STREAM_ABOVE:
        # the first look of every budget (the first page, its verdicts included), then the
        # sequential rule's further tries where a verdict is still undetermined
        res = _run(
            x, ladder + current, settings, prior=prior, progress=progress, first_look_only=True
        )
        adding = len(res.undetermined())
        while True:
            session = Session(
                key=key,
                image=x,
                settings=settings,
                ladder=res.subset(ladder),
                baseline=baseline,
                adding=adding,
            )
            yield session.with_exact(current[0], res.subset(current)) if current else session
            if not adding:
                return
            res = continue_audit(res, progress=progress)
            adding = 0
    say = progress or (lambda f, m: None)
    chunks = ([current] if current else []) + [[m] for m in ladder]
    t0, parts, first = time.perf_counter(), [], None
    for k, chunk in enumerate(chunks):

        def scaled(f, m, k=k):
            per = (time.perf_counter() - t0) / k if k else None  # seconds per budget so far
            left = "" if per is None else f"; about {per * (len(chunks) - k - f):.0f} s left"
            say((k + f) / len(chunks), f"budget {k + 1} of {len(chunks)}: {m}{left}")

        res = _run(x, chunk, settings, prior=prior, progress=scaled)
        if first is None and current:
            first = res
            session = Session(
                key=key,
                image=x,
                settings=settings,
                ladder=res,
                baseline=baseline,
                pending=len(ladder),
            )
        else:
            parts.append(res)
            session = Session(
                key=key,
                image=x,
                settings=settings,
                ladder=merge(parts),
                baseline=baseline,
                pending=len(ladder) - len(parts),
            )
        yield session.with_exact(current[0], first) if first is not None else session


def merge(results: list[AuditResult]) -> AuditResult:
    """One result holding the budgets of several runs of the same image and settings."""
    return AuditResult(
        **{
            **results[0].__dict__,
            "_more": None,
            "samples": [s for r in results for s in r.samples],
            "verdicts": [v for r in results for v in r.verdicts],
        }
    )


def _attacker_norm(prior, settings: Settings) -> float:
    """a C: the release's clipping bound times the attacker's rescaling (both public)."""
    try:
        ref = reference_for(prior)
    except (ReferenceUnavailable, OSError):
        ref = None
    c, typical, _ = clip_norm_for(prior, ref)
    c = settings.clip_norm or c
    return c * attacker_scale(c, typical)


def _run(
    x: torch.Tensor,
    mus: list[float],
    settings: Settings,
    *,
    prior=None,
    progress: Progress | None = None,
    first_look_only: bool = False,
) -> AuditResult:
    """run_audit with a session's settings (DDPM always walks every step from t*)."""
    return run_audit(
        x,
        mus=mus,
        delta=settings.delta,
        prior=prior or settings.prior,
        trials=settings.trials,
        seed=settings.seed,
        sampler=settings.sampler,
        steps=settings.steps if settings.sampler == "ddim" else None,
        mechanism=settings.mechanism,
        lpips=settings.lpips,
        clip_norm=settings.clip_norm,
        tolerance=settings.tolerance,
        progress=progress,
        first_look_only=first_look_only,
    )


def compute_exact(
    session: Session, mu: float, *, progress: Progress | None = None
) -> tuple[Session, AuditResult]:
    """The exact budget (same image, settings and trials): (the session that also holds it,
    its result). ``session`` itself is left as it was."""
    found, m, exact = session.result_for(mu)
    if exact:
        return session, found.subset([m])
    res = _run(session.image, [mu], session.settings, progress=progress)
    return session.with_exact(mu, res), res


def gpu_seconds(prior: str, sampler: str, steps: int, trials: int) -> int:
    """GPU time one ladder needs (ZeroGPU asks for it up front): the UNet evaluations (the
    ladder and the chosen budget at the first look, the sequential rule's further tries at
    two budgets, the domain check's 20) x the seconds per evaluation measured on the GPU
    (costs.py, kept from the last runs), or, before any measurement, 4 ms per evaluation at
    256x256 scaled by the pixel count (about twice what a float16 forward of the 113.7 M-
    parameter CelebA-HQ UNet is expected to take); plus 15 s for the metrics and the page.
    The priors sit on the device from start-up (ZeroGPU's documented placement), so no load
    is counted."""
    spec = REGISTRY.get(prior)
    side = spec.resolution if spec and spec.resolution else 256
    evaluations = ladder_evaluations(trials, steps, sampler)
    per = _measured_on_gpu(prior)
    if per is None:
        per = 0.004 * (side / 256) ** 2 + 1e-4
    return int(min(600, max(20, 15 + evaluations * per)))


def ladder_evaluations(
    trials: int, steps: int, sampler: str, budgets: int = LADDER_SIZE + 1
) -> int:
    """UNet evaluations of one image's audit at ``budgets`` budgets at most: every budget at
    the first look, the sequential rule's further tries at two budgets, and the domain
    check's 20 (the estimate behind gpu_seconds and the page's refusals)."""
    first = max(1, int(trials))
    return first_look_evaluations(trials, steps, sampler, budgets) + _rounds(steps, sampler) * 2 * (
        default_max_trials(first) - first
    )


def first_look_evaluations(
    trials: int, steps: int, sampler: str, budgets: int = LADDER_SIZE + 1
) -> int:
    """UNet evaluations of the first look of one image's audit at ``budgets`` budgets (and
    the domain check's 20): what must fit a request's time limit. The sequential rule's
    further tries are added within the time left (run.continue_audit)."""
    return _rounds(steps, sampler) * budgets * max(1, int(trials)) + 20


def _rounds(steps: int, sampler: str) -> int:
    """UNet calls of one reconstruction at most: every step for DDPM, ``steps`` for DDIM."""
    return 1000 if sampler == "ddpm" else max(1, int(steps))


def _measured_on_gpu(prior: str) -> float | None:
    """Seconds per evaluation of this prior measured on a GPU here, if it was."""
    from ..attacker.priors import PriorUnavailable
    from ..audit import costs

    if not torch.cuda.is_available():
        return None
    try:
        return costs.per_eval(load_prior(prior, device="cuda"))
    except (PriorUnavailable, RuntimeError, OSError):
        return None


def prior_table() -> list[tuple[str, str, str, str]]:
    """(key, title, state, why) for every registered prior; the embedded prior first."""
    return [(key, spec.title, *prior_status(key)) for key, spec in REGISTRY.items()]


def prior_choices(table: list[tuple[str, str, str, str]] | None = None) -> list[tuple[str, str]]:
    """(label with status, key) for the prior selector; the embedded prior first."""
    return [(f"{title} [{state}]", key) for key, title, state, _ in (table or prior_table())]
