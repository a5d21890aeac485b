"""The dashboard's page actions: the one door between the web layer and the engine.

Every event of the page is one function here (audit, move, exact budget, compare, search,
data set, report and the small ones), taking the form's values and returning a typed view
(the dataclasses below), never a Gradio component: everything the page says, its estimates
and its refusals are testable without Gradio. The web layer (webui/handlers.py) only adapts:
components, errors as sentences, spaces.GPU, the request's files and time limit.

A visitor's state is one ``Session`` (session/ladder.py), a value: an action that adds to
it returns the new session in its view.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..attacker.attributes import attribute_name
from ..attacker.priors import REGISTRY, default_device
from ..audit import costs
from ..progress import Progress
from . import ladder, views
from .ladder import LADDER_SIZE, Session, Settings, budget_label

__all__ = [
    "Limits",
    "Infeasible",
    "BudgetPanel",
    "Moved",
    "AuditStep",
    "AltTexts",
    "Comparison",
    "SearchAnswer",
    "DatasetAnswer",
    "settings",
    "budget",
    "on_view",
    "check_feasible",
    "audit",
    "panel",
    "move",
    "exact",
    "alt_texts",
    "compare",
    "pin",
    "search",
    "dataset",
    "write_report",
    "readout",
    "box_value",
    "typed_budget",
    "switch_mode",
    "slider_for",
    "pin_choices",
    "level_choices",
    "tries_for",
    "priors_table",
    "dpsgd",
    "audit_seconds",
    "exact_seconds",
    "compare_seconds",
    "search_seconds",
    "dataset_seconds",
    "SLIDER_RANGE",
    "DEFAULT_SLIDER",
    "PIN_CHOICES",
    "MAX_PINNED",
]

SLIDER_RANGE = ladder.SLIDER_RANGE
DEFAULT_SLIDER = 2.0  # eps 100: a budget most images are recognisable at
PIN_CHOICES = views.pin_choices([])
MAX_PINNED = views.MAX_PINNED
SEARCH_BUDGETS = 20  # budgets the search audits at its first look, about


class Infeasible(ValueError):
    """Work this server cannot finish within its time limit, refused at once; the message
    gives the estimate and what would fit."""


@dataclass(frozen=True)
class Limits:
    """What the server allows a request: its time limit (seconds) and a check that the
    prior is prepared (raises NotPrepared at once otherwise)."""

    time_limit: float
    ready: Callable[[str], None] = lambda prior: None


@dataclass(frozen=True)
class BudgetPanel:
    """The view of one budget: the pictures (uint8 arrays), the verdict and the metrics in
    words, the verdicts as verdicts.json gives them, the budget in words (``readout``) and
    itself (``box``: eps or mu to 4 digits). ``original`` and the two figures are None
    where they stay as they are (a slider move: the plots' marker follows with the exact
    budget)."""

    privatized: np.ndarray
    tries: np.ndarray
    spread: np.ndarray
    verdict: str
    metrics: str
    verdicts: dict
    readout: str
    box: float
    original: np.ndarray | None = None
    similarity: Any = None
    bounds: Any = None
    budgets: Any = None  # what eps means for this image (plots.budgets_figure)
    budgets_table: str | None = None  # its numbers (the plot's text alternative)


@dataclass(frozen=True)
class Moved:
    """A slider move: the budget's panel (None before any audit), its readout and box."""

    panel: BudgetPanel | None
    readout: str
    box: float | None


@dataclass(frozen=True)
class AuditStep:
    """One step of an audit as it is computed: the budget's panel, the ladder's picture
    and the session so far."""

    panel: BudgetPanel
    ladder: np.ndarray
    session: Session


@dataclass(frozen=True)
class AltTexts:
    """Text alternatives that carry the finding, for the result pictures."""

    original: str
    privatized: str
    tries: str
    spread: str
    ladder: str


@dataclass(frozen=True)
class Comparison:
    image: np.ndarray
    table: str
    session: Session


@dataclass(frozen=True)
class SearchAnswer:
    """The search's answer: its text; the answer and the first budget above it side by
    side (None when there is no answer to show), with its text alternative; the slider's
    new position; the session that holds both budgets (None: unchanged)."""

    text: str
    image: np.ndarray | None = None
    alt: str = ""
    slider: float | None = None
    session: Session | None = None
    mu_max: float | None = None  # the answer (None: none given, or none shown)


@dataclass(frozen=True)
class DatasetAnswer:
    text: str
    figure: Any
    report: Path


