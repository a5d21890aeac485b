"""What the dashboard computes, without any UI: budget ladder, slider mapping, views of a
budget, DP-SGD calculator text and the report. app.py only lays out and wires these."""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch

from . import accounting
from .attacks import load_baseline
from .caches import LRU
from .audit import AuditResult, AuditSample, run_audit
from .images import ImageLike, to_uint8
from .plots import bound_figure, similarity_figure
from .priors import EMBEDDED, REGISTRY, load_prior, prior_status
from .reconstruct import DEFAULT_DDIM_STEPS
from .report import grid_image, html_report
from .reference import ReferenceUnavailable, reference_for
from .verdict import BudgetVerdict

__all__ = ["SLIDER_RANGE", "Settings", "Session", "BudgetView", "slider_to_mu", "mu_to_slider",
           "budget_label", "ladder_mus", "compute_ladder", "ladder_steps", "merge",
           "view_budget", "compute_exact",
           "dpsgd_text", "prior_choices", "prior_table", "report_html", "display",
           "ladder_image", "tries_image", "figures", "ladder_verdicts", "gpu_seconds"]

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
        raise ValueError(f"the slider gives log10 of {mode}: it must lie between {lo:.3g} and "
                         f"{hi:.3g} ({mode} {10 ** lo:.3g} to {10 ** hi:.3g}), got {v:g}")
    budget = 10.0 ** v
    if mode == "eps":
        return accounting.mu_from_eps(budget, delta), budget
    return budget, accounting.eps_from_mu(budget, delta)


def mu_to_slider(mu: float, mode: str, delta: float) -> float:
    lo, hi = SLIDER_RANGE[mode]
    v = math.log10(accounting.eps_from_mu(mu, delta) if mode == "eps" else mu) if mu > 0 else lo
    return float(min(max(v, lo), hi))


def budget_label(mu: float, eps: float, delta: float) -> str:
    return f"eps = {eps:.4g} at delta = {delta:g}  (mu = {mu:.4g})"


def ladder_mus(image_norm: float, n: int = LADDER_SIZE) -> list[float]:
    """n budgets from 'useless' (noise std 0.05 in the model's scale) to 'strong' protection
    (std 200, beyond the linear schedule's range): mu = 2 ||x|| / sigma_dm."""
    sig = np.geomspace(*LADDER_SIGMAS, n)
    return sorted(float(2 * max(image_norm, 1e-6) / s) for s in sig)


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


@dataclass
class Session:
    """One user's ladder for one (image, prior, settings), and the exact budgets computed
    since (an LRU of at most EXACT_CACHE_SIZE results).

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
        cache.put(float(mu), result)
        return replace(self, exact=cache)


def _key(x: torch.Tensor, settings: Settings) -> str:
    h = hashlib.sha256(x.numpy().tobytes())
    h.update(repr(settings).encode())
    return h.hexdigest()


def _baseline_for(prior) -> dict | None:
    """The unrelated-image baseline: the one shipped with the prior (it has LPIPS where its
    backbone was available), else the one over the prior's reference set; never 0."""
    shipped = load_baseline(prior.folder) if prior.folder is not None else None
    if shipped is not None:
        return shipped
    try:
        return reference_for(prior).baseline
    except (ReferenceUnavailable, OSError):
        return None


def compute_ladder(
    image: ImageLike,
    settings: Settings,
    *,
    current_mu: float | None = None,
    progress: Callable[[float, str], None] | None = None,
    previous: Session | None = None,
) -> Session:
    """The ladder for this image and settings, plus the current budget (the last session of
    ``ladder_steps``). Returns ``previous`` unchanged when image and settings are the same."""
    session = previous
    for session in ladder_steps(image, settings, current_mu=current_mu, progress=progress,
                                previous=previous):
        pass
    return session


