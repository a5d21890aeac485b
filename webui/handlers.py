"""The page's events: Gradio adapters over the engine's one door (audit_engine.session.actions),
which does the work and says everything the page says. Here: the components' values in and
out, every failure a sentence (webui/errors.py), spaces.GPU, the request's files and time
limit, and the priors' preparation at launch."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import gradio as gr

from audit_engine.progress import Deadline as EngineDeadline
from audit_engine.session import actions

from .components import slider_label
from .config import (
    DATASET_DIR,
    DATASET_EPS,
    DEFAULT_PRIOR,
    MAX_DATASET,
    REPORT_DIR,
    TIME_LIMIT,
    ZERO_GPU,
    spaces,
)
from .errors import engine_errors
from .files import forget_session, png, remember_upload, sweep_sessions, touch_session
from .memory import trimmed
from .priors import (  # noqa: F401  (the page's events on the priors' list)
    prior_choices,
    prior_selector,
    refresh_priors,
    require_prepared,
    start_preparing,
)
from .zerogpu import quota_note

N_VIEW = 11  # outputs of one budget's view (_view)
LIMITS = actions.Limits(TIME_LIMIT, require_prepared)


def Deadline(progress=None) -> EngineDeadline:
    """Gradio's progress as the engine's deadline: stops the work past TIME_LIMIT and tells
    the engine the time left (the sequential rule adds tries only within it)."""
    return EngineDeadline(TIME_LIMIT, (lambda f, m: progress(f, desc=m)) if progress else None)


def on_gpu(duration):
    """Run the handler under spaces.GPU (ZeroGPU) when the spaces package is present; the
    handler's signature is kept, so Gradio still passes the request and progress."""

    def wrap(fn):
        fn = trimmed(fn)  # the heap's free memory goes back to the system after each run
        fn.gpu_seconds = duration  # marks a handler that runs the model
        if spaces is None:
            return fn
        gpu_fn = spaces.GPU(duration=duration)(fn)
        # off ZeroGPU, spaces.GPU hands back fn itself: wrapping it again would make it its own
        # __wrapped__ (a cycle Gradio's signature inspection never leaves)
        return gpu_fn if gpu_fn is fn else functools.wraps(fn)(gpu_fn)

    return wrap


def _folder(root: Path, request) -> Path:
    """This session's folder under ``root`` (files of sessions gone are swept first)."""
    touch_session(request.session_hash if request else None)
    sweep_sessions((REPORT_DIR, DATASET_DIR))
    return root / (request.session_hash if request and request.session_hash else uuid.uuid4().hex)


def _view(p: actions.BudgetPanel) -> tuple:
    """A panel as the view's outputs (N_VIEW: the pictures, verdict, metrics, plots,
    verdicts, the budgets' plot and its numbers); what stays as it is, skipped."""
    keep = lambda x, f=lambda v: v: gr.skip() if x is None else f(x)
    return (
        keep(p.original, png),
        png(p.privatized),
        png(p.tries),
        png(p.spread),
        p.verdict,
        p.metrics,
        keep(p.similarity),
        keep(p.bounds),
        p.verdicts,
        keep(p.budgets),
        keep(p.budgets_table),
    )


def level_choices(prior, **kwargs) -> gr.Radio:
    choices, info = actions.level_choices(prior)
    return gr.Radio(choices=choices, value="not recognisable", info=info, **kwargs)


@engine_errors
def default_trials_for(prior) -> tuple[gr.Slider, gr.Radio]:
    """The tries and the search's levels follow the prior."""
    return gr.Slider(value=actions.tries_for(prior)), level_choices(prior)


def settings(prior, delta, sampler, steps, trials, seed, clip=None, tolerance=None):
    return actions.settings(
        prior, delta, sampler, steps, trials, seed, clip, tolerance, default_prior=DEFAULT_PRIOR
    )