# --- the form ---------------------------------------------------------------------------


def settings(
    prior, delta, sampler, steps, trials, seed, clip=None, tolerance=None, *, default_prior: str
) -> Settings:
    """The form's settings (the prior from this deployment's list; an empty clipping bound
    is the prior's default; the tolerance in percentage points, empty: 10)."""
    if prior not in (None, "") and prior not in REGISTRY:
        raise ValueError(f"unknown prior {str(prior)[:80]!r}: choose one from the list")
    try:
        clip = None if clip in (None, "", 0) else float(clip)
    except (TypeError, ValueError):
        raise ValueError("the clipping bound must be a number > 0, or empty") from None
    try:
        points = None if tolerance in (None, "") else float(tolerance)
    except (TypeError, ValueError):
        raise ValueError("the tolerance must be a number of percentage points") from None
    extra = {} if points is None else {"tolerance": points / 100}
    return Settings.from_inputs(
        prior=prior or default_prior,
        delta=delta,
        sampler=sampler,
        steps=steps,
        trials=trials,
        seed=seed,
        clip_norm=clip,
        **extra,
    )


def budget(slider, mode, delta) -> tuple[float, float]:
    """(mu, eps) of a slider position; ValueError with a sentence when it is not one."""
    try:
        return ladder.slider_to_mu(slider, mode, float(delta))
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"invalid budget: {exc}") from None


def on_view(session: Session | None, slider, mode, delta) -> tuple[float, float]:
    """(mu, eps) of the budget on view: the slider's, or a budget the session holds exactly
    (the search's answer, a compared budget) within half a slider step of it, so that the
    page shows that budget itself rather than auditing its rounded neighbour again."""
    mu, eps = budget(slider, mode, delta)
    if session is None:
        return mu, eps
    position = float(slider)
    for m, res in session.exact.items():
        if abs(ladder.mu_to_slider(m, mode, float(delta)) - position) <= 0.005 + 1e-9:
            return m, res.at(m)[0].eps
    return mu, eps


def readout(slider, mode, delta, session: Session | None = None) -> str:
    try:
        mu, eps = on_view(session, slider, mode, delta)
    except ValueError as exc:
        return f"{str(exc)[:1].upper()}{str(exc)[1:]}."
    return f"**{budget_label(mu, eps, float(delta))}**"


def box_value(slider, mode, delta, session: Session | None = None) -> float | None:
    """The budget itself for the box beside the slider (eps or mu, 4 digits)."""
    try:
        mu, eps = on_view(session, slider, mode, delta)
    except ValueError:
        return None
    return float(f"{eps if mode == 'eps' else mu:.4g}")


def slider_for(mu: float, mode, delta) -> float:
    """The slider's position of budget ``mu`` (the DP-SGD calculator's, for one)."""
    return ladder.mu_to_slider(float(mu), mode, float(delta))


def pin_choices(pinned: Sequence[str]) -> list[str]:
    """The budgets offered for comparison: the presets and those pinned."""
    return views.pin_choices(list(pinned))


def typed_budget(value, mode) -> float:
    """The slider's position for a budget typed as eps or mu itself."""
    return ladder.budget_to_slider(value, mode)


def switch_mode(mode, slider, delta) -> tuple[float, float | None]:
    """(the slider's position, the box's value) of the same budget in the other unit."""
    old = "mu" if mode == "eps" else "eps"
    mu, _ = budget(slider, old, delta)
    position = ladder.mu_to_slider(mu, mode, float(delta))
    return position, box_value(position, mode, delta)


def level_choices(prior) -> tuple[list[tuple[str, str]], str | None]:
    """The levels the search can keep with this prior and, when only one, why: "not
    recognisable", and "NAME not revealed" when the prior ships an attribute classifier."""
    spec = REGISTRY.get(prior)
    name = attribute_name(spec.source if spec else None)
    choices = [("not recognisable", "not recognisable")]
    if name:
        choices.append((f"{name} not revealed", "no attribute"))
    return choices, (
        None
        if name
        else "This prior has no attribute classifier, so only recognisability can be kept."
    )


def tries_for(prior) -> int:
    """The first look's tries for this prior: 8 up to 64 pixels, 4 above."""
    spec = REGISTRY.get(prior)
    side = spec.resolution if spec and spec.resolution else 256
    return 8 if side <= 64 else 4


def priors_table() -> str:
    rows = ["| prior | state | why |", "|---|---|---|"]
    rows += [
        f"| {title} (`{key}`) | {state} | {why} |"
        for key, title, state, why in ladder.prior_table()
    ]
    return "\n".join(rows)