def ladder_steps(
    image: ImageLike,
    settings: Settings,
    *,
    current_mu: float | None = None,
    progress: Callable[[float, str], None] | None = None,
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
    if previous is not None and previous.key == key and not previous.pending:
        yield previous  # a complete ladder of the same image and settings (a stopped stream
        return          # is computed again)
    ladder = ladder_mus(float(x.norm()))
    baseline = _baseline_for(prior)
    current = [float(current_mu)] if current_mu is not None else []
    if prior.sample_size <= STREAM_ABOVE:
        res = _run(x, ladder + current, settings, prior=prior, progress=progress)
        session = Session(key=key, image=x, settings=settings, ladder=_subset(res, ladder),
                          baseline=baseline)
        yield session.with_exact(current[0], _subset(res, current)) if current else session
        return
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
            session = Session(key=key, image=x, settings=settings, ladder=res,
                              baseline=baseline, pending=len(ladder))
        else:
            parts.append(res)
            session = Session(key=key, image=x, settings=settings, ladder=merge(parts),
                              baseline=baseline, pending=len(ladder) - len(parts))
        yield session.with_exact(current[0], first) if first is not None else session


def merge(results: list[AuditResult]) -> AuditResult:
    """One result holding the budgets of several runs of the same image and settings."""
    return AuditResult(**{**results[0].__dict__,
                          "samples": [s for r in results for s in r.samples],
                          "verdicts": [v for r in results for v in r.verdicts]})


def _run(x: torch.Tensor, mus: list[float], settings: Settings, *, prior=None,
         progress: Callable[[float, str], None] | None = None) -> AuditResult:
    """run_audit with a session's settings (DDPM always walks every step from t*)."""
    return run_audit(x, mus=mus, delta=settings.delta, prior=prior or settings.prior,
                     trials=settings.trials, seed=settings.seed, sampler=settings.sampler,
                     steps=settings.steps if settings.sampler == "ddim" else None,
                     mechanism=settings.mechanism, lpips=settings.lpips, progress=progress)


def _subset(res: AuditResult, mus: list[float]) -> AuditResult:
    keep = [s for s in res.samples if any(math.isclose(s.mu, m) for m in mus)]
    verdicts = [v for v in res.verdicts if any(math.isclose(v.mu, m) for m in mus)]
    return AuditResult(**{**res.__dict__, "samples": keep, "verdicts": verdicts})


def compute_exact(session: Session, mu: float, *,
                  progress: Callable[[float, str], None] | None = None
                  ) -> tuple[Session, AuditResult]:
    """The exact budget (same image, settings and trials): (the session that also holds it,
    its result). ``session`` itself is left as it was."""
    found, m, exact = session.result_for(mu)
    if exact:
        return session, _subset(found, [m])
    res = _run(session.image, [mu], session.settings, progress=progress)
    return session.with_exact(mu, res), res


def display(x: torch.Tensor, size: int = 256) -> np.ndarray:
    """uint8 array for the screen: small images enlarged with nearest-neighbour pixels."""
    a = to_uint8(x)
    k = max(1, size // a.shape[0])
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


@dataclass
class BudgetView:
    mu: float
    eps: float
    exact: bool
    samples: list[AuditSample]  # the trials of this budget
    verdict: BudgetVerdict | None  # None when the prior has no reference set
    domain: dict | None
    spread: torch.Tensor  # (1, H, W) spread map
    beyond_range: bool
    reference: str = ""

    @property
    def label(self) -> str:
        """The headline: the identification verdict, or why there is none."""
        if self.verdict is None:
            return "no verdict"
        if self.domain is not None and not self.domain["in_domain"]:
            return "not assessed: outside the prior's domain"
        return self.verdict.verdict

    def verdict_markdown(self) -> str:
        """The verdict in plain words: domain first, then identification, then attribute."""
        lines = []
        if self.domain is not None and not self.domain["in_domain"]:
            lines.append(
                "**Warning: this image is outside what the prior knows.** The attacker's prior "
                f"was trained on other kinds of images (typicality distance {self.domain['score']:.1f}; "
                f"images of its kind stay below {self.domain['threshold']:.1f}). The "
                "reconstructions show what the prior would guess, not a leak of this image, "
                "and no verdict or attribute claim is made. Pick a prior trained on images like "
                "yours.")
        if self.verdict is None:
            lines.append(f"No verdict: {self.reference}")
            return "\n\n".join(lines)
        v = self.verdict
        if self.domain is None or self.domain["in_domain"]:
            lines.append(v.sentence())
            if v.attribute is not None:
                a = v.attribute
                direct = ("" if a.without_prior is None else
                          f" Without a diffusion model, a classifier that knows the noise level "
                          f"reads the {a.name} from the privatized image itself in "
                          f"{a.without_prior} of {a.trials} tries.")
                lines.append(
                    f"**{a.name.capitalize()} {'revealed' if a.revealed else 'not revealed'}**: the "
                    f"reconstruction shows the original's {a.name} in {a.successes} of {a.trials} "
                    f"tries (95% interval {a.ci95[0]:.0%} to {a.ci95[1]:.0%}); the prior draws this "
                    f"class {a.chance:.0%} of the time on its own.{direct}")
        else:
            lines.append(f"_For the record, not a verdict: {v.sentence()}_")
        return "\n\n".join(lines)

    def metrics_markdown(self, lpips_note: str) -> str:
        def mean(who, key):
            vals = [getattr(s, who)[key] for s in self.samples if getattr(s, who)[key] is not None]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)

        rows = [("LPIPS", "lpips", ".3f", "perceptual distance learned from human judgements; "
                 "0 = identical, lower = more similar"),
                ("SSIM", "ssim", ".3f", "structural similarity of local patterns; 1 = identical"),
                ("PSNR", "psnr", ".1f", "pixel fidelity in dB; higher = closer (above about 20 dB "
                 "differences are subtle)"),
                ("MSE", "mse", ".4f", "mean squared pixel error; 0 = identical")]
        lines = [f"Means over {len(self.samples)} trials.", "",
                 "| metric | noisy observation | diffusion reconstruction | what it means |",
                 "|---|---|---|---|"]
        for name, key, spec, meaning in rows:
            lines.append(f"| {name} | {fmt(mean('noisy', key), spec)} | "
                         f"**{fmt(mean('recon', key), spec)}** | {meaning} |")
        if lpips_note and "unavailable" in lpips_note:
            lines.append(f"\n_{lpips_note}_")
        return "\n".join(lines)


def view_budget(session: Session, mu: float) -> BudgetView:
    return _view(*session.result_for(mu))


def _view(res: AuditResult, m: float, exact: bool) -> BudgetView:
    samples = res.at(m)
    return BudgetView(mu=m, eps=samples[0].eps, exact=exact, samples=samples,
                      verdict=res.verdict_at(m), domain=res.domain, spread=res.spread(m),
                      beyond_range=any(s.beyond_range for s in samples),
                      reference=res.reference)


def ladder_verdicts(session: Session) -> dict[float, str]:
    return {m: view_budget(session, m).label for m in session.ladder.budgets()}


def verdicts_payload(session: Session, view: BudgetView) -> dict:
    """The verdicts.json of the ladder and the budget on view (what the API returns)."""
    out = session.ladder.verdicts_json()
    if view.verdict is not None and not any(math.isclose(b["mu"], view.mu) for b in out["budgets"]):
        out["budgets"] = sorted(out["budgets"] + [view.verdict.to_dict()], key=lambda b: b["mu"])
    return out


# Budgets to pin for comparison. Sources (README, "Comparing budgets"): eps 8 and eps 1 are
# the strongest and the most cited settings of De et al. 2022 (DP-SGD on CIFAR-10 and
# ImageNet); eps 3 is Tramer & Boneh 2021's CIFAR-10 setting; eps 1000 stands for budgets
# that give no real protection against this attacker.
PRESETS = {"eps 1": 1.0, "eps 3": 3.0, "eps 8": 8.0, "eps 1000 (no real protection)": 1000.0}
MAX_PINNED = 4


def pin_label(mu: float, eps: float) -> str:
    return f"eps {eps:.4g} (mu {mu:.4g})"


def pin_choices(pinned: list[str]) -> list[str]:
    return list(dict.fromkeys(list(PRESETS) + list(pinned)))


def pinned_mu(choice: str, delta: float) -> float:
    """mu of a pinned budget: a preset (eps at ``delta``) or a pin_label."""
    if choice in PRESETS:
        return accounting.mu_from_eps(PRESETS[choice], delta)
    try:
        return float(choice.split("(mu ")[1].rstrip(")"))
    except (IndexError, ValueError):
        raise ValueError(f"unknown budget {choice[:40]!r}") from None


def compare_budgets(session: Session, mus: list[float], *,
                    progress: Callable[[float, str], None] | None = None):
    """(grid image, markdown table, session) of the given budgets side by side, with their
    verdicts; budgets not yet computed are computed once (same image, settings and trials)
    and the returned session holds them."""
    results = []
    for m in mus:
        session, res = compute_exact(session, m, progress=progress)
        results.append(res)
    merged = merge(results)
    views = [_view(r, r.budgets()[0], True) for r in results]  # the session's cache may have
    # dropped an early one when more budgets than it holds are compared
    notes = {v.mu: v.label for v in views}
    rows = ["| budget | identified among 10 | chance | attribute | verdict |", "|---|---|---|---|---|"]
    for v in views:
        i = v.verdict.identification if v.verdict else None
        a = v.verdict.attribute if v.verdict else None
        ident = f"{i.successes} of {i.trials}" if i else "n/a"
        chance = f"{i.chance:.0%}" if i else "n/a"
        attr = "n/a" if a is None else (
            f"{a.successes} of {a.trials} ({'revealed' if a.revealed else 'not revealed'})")
        rows.append(f"| {budget_label(v.mu, v.eps, session.settings.delta)} | {ident} | {chance} "
                    f"| {attr} | **{v.label}** |")
    return grid_image(merged, notes=notes), "\n".join(rows), session


def tries_image(samples: list[AuditSample], size: int = 96):
    """The reconstructions of one budget side by side, one tile per try (at most 8 a row)."""
    from .report import tile

    side = samples[0].reconstruction.shape[-1]
    return tile(torch.stack([s.reconstruction for s in samples]), cols=min(8, len(samples)),
                scale=max(1, size // side))


def ladder_image(session: Session):
    notes = ladder_verdicts(session)
    return grid_image(session.ladder, notes=notes)


def figures(session: Session, mode: str, current_mu: float):
    x = session.image
    sim = similarity_figure(session.ladder, mode=mode, current_mu=current_mu,
                            baseline=session.baseline)
    bnd = bound_figure(mode=mode, delta=session.settings.delta, current_mu=current_mu,
                       image_norm=float(x.norm()), pixels=x.numel())
    return sim, bnd


def report_html(session: Session, mode: str, current_mu: float) -> str:
    res, m, _ = session.result_for(current_mu)
    current = _subset(res, [m])
    return html_report(session.ladder, current=current, mode=mode, baseline=session.baseline,
                       figures=figures(session, mode, current_mu),
                       verdicts={**ladder_verdicts(session), m: view_budget(session, m).label})


def dpsgd_text(noise_multiplier: float, sample_rate: float, steps: int, delta: float
               ) -> tuple[str, float]:
    """Markdown summary of a DP-SGD run's budget, and its mu (for the slider)."""
    b = accounting.dpsgd_budget(noise_multiplier=noise_multiplier, sample_rate=sample_rate,
                                steps=int(steps), delta=delta)
    lines = [f"**mu = {b.mu:.4g}** ({b.mu_method})"]
    if b.eps_exact is not None:
        lines.append(f"- eps = **{b.eps_exact:.4g}** at delta = {delta:g} (exact, from mu)")
    lines.append(f"- eps = {b.eps_prv:.4g} (Opacus PRV accountant)" if b.eps_prv is not None
                 else f"- PRV accountant: {b.prv_error}")
    lines.append(f"- eps = {b.eps_rdp:.4g} (Opacus RDP accountant, an upper bound)")
    return "\n".join(lines), b.mu


def gpu_seconds(prior: str, sampler: str, steps: int, trials: int) -> int:
    """A generous estimate of the GPU time one ladder needs (ZeroGPU asks for it up front):
    UNet rounds x batch x a per-sample cost that grows with the prior's pixel count:
    4 ms per sample and step at 256x256, about twice what a float16 forward of the
    113.7 M-parameter CelebA-HQ UNet is expected to take on an A100 (not yet measured here:
    no GPU has been lent to this project; tests/test_gpu.py times it where one is), plus
    15 s for loading and metrics."""
    spec = REGISTRY.get(prior)
    side = spec.resolution if spec and spec.resolution else 256
    rounds = 1000 if sampler == "ddpm" else max(1, int(steps))
    batch = (LADDER_SIZE + 1) * max(1, int(trials))
    per_sample = 0.004 * (side / 256) ** 2 + 1e-4
    return int(min(600, max(20, 15 + rounds * batch * per_sample)))


def prior_table() -> list[tuple[str, str, str, str]]:
    """(key, title, state, why) for every registered prior; the embedded prior first."""
    return [(key, spec.title, *prior_status(key)) for key, spec in REGISTRY.items()]


def prior_choices(table: list[tuple[str, str, str, str]] | None = None) -> list[tuple[str, str]]:
    """(label with status, key) for the prior selector; the embedded prior first."""
    return [(f"{title} [{state}]", key) for key, title, state, _ in (table or prior_table())]