@engine_errors
def alt_texts(slider, mode, delta, session):
    """The result pictures' text alternatives (a private event after each view, so that the
    API's outputs stay plain files); and the results shown."""
    alt = None if session is None else actions.alt_texts(session, slider, mode, delta)
    if alt is None:
        return (gr.skip(),) * 6
    return (
        *(
            gr.update(alt_text=t)
            for t in (alt.original, alt.privatized, alt.tries, alt.spread, alt.ladder)
        ),
        gr.update(visible=True),
    )


def _audit_seconds(image, prior, mode, delta, slider, sampler, steps, trials, *rest, **kw):
    return actions.audit_seconds(prior, sampler, steps, trials)


@on_gpu(_audit_seconds)
@engine_errors
def run(
    image,
    prior,
    mode,
    delta,
    slider,
    sampler,
    steps,
    trials,
    seed,
    session,
    clip=None,
    tolerance=None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The audit: the ladder (once per image, prior and settings) and the slider's budget."""
    if image is not None:
        remember_upload(image, request)
    sweep_sessions((REPORT_DIR, DATASET_DIR))  # files of sessions gone without a word
    chosen = settings(prior, delta, sampler, steps, trials, seed, clip, tolerance)
    for step in actions.audit(
        image, chosen, slider, mode, session, limits=LIMITS, progress=Deadline(progress)
    ):
        p = step.panel  # the budget in words and in the box: the one audited
        yield (*_view(p), p.readout, p.box, png(step.ladder), step.session)


@engine_errors
def keep_tolerance(points):
    """The tolerance field's value, kept as state for the audit, the search and the data set
    (so that the API's /audit keeps its parameters)."""
    return points


@engine_errors
def clear_answers():
    """What belongs to the image before (the search's answer and picture, the comparison),
    cleared when a new image arrives and when an audit starts."""
    return "", gr.Image(value=None, visible=False), None, ""


@engine_errors
def move(slider, mode, delta, session):
    """A slider move, answered from the session at once: the view, readout and box."""
    m = actions.move(session, slider, mode, delta)
    view = (gr.skip(),) * N_VIEW if m.panel is None else _view(m.panel)
    return (*view, m.readout, gr.skip() if m.box is None else m.box)


def _exact_seconds(slider, mode, delta, session, *rest, **kw) -> int:
    return actions.exact_seconds(session)


@on_gpu(_exact_seconds)
@engine_errors
def exact(slider, mode, delta, session):
    """The exact budget on view; its view and the new session that holds it."""
    if session is None:
        return (gr.skip(),) * (N_VIEW + 1)
    p, session = actions.exact(session, slider, mode, delta, progress=Deadline())
    return (*_view(p), session)


@engine_errors
def readout_text(slider, mode, delta, session=None) -> str:
    return actions.readout(slider, mode, delta, session)


@engine_errors
def typed_budget(value, mode):
    """The slider's position for a budget typed in the box beside it (eps or mu itself)."""
    return actions.typed_budget(value, mode)


@engine_errors
def box_value(slider, mode, delta):
    value = actions.box_value(slider, mode, delta)
    return gr.skip() if value is None else value


def box_label(mode: str) -> str:
    return "Type eps" if mode == "eps" else "Type mu"


@engine_errors
def switch_mode(mode, slider, delta):
    """Keep the same budget when switching between eps and mu."""
    position, box = actions.switch_mode(mode, slider, delta)
    lo, hi = actions.SLIDER_RANGE[mode]
    return (
        gr.Slider(minimum=lo, maximum=hi, value=position, label=slider_label(mode)),
        gr.Number(value=box, label=box_label(mode)),
    )


@engine_errors
def calculator(z, q, steps, delta):
    return actions.dpsgd(z, q, steps, delta)


@engine_errors
def send(mu, mode, delta):
    if not mu:
        raise gr.Error("Compute a DP-SGD budget first.")
    return actions.slider_for(float(mu), mode, delta)


@engine_errors
def report(slider, mode, delta, session, request: gr.Request):
    if session is None:
        raise gr.Error("Run an audit first.")
    return str(actions.write_report(session, slider, mode, delta, _folder(REPORT_DIR, request)))


@engine_errors
def priors_table() -> str:
    return actions.priors_table()


def _compare_seconds(pinned, delta, session, *rest, **kw) -> int:
    return actions.compare_seconds(session, len(pinned or []))


@on_gpu(_compare_seconds)
@engine_errors
def compare(pinned, delta, session):
    """The pinned budgets side by side; the new session holds them."""
    if session is None:
        raise gr.Error("Run an audit first.")
    c = actions.compare(session, pinned, delta, progress=Deadline())
    return png(c.image), c.table, c.session


@engine_errors
def pin(pinned, slider, mode, delta):
    chosen = actions.pin(pinned, slider, mode, delta)
    return gr.CheckboxGroup(choices=actions.pin_choices(chosen), value=chosen)


def _solve_seconds(level, mode, delta, session, *rest, **kw) -> int:
    return actions.search_seconds(session)


@on_gpu(_solve_seconds)
@engine_errors
def find_budget(level, mode, delta, session, tolerance=None, progress=gr.Progress()):
    """The largest safe budget: the answer, the picture, the slider at it, the session."""
    if session is None:
        raise gr.Error("Run an audit first: the search uses its image and settings.")
    a = actions.search(
        session,
        level,
        mode,
        delta,
        limits=LIMITS,
        tolerance=tolerance,
        progress=Deadline(progress),
    )
    image = (
        gr.skip() if a.image is None else gr.Image(value=png(a.image), visible=True, alt_text=a.alt)
    )
    return (
        a.text,
        image,
        gr.skip() if a.slider is None else a.slider,
        gr.skip() if a.session is None else a.session,
    )


def _file_paths(files) -> list[str]:
    """Paths of Gradio's uploaded files (strings, or objects with a ``name``)."""
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]