def dpsgd(z, q, steps, delta) -> tuple[str, float]:
    """The DP-SGD calculator: its text and mu (for the slider)."""
    return views.dpsgd_text(float(z), float(q), int(steps), float(delta))


# --- estimates and refusals --------------------------------------------------------------


def check_feasible(prior: str, evaluations: int, what: str, *, fewer: str, limit: float) -> None:
    """Refuse at once (Infeasible), with the estimate, work whose first look cannot finish
    within ``limit`` seconds on this server: UNet evaluations x the seconds per evaluation
    measured in this process (audit/costs.py; a prior in memory is probed before it is
    refused, so a stale estimate never locks it out). Never loads the prior nor waits."""
    known = costs.seconds_for(prior, evaluations, limit)
    if known is None or known[0] <= limit:
        return
    seconds, per = known
    raise Infeasible(
        f"{what} needs about {evaluations:,} UNet evaluations of this prior before its first "
        f"verdict: about {seconds:,.0f} s on this server ({per * 1000:.0f} ms each, measured "
        f"here on {default_device()} just now), beyond its limit of {limit:g} s per "
        f"request. It would fit {fewer}, on a GPU, or with a smaller prior."
    )


# GPU seconds each action asks ZeroGPU for, up front (ladder.gpu_seconds: measured per
# evaluation on the GPU, else a size-scaled guess); at most 600


def audit_seconds(prior, sampler, steps, trials) -> int:
    try:
        return ladder.gpu_seconds(prior, sampler, int(steps), int(trials))
    except (TypeError, ValueError, OverflowError):
        return 60


def exact_seconds(session: Session | None) -> int:
    """One budget: the ladder's time shared by its budgets (and the current one)."""
    if session is None:
        return 20
    s = session.settings
    return max(20, ladder.gpu_seconds(s.prior, s.sampler, s.steps, s.trials) // (LADDER_SIZE + 1))


def compare_seconds(session: Session | None, n: int) -> int:
    return min(600, exact_seconds(session) * max(1, n))


def search_seconds(session: Session | None) -> int:
    """About SEARCH_BUDGETS budgets (the ladder: 9), each with the sequential rule."""
    if session is None:
        return 20
    s = session.settings
    return min(
        600,
        ladder.gpu_seconds(s.prior, s.sampler, s.steps, s.trials)
        * SEARCH_BUDGETS
        // (LADDER_SIZE + 1),
    )


def dataset_seconds(n_images: int, prior, steps, trials, n_budgets: int) -> int:
    """Each image: the data set's budgets, as one ladder scaled to their number."""
    try:
        one = ladder.gpu_seconds(prior, "ddim", int(steps), int(trials))
    except (TypeError, ValueError, OverflowError):
        one = 60
    return min(600, 20 + n_images * one * n_budgets // (LADDER_SIZE + 1))


# --- one image ---------------------------------------------------------------------------


def panel(session: Session, mu: float, eps: float, mode: str, *, plots: bool = True) -> BudgetPanel:
    """The view of budget ``mu`` (eps ``eps``: the readout and the box say it even while the
    view shows the nearest ladder point); ``plots=False`` leaves the original, the three
    plots and the budgets' table as they are."""
    v = views.view_budget(session, mu)
    first = v.samples[0]
    delta = session.settings.delta
    status = "" if v.exact else " (nearest ladder point; the exact budget is being computed)"
    beyond = (
        "\n\nThe noise is beyond what the prior can model: each reconstruction is "
        "essentially a random image of this kind."
        if v.beyond_range
        else ""
    )
    pending = (
        f"\n\n_The budget ladder is still being computed: {session.pending} of "
        f"{LADDER_SIZE} budgets to come; the plots fill in as they finish._"
        if session.pending
        else f"\n\n_A claim (recognisability or the attribute) is undetermined at "
        f"{session.settings.trials} tries at {session.adding} budget(s): the sequential "
        "rule is adding tries there before it says anything._"
        if session.adding
        else ""
    )
    lad = session.ladder
    if v.stopped and v.verdict is not None and v.verdict.verdict == "undetermined":
        pending += f"\n\n_{v.stopped[0].upper()}{v.stopped[1:]}._"
    release = (
        f"\n\nRelease: clip_C(x) + (C / mu) xi with clipping bound C = {lad.clip_norm:.3g} "
        f"({lad.clip_source}), mu-GDP for adding or removing your image; the attackers "
        "know only public quantities."
    )
    verdict = (
        f"### {v.label.capitalize()}\n{v.verdict_markdown()}\n\n"
        f"{budget_label(v.mu, v.eps, delta)}{status}; "
        f"{len(v.samples)} tries; reverse process from t* = {first.t_star}.{release}"
        f"{beyond}{pending}"
    )
    original = similarity = bounds = budgets = table = None
    if plots:
        original = views.display(session.image)
        similarity, bounds, budgets = views.figures(session, mode, mu)
        table = views.budgets_table(session, mode)
    return BudgetPanel(
        privatized=views.display(first.privatized),
        tries=views.tries_image(v.samples),
        spread=views.display(v.spread),
        verdict=verdict,
        metrics=v.metrics_markdown(lad.lpips_note),
        verdicts=views.verdicts_payload(session, v),
        readout=f"**{budget_label(mu, eps, delta)}**",
        box=float(f"{eps if mode == 'eps' else mu:.4g}"),
        original=original,
        similarity=similarity,
        bounds=bounds,
        budgets=budgets,
        budgets_table=table,
    )


def audit(
    image,
    chosen: Settings,
    slider,
    mode,
    previous: Session | None,
    *,
    limits: Limits,
    progress: Progress | None = None,
) -> Iterator[AuditStep]:
    """Compute the budget ladder (once per image, prior and settings) and show the slider's
    budget; a large prior shows the chosen budget first, then the ladder as it is computed.
    Refused at once (Infeasible) when its first look cannot fit the time limit, and
    (NotPrepared) when the prior is still being prepared."""
    if image is None:
        raise ValueError("Upload an image or pick an example first.")
    mu, eps = budget(slider, mode, chosen.delta)
    if previous is None or previous.settings != chosen:
        check_feasible(
            chosen.prior,
            ladder.first_look_evaluations(chosen.trials, chosen.steps, chosen.sampler),
            "This audit",
            fewer=f"with fewer tries or steps (now {chosen.trials} tries, "
            f"{chosen.steps if chosen.sampler == 'ddim' else 1000} steps)",
            limit=limits.time_limit,
        )
    limits.ready(chosen.prior)
    for session in ladder.ladder_steps(
        image, chosen, current_mu=mu, previous=previous, progress=progress
    ):
        yield AuditStep(panel(session, mu, eps, mode), views.ladder_image(session), session)


def move(session: Session | None, slider, mode, delta) -> Moved:
    """A slider move, answered from the session at once (no model run)."""
    if session is None:
        return Moved(None, readout(slider, mode, delta), box_value(slider, mode, delta))
    mu, eps = on_view(session, slider, mode, delta)
    p = panel(session, mu, eps, mode, plots=False)
    return Moved(p, p.readout, p.box)


def exact(
    session: Session, slider, mode, delta, *, progress: Progress | None = None
) -> tuple[BudgetPanel, Session]:
    """The exact budget on view when it lies between ladder points: its panel and the new
    session that holds it (the session given is left as it was)."""
    mu, eps = on_view(session, slider, mode, delta)
    if not views.view_budget(session, mu).exact:
        session, _ = ladder.compute_exact(session, mu, progress=progress)
    return panel(session, mu, eps, mode), session


def alt_texts(session: Session, slider, mode, delta) -> AltTexts | None:
    """The pictures' text alternatives at the budget on view (None when it is no budget)."""
    try:
        mu, _ = on_view(session, slider, mode, delta)
    except ValueError:
        return None
    v = views.view_budget(session, mu)
    at = f"eps {v.eps:.3g} (mu {v.mu:.3g})"
    k = len(v.samples)
    rungs = "; ".join(
        f"eps {session.ladder.at(m)[0].eps:.3g}: {label}"
        for m, label in views.ladder_verdicts(session).items()
    )
    return AltTexts(
        original="the audited image, as the prior sees it",
        privatized=f"what the attacker receives at {at}, try 1 of {k}",
        tries=f"{k} reconstructions at {at}, one per try; verdict: {v.label}",
        spread=f"spread of the {k} reconstructions at {at}: bright where the tries disagree",
        ladder=f"budget ladder, strongest protection first: {rungs}",
    )


def write_report(session: Session, slider, mode, delta, folder: Path) -> Path:
    """The report of the budget on view, written into ``folder`` (emptied first: one
    report per session at a time)."""
    mu, _ = on_view(session, slider, mode, delta)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "privacy-audit-report.html"
    path.write_text(views.report_html(session, mode, mu), encoding="utf-8")
    return path


def pin(pinned: Sequence[str] | None, slider, mode, delta) -> list[str]:
    """The pinned budgets with the slider's added (at most MAX_PINNED)."""
    mu, eps = budget(slider, mode, delta)
    choice = views.pin_label(mu, eps)
    pinned = [p for p in (pinned or []) if p != choice]
    if len(pinned) >= MAX_PINNED:
        raise ValueError(f"At most {MAX_PINNED} budgets can be pinned; remove one first.")
    return pinned + [choice]


def compare(
    session: Session, pinned: Sequence[str] | None, delta, *, progress: Progress | None = None
) -> Comparison:
    """The pinned budgets side by side, each with its verdict and the evidence that decided
    it; the new session holds them."""
    if not pinned:
        raise ValueError("Pick at least one budget to compare.")
    if len(pinned) > MAX_PINNED:
        raise ValueError(f"Compare at most {MAX_PINNED} budgets at once.")
    mus = [views.pinned_mu(p, float(delta)) for p in pinned]
    image, table, session = views.compare_budgets(session, mus, progress=progress)
    return Comparison(image, table, session)


def search(
    session: Session,
    level,
    mode,
    delta,
    *,
    limits: Limits,
    tolerance=None,
    progress: Progress | None = None,
) -> SearchAnswer:
    """The largest budget at which the image keeps ``level`` (solve.py), with the audit's
    settings and the tolerance given (percentage points over guessing; empty: the audit's);
    then the answer and the first budget searched above it side by side, the answer in
    words, and the slider at the answer (the view shows that budget itself)."""
    from ..audit.solve import NotSolvable, solve_budget

    s = session.settings
    if tolerance not in (None, ""):
        s = settings(
            s.prior,
            s.delta,
            s.sampler,
            s.steps,
            s.trials,
            s.seed,
            s.clip_norm,
            tolerance,
            default_prior=s.prior,
        )
    check_feasible(
        s.prior,
        ladder.first_look_evaluations(s.trials, s.steps, "ddim", budgets=SEARCH_BUDGETS),
        "The search",
        fewer=f"with fewer tries or steps (now {s.trials} tries)",
        limit=limits.time_limit,
    )
    limits.ready(s.prior)
    try:
        found = solve_budget(
            session.image,
            prior=s.prior,
            level=level,
            delta=float(delta),
            trials=s.trials,
            seed=s.seed,
            steps=s.steps,
            clip_norm=s.clip_norm,
            tolerance=s.tolerance,
            progress=progress,
        )
    except NotSolvable as exc:
        return SearchAnswer(f"**No budget can be given.** {exc}")
    if found.mu_max is None:
        return SearchAnswer(
            f"**{found.sentence()}**", session=replace(session, search=found.sentence())
        )
    # the search's own audits of the two budgets (with the tries it used) go into the
    # session, so the picture and table show what the sentence says, without auditing again
    for m, result in found.results.items():
        session = session.with_exact(m, result)
    image, table, session = views.compare_budgets(session, list(found.results), progress=progress)
    most = max(g["trials"] for g in found.grid)
    more = f" (up to {most} where the first were undetermined)" if most > found.trials else ""
    above = found.bracket[1]
    below = (
        "Top row: the answer; bottom row: the first budget searched above it"
        + (
            f" (eps = {found.results[above].at(above)[0].eps:.4g})"
            if above in found.results
            else ""
        )
        + "."
    )
    text = (
        f"**{found.sentence()}**\n\nSearched {found.evaluations} budgets, {found.trials} "
        f"tries each{more}, every one with the same rule; protection is shown at every "
        f"budget searched below the answer. {below}\n\n" + table
    )
    alt = (
        f"reconstructions at eps {found.eps_max:.4g} (the answer) and at the first budget "
        "searched above it, with their verdicts"
    )
    position = round(ladder.mu_to_slider(found.mu_max, mode, float(delta)), 2)
    return SearchAnswer(
        text, image, alt, position, replace(session, search=found.sentence()), found.mu_max
    )


# --- a data set --------------------------------------------------------------------------


def dataset(
    paths: Sequence[str],
    chosen: Settings,
    run_dir: Path,
    *,
    epsilons: Sequence[float],
    max_images: int,
    limits: Limits,
    progress: Progress | None = None,
) -> DatasetAnswer:
    """Audit several images with the batch engine (``run_dir`` holds their links and the
    outputs, emptied first): the share recognisable or partly at each budget, the table and
    the data set's report."""
    from ..batch.config import BatchConfig
    from ..batch.run import run_batch
    from ..batch.summary import summarize_batch
    from ..outputs.plots import dataset_figure

    if not paths:
        raise ValueError("Upload some images first.")
    if len(paths) > max_images:
        raise ValueError(
            f"At most {max_images} images at once here (got {len(paths)}); the "
            "command line has no limit: python -m audit_engine batch DIR ..."
        )
    per_image = ladder.first_look_evaluations(
        chosen.trials, chosen.steps, "ddim", budgets=len(epsilons)
    )
    check_feasible(
        chosen.prior,
        len(paths) * per_image,
        f"Auditing {len(paths)} images",
        fewer="with fewer images (the command line's batch audit has no limit)",
        limit=limits.time_limit,
    )
    limits.ready(chosen.prior)
    shutil.rmtree(run_dir, ignore_errors=True)  # one data set per session at a time
    folder = run_dir / "in"
    folder.mkdir(parents=True)
    for k, p in enumerate(paths):  # links, not copies: uploads stay where they are
        (folder / f"{k:03d}-{Path(p).name}").symlink_to(Path(p).resolve())
    cfg = BatchConfig(
        epsilons=list(epsilons),
        delta=chosen.delta,
        prior=chosen.prior,
        trials=chosen.trials,
        seed=chosen.seed,
        steps=chosen.steps,
        clip_norm=chosen.clip_norm,
    )
    r = run_batch(folder, run_dir / "out", cfg, progress=progress)
    rows = summarize_batch(run_dir / "out")
    return DatasetAnswer(
        _dataset_table(r, rows), dataset_figure(rows, chosen.delta), run_dir / "out" / "report.html"
    )


def _dataset_table(r: dict, rows: list[dict]) -> str:
    name = next((s["attribute_name"] for s in rows if s.get("attribute_name")), "attribute")
    lines = [
        f"**{r['audited']} images audited**, {r['errors']} unreadable"
        + (" (listed in the report's folder)" if r["errors"] else "")
        + ".",
        "",
        "| budget | images judged | recognisable / partly / undetermined / not "
        f"recognisable | recognisable or partly (95% interval) | {name} revealed (95% "
        "interval) | outside the prior's domain |",
        "|---|---|---|---|---|---|",
    ]
    for s in rows:
        exposed = (
            "n/a"
            if not s["judged"]
            else f"{s['exposed_fraction']:.0%} ({s['exposed_lo']:.0%} to {s['exposed_hi']:.0%})"
        )
        revealed = (
            "n/a (no claim)"
            if not s["attribute_claimed"]
            else f"{s['attribute_revealed']} of {s['attribute_claimed']} "
            f"({s['attribute_revealed_lo']:.0%} to {s['attribute_revealed_hi']:.0%})"
        )
        lines.append(
            f"| eps {s['eps']:.4g} (mu {s['mu']:.3g}) | {s['judged']} | "
            f"{s['recognisable']} / {s['partly_recognisable']} / {s['undetermined']} / "
            f"{s['not_recognisable']} | {exposed} | {revealed} | {s['out_of_domain']} |"
        )
    lines.append(f"\nBudgets as eps at delta = {rows[0]['delta']:g}." if rows else "")
    return "\n".join(lines) + _dataset_budgets(rows)


def _dataset_budgets(rows: list[dict]) -> str:
    """What each nominal budget means for these images: the median (10th to 90th
    percentile) over the judged images of their own budgets and of what each attacker is
    shown to use (batch summary's quantiles)."""
    if not any(s.get("own_eps_p50") is not None for s in rows):
        return ""

    def spread(s, name):
        mid, lo, hi = (s.get(f"{name}_p{q}") for q in (50, 10, 90))
        return "n/a" if mid is None else f"{mid:.3g} ({lo:.3g} to {hi:.3g})"

    lines = [
        "",
        "",
        "**What eps means for these images**: median (10th to 90th percentile) over the "
        "judged images, as eps; an attacker is shown to use at least what its column says "
        "(0: nothing shown), and no attacker can use more than an image's own budget.",
        "",
        "| nominal eps | the images' own | shown used: holds it among 10 | shown used: knows "
        "such images |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {s['eps']:.4g} | {spread(s, 'own_eps')} | {spread(s, 'gallery_demonstrated_eps')} | "
        f"{spread(s, 'prior_demonstrated_eps')} |"
        for s in rows
    ]
    return "\n".join(lines)