@engine_errors
def choose_files(files, request: gr.Request = None):
    """Keep the chosen files for the data-set audit and list them."""
    paths = _file_paths(files)
    for p in paths:
        remember_upload(p, request)
    names = ", ".join(Path(p).name for p in paths[:10]) + (" ..." if len(paths) > 10 else "")
    return paths, f"{len(paths)} images chosen: {names}" if paths else "No images chosen yet."


def _dataset_seconds(files, prior=None, delta=None, steps=10, trials=8, *rest, **kw) -> int:
    return actions.dataset_seconds(
        len(files or []), prior or DEFAULT_PRIOR, steps, trials, len(DATASET_EPS)
    )


def _warn_quota(seconds: float) -> None:
    """On ZeroGPU, say what kind of visitor's daily quota covers the work."""
    note = quota_note(seconds) if ZERO_GPU else ""
    if note:
        gr.Warning(note)


@engine_errors
def announce_solve(level, mode, delta, session, tolerance=None) -> None:
    """Before the search asks ZeroGPU for its GPU time (outside the GPU call, which ZeroGPU
    refuses outright beyond the visitor's quota): say whose quota it needs."""
    _warn_quota(_solve_seconds(level, mode, delta, session))


@engine_errors
def announce_dataset(files, prior, delta, steps, trials, seed, clip=None, tolerance=None) -> None:
    _warn_quota(_dataset_seconds(files, prior, delta, steps, trials))


@on_gpu(_dataset_seconds)
@engine_errors
def dataset(
    files,
    prior,
    delta,
    steps,
    trials,
    seed,
    clip=None,
    tolerance=None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The Data set tab: several uploaded images through the batch engine."""
    paths = _file_paths(files)
    for p in paths:
        remember_upload(p, request)
    chosen = settings(prior, delta, "ddim", steps, trials, seed, clip, tolerance)
    d = actions.dataset(
        paths,
        chosen,
        _folder(DATASET_DIR, request),
        epsilons=DATASET_EPS,
        max_images=MAX_DATASET,
        limits=LIMITS,
        progress=Deadline(progress),
    )
    return (
        d.text,
        gr.Plot(d.figure, visible=True),
        gr.DownloadButton(value=str(d.report), visible=True),
    )


@engine_errors
def cleanup(request: gr.Request):
    """At the end of a session: drop its report files, data-set runs and uploaded images."""
    if request and request.session_hash:
        forget_session(request.session_hash, (REPORT_DIR, DATASET_DIR))
