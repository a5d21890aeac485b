"""The page's events. Each takes the components' values and returns their new values; the
engine does the work (audit_engine.session.ladder, audit_engine.session.views). Engine errors become
messages on the page in one place (``engine_errors``): inputs are checked by the engine, once.
"""
from __future__ import annotations

import functools
import inspect
import logging
import math
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

import gradio as gr

from audit_engine.attacker.attributes import attribute_name
from audit_engine.attacker.priors import (
    EMBEDDED,
    REGISTRY,
    PriorUnavailable,
    default_device,
    load_prior,
)
from audit_engine.audit import costs
from audit_engine.audit import reference as reference_mod
from audit_engine.audit.prepare import Preparer, measure_cost, prepare
from audit_engine.audit.reference import NotPrepared
from audit_engine.images import ImageError
from audit_engine.progress import Deadline as EngineDeadline
from audit_engine.session import ladder as db
from audit_engine.session import views

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
from .files import forget_session, png, remember_upload, sweep_sessions, touch_session
from .memory import trimmed
from .zerogpu import quota_note

LOG = logging.getLogger("audit.web")
N_VIEW = 9  # outputs of one budget's view (see _budget_outputs)
# prepares the offered priors in a background thread once the app launches (start_preparing)
PREPARER = Preparer(  # on ZeroGPU the preparation runs on a CPU copy (no GPU outside calls)
    list(REGISTRY), run=functools.partial(prepare, device="cpu" if ZERO_GPU else None),
    measure=None if ZERO_GPU else measure_cost)


def too_long() -> gr.Error:
    return gr.Error(f"The audit's first look ran past this server's limit of {TIME_LIMIT:g} s "
                    "per request and was stopped (this server was busier than the estimate "
                    "made before it started): use fewer steps or tries, DDIM instead of DDPM, "
                    "or a smaller prior.")


# what each event does, in words, for the sentence that reports a failure nobody foresaw
_ACTIONS = {"run": "running the audit", "move": "showing that budget",
            "exact": "computing that exact budget", "report": "writing the report",
            "compare": "comparing the pinned budgets", "find_budget": "searching for the "
            "largest safe budget", "dataset": "auditing the data set", "pin": "pinning the "
            "budget", "calculator": "computing the DP-SGD budget", "send": "moving the slider",
            "switch_mode": "switching the budget's unit", "choose_files": "reading the chosen "
            "files", "alt_texts": "describing the results", "readout_text": "reading the "
            "budget", "refresh_priors": "listing the priors", "default_trials_for": "choosing "
            "the tries", "announce_solve": "estimating the search", "announce_dataset":
            "estimating the data set's audit", "cleanup": "cleaning up the session"}
_FORESEEN = (ImageError, PriorUnavailable, ValueError, NotPrepared)


def failure_sentence(exc: BaseException, action: str) -> str:
    """The plain sentence a visitor reads for an exception (every kind, never Gradio's
    generic "Error"); unforeseen ones are logged with their traceback by the caller."""
    if isinstance(exc, TimeoutError):
        return too_long().message
    if isinstance(exc, _FORESEEN):
        return _as_sentence(str(exc) or f"{action} failed ({type(exc).__name__})")
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return (f"The server ran out of memory while {action}. Try again in a minute, or with "
                "fewer tries, fewer budgets or a smaller image or prior.")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (f"Something went wrong on the server while {action} ({type(exc).__name__}); it "
            f"was logged at {stamp}. Nothing you entered was lost: try again, or with other "
            "settings, and report it with that time if it happens again.")


def _as_sentence(text: str) -> str:
    """The engine's message as a sentence: a capital first, a full stop last."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def engine_errors(fn):
    """The adapter between the engine and the page: every exception becomes a sentence on
    the page (gr.Error). The engine's foreseen errors (bad input, an image it cannot read, a
    prior it cannot load or still being prepared; ValueError and its kind) carry the engine's
    message, a request past TIME_LIMIT the time-limit message, anything else a sentence that
    names the action, with its traceback in the log. gr.Error passes through. Works for
    handlers that return and for handlers that yield (Gradio streams a generator's values);
    the handler's signature is kept, so Gradio still passes request and progress."""
    action = _ACTIONS.get(fn.__name__, fn.__name__.replace("_", " "))

    def translate(exc: BaseException) -> gr.Error:
        if not isinstance(exc, (TimeoutError, *_FORESEEN)):
            LOG.exception("%s failed", fn.__name__)
        return gr.Error(failure_sentence(exc, action))

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise translate(exc) from None
        stream.sentences = True
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise translate(exc) from None
    call.sentences = True
    return call


def start_preparing(*, embedded_now: bool = True) -> None:
    """At launch: the embedded prior is prepared before the server answers (seconds: its
    reference set ships with it), every other offered prior in the background, outside the
    model group. A request then runs only on a prepared prior (``require_prepared``), so no
    request ever builds a reference set. On ZeroGPU every offered prior is first placed on
    the GPU, as ZeroGPU documents (at start-up, not inside a GPU call)."""
    if ZERO_GPU:
        for key in REGISTRY:
            try:
                load_prior(key, device="cuda")
            except (PriorUnavailable, RuntimeError, OSError):
                pass  # the selector says why; the others are still offered
    PREPARER.start(first=(EMBEDDED,) if embedded_now and EMBEDDED in REGISTRY else ())


def require_prepared(key: str) -> None:
    """At once: NotPrepared (with the preparation's progress) unless the prior is ready; a
    prior the preparer manages is ready only when its reference set is in memory."""
    PREPARER.require(key)
    if PREPARER.active and PREPARER.status(key).get("state") == "ready":
        if not reference_mod.is_prepared(load_prior(key)):
            raise NotPrepared("This prior's reference set is not in memory; the server "
                              "prepares it at launch (python -m audit_engine prepare).")


def prior_choices() -> list[tuple[str, str]]:
    """The prior selector's (label, key): the registry's state, and the preparation's."""
    out = []
    for key, title, state, _ in db.prior_table():
        prep = PREPARER.label(key)
        out.append((f"{title} [{prep or state}]", key))
    return out


@engine_errors
def prior_selector():
    """The prior selector with the registry's and the preparation's states (at page load)."""
    return gr.Dropdown(choices=prior_choices())


@engine_errors
def refresh_priors():
    """The selector's labels, and whether to look again (while a prior is being prepared)."""
    busy = any(PREPARER.status(k).get("state") in ("waiting", "preparing") for k in REGISTRY)
    return gr.Dropdown(choices=prior_choices()), gr.Timer(active=PREPARER.active and busy)


@engine_errors
def default_trials_for(prior) -> tuple[gr.Slider, gr.Radio]:
    """The tries slider follows the prior (8 up to 64 pixels, 4 above), and so does the
    search's protection level: the prior's attribute by name, or only recognisability."""
    spec = REGISTRY.get(prior)
    side = spec.resolution if spec and spec.resolution else 256
    return gr.Slider(value=8 if side <= 64 else 4), level_choices(prior)


def level_choices(prior, **kwargs) -> gr.Radio:
    """The levels the search can keep with this prior: "not recognisable", and "NAME not
    revealed" when the prior ships an attribute classifier (attacker/attributes.py)."""
    spec = REGISTRY.get(prior)
    name = attribute_name(spec.source if spec else None)
    choices = [("not recognisable", "not recognisable")]
    if name:
        choices.append((f"{name} not revealed", "no attribute"))
    return gr.Radio(choices=choices, value="not recognisable",
                    info=None if name else "This prior has no attribute classifier, so only "
                    "recognisability can be kept.", **kwargs)


def check_feasible(prior: str, evaluations: int, what: str, *, fewer: str) -> None:
    """Refuse at once, with the estimate, work whose first look cannot finish within
    TIME_LIMIT on this server: UNet evaluations x the seconds per evaluation measured in this
    process (audit/costs.py; a prior in memory is probed before it is refused, so a stale
    estimate never locks it out). Never loads the prior nor waits for it."""
    known = costs.seconds_for(prior, evaluations, TIME_LIMIT)
    if known is None or known[0] <= TIME_LIMIT:
        return
    seconds, per = known
    raise gr.Error(
        f"{what} needs about {evaluations:,} UNet evaluations of this prior before its first "
        f"verdict: about {seconds:,.0f} s on this server ({per * 1000:.0f} ms each, measured "
        f"here on {default_device()} just now), beyond its limit of {TIME_LIMIT:g} s per "
        f"request. It would fit {fewer}, on a GPU, or with a smaller prior.")


def settings(prior, delta, sampler, steps, trials, seed, clip=None) -> db.Settings:
    """The form's settings (the prior from this deployment's list; an empty clipping bound
    is the prior's default)."""
    if prior not in (None, "") and prior not in REGISTRY:
        raise ValueError(f"unknown prior {str(prior)[:80]!r}: choose one from the list")
    try:
        clip = None if clip in (None, "", 0) else float(clip)
    except (TypeError, ValueError):
        raise ValueError("the clipping bound must be a number > 0, or empty") from None
    return db.Settings.from_inputs(prior=prior or DEFAULT_PRIOR, delta=delta, sampler=sampler,
                                   steps=steps, trials=trials, seed=seed, clip_norm=clip)


def _mu(slider, mode, delta) -> tuple[float, float]:
    try:
        return db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"invalid budget: {exc}") from None


def Deadline(progress=None) -> EngineDeadline:
    """A progress callback that stops the work once the request has run past TIME_LIMIT and
    tells the engine the time left (the sequential rule adds tries only within it)."""
    return EngineDeadline(TIME_LIMIT, (lambda f, m: progress(f, desc=m)) if progress else None)


def _gpu_seconds(image, prior, mode, delta, slider, sampler, steps, trials, *rest, **kw) -> int:
    try:
        return db.gpu_seconds(prior, sampler, int(steps), int(trials))
    except (TypeError, ValueError, OverflowError):
        return 60


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


def _budget_outputs(session: db.LadderCache, mu: float, mode: str, *, plots: bool = True):
    """The view of one budget; ``plots=False`` leaves the original and the two plots as they
    are (a slider move: the images and numbers change at once, the plots' budget marker
    follows with the exact-budget answer)."""
    v = views.view_budget(session, mu)
    first = v.samples[0]
    status = "" if v.exact else " (nearest ladder point; the exact budget is being computed)"
    beyond = ("\n\nThe noise is beyond what the prior can model: each reconstruction is "
              "essentially a random image of this kind." if v.beyond_range else "")
    pending = (f"\n\n_The budget ladder is still being computed: {session.pending} of "
               f"{db.LADDER_SIZE} budgets to come; the plots fill in as they finish._"
               if session.pending else
               f"\n\n_A claim (recognisability or the attribute) is undetermined at "
               f"{session.settings.trials} tries at {session.adding} budget(s): the sequential "
               "rule is adding tries there before it says anything._"
               if session.adding else "")
    lad = session.ladder
    if v.stopped and v.verdict is not None and v.verdict.verdict == "undetermined":
        pending += f"\n\n_{v.stopped[0].upper()}{v.stopped[1:]}._"
    release = (f"\n\nRelease: clip_C(x) + (C / mu) xi with clipping bound C = {lad.clip_norm:.3g} "
               f"({lad.clip_source}), mu-GDP for adding or removing your image; the attackers "
               "know only public quantities.")
    verdict = (f"### {v.label.capitalize()}\n{v.verdict_markdown()}\n\n"
               f"{db.budget_label(v.mu, v.eps, session.settings.delta)}{status}; "
               f"{len(v.samples)} tries; reverse process from t* = {first.t_star}.{release}"
               f"{beyond}{pending}")
    original, sim, bnd = gr.skip(), gr.skip(), gr.skip()
    if plots:
        original = png(views.display(session.image))
        sim, bnd = views.figures(session, mode, mu)
    return (original, png(views.display(first.privatized)), png(views.tries_image(v.samples)),
            png(views.display(v.spread)), verdict, v.metrics_markdown(session.ladder.lpips_note), sim,
            bnd, views.verdicts_payload(session, v))


@engine_errors
def alt_texts(slider, mode, delta, session):
    """Text alternatives that carry the finding, for the result images (a private event after
    each view, so that the API's outputs stay plain files); and the results shown."""
    if session is None:
        return (gr.skip(),) * 6
    try:
        mu, _ = db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError):
        return (gr.skip(),) * 6
    v = views.view_budget(session, mu)
    at = f"eps {v.eps:.3g} (mu {v.mu:.3g})"
    k = len(v.samples)
    ladder = "; ".join(f"eps {w.eps:.3g}: {w.label}"
                       for w in (views.view_budget(session, m) for m in session.ladder.budgets()))
    return (gr.update(alt_text="the audited image, as the prior sees it"),
            gr.update(alt_text=f"what the attacker receives at {at}, try 1 of {k}"),
            gr.update(alt_text=f"{k} reconstructions at {at}, one per try; verdict: {v.label}"),
            gr.update(alt_text=f"spread of the {k} reconstructions at {at}: bright where the "
                               "tries disagree"),
            gr.update(alt_text=f"budget ladder, strongest protection first: {ladder}"),
            gr.update(visible=True))


@on_gpu(_gpu_seconds)
@engine_errors
def run(image, prior, mode, delta, slider, sampler, steps, trials, seed, session, clip=None,
        request: gr.Request = None, progress=gr.Progress()):
    """Compute the budget ladder (once per image, prior and settings) and show the budget."""
    if image is None:
        raise gr.Error("Upload an image or pick an example first.")
    remember_upload(image, request)
    sweep_sessions((REPORT_DIR, DATASET_DIR))  # files of sessions gone without a word
    chosen = settings(prior, delta, sampler, steps, trials, seed, clip)
    mu, _ = _mu(slider, mode, delta)
    if session is None or session.settings != chosen:
        check_feasible(chosen.prior, db.first_look_evaluations(chosen.trials, chosen.steps,
                                                               chosen.sampler),
                       "This audit", fewer=f"with fewer tries or steps (now {chosen.trials} "
                       f"tries, {chosen.steps if chosen.sampler == 'ddim' else 1000} steps)")
    require_prepared(chosen.prior)  # at once: a prior still being prepared is not waited for
    # a large prior shows the chosen budget first, then the ladder as it is computed
    for session in db.ladder_steps(image, chosen, current_mu=mu, previous=session,
                                   progress=Deadline(progress)):
        yield (*_budget_outputs(session, mu, mode), png(views.ladder_image(session)), session)


@engine_errors
def clear_answers():
    """What belongs to the image before: the search's answer and picture, the comparison.
    Cleared when a new image arrives and when an audit starts, so that nothing on the page
    speaks of an earlier image."""
    return "", gr.Image(value=None, visible=False), None, ""


@engine_errors
def move(slider, mode, delta, session):
    """Answer a slider move from the ladder at once."""
    if session is None:
        return (gr.skip(),) * N_VIEW + (readout_text(slider, mode, delta),)
    mu, _ = _mu(slider, mode, delta)
    return (*_budget_outputs(session, mu, mode, plots=False), readout_text(slider, mode, delta))


def _exact_seconds(slider, mode, delta, session, *rest, **kw) -> int:
    if session is None:
        return 20
    s = session.settings
    return max(20, db.gpu_seconds(s.prior, s.sampler, s.steps, s.trials) // (db.LADDER_SIZE + 1))


@on_gpu(_exact_seconds)
@engine_errors
def exact(slider, mode, delta, session):
    """Compute the exact budget when it lies between ladder points; returns the view and the
    new session that holds it (Gradio's state contract: returned, never changed in place)."""
    if session is None:
        return (gr.skip(),) * (N_VIEW + 1)
    mu, _ = _mu(slider, mode, delta)
    if not views.view_budget(session, mu).exact:
        session, _ = db.compute_exact(session, mu, progress=Deadline())
    return (*_budget_outputs(session, mu, mode), session)


@engine_errors
def readout_text(slider, mode, delta) -> str:
    try:
        mu, eps = db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError) as exc:
        return f"invalid budget: {exc}"
    return f"**{db.budget_label(mu, eps, float(delta))}**"


@engine_errors
def typed_budget(value, mode):
    """The slider's position for a budget typed in the box beside it (eps or mu itself)."""
    return db.budget_to_slider(value, mode)


@engine_errors
def box_value(slider, mode, delta):
    """The box beside the slider shows the slider's budget itself (eps or mu, 4 digits)."""
    try:
        mu, eps = db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError):
        return gr.skip()
    return float(f"{eps if mode == 'eps' else mu:.4g}")


@engine_errors
def switch_mode(mode, slider, delta):
    """Keep the same budget when switching between eps and mu."""
    old = "mu" if mode == "eps" else "eps"
    mu, _ = _mu(slider, old, delta)
    lo, hi = db.SLIDER_RANGE[mode]
    position = db.mu_to_slider(mu, mode, float(delta))
    return (gr.Slider(minimum=lo, maximum=hi, value=position, label=slider_label(mode)),
            gr.Number(value=box_value(position, mode, delta), label=box_label(mode)))


def box_label(mode: str) -> str:
    return "Type eps" if mode == "eps" else "Type mu"


@engine_errors
def calculator(z, q, steps, delta):
    return views.dpsgd_text(float(z), float(q), int(steps), float(delta))


@engine_errors
def send(mu, mode, delta):
    if not mu:
        raise gr.Error("Compute a DP-SGD budget first.")
    return db.mu_to_slider(float(mu), mode, float(delta))


@engine_errors
def report(slider, mode, delta, session, request: gr.Request):
    if session is None:
        raise gr.Error("Run an audit first.")
    mu, _ = _mu(slider, mode, delta)
    touch_session(request.session_hash if request else None)
    sweep_sessions((REPORT_DIR, DATASET_DIR))
    folder = REPORT_DIR / (request.session_hash if request and request.session_hash else uuid.uuid4().hex)
    shutil.rmtree(folder, ignore_errors=True)  # one report per session at a time
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "privacy-audit-report.html"
    path.write_text(views.report_html(session, mode, mu), encoding="utf-8")
    return str(path)


@engine_errors
def priors_table() -> str:
    rows = ["| prior | state | why |", "|---|---|---|"]
    rows += [f"| {title} (`{key}`) | {state} | {why} |" for key, title, state, why in db.prior_table()]
    return "\n".join(rows)


def _compare_seconds(pinned, delta, session, *rest, **kw) -> int:
    return min(600, _exact_seconds(None, None, None, session) * max(1, len(pinned or [])))


@on_gpu(_compare_seconds)
@engine_errors
def compare(pinned, delta, session):
    """The pinned budgets side by side, each with its verdict; returns the new session that
    holds them."""
    if session is None:
        raise gr.Error("Run an audit first.")
    if not pinned:
        raise gr.Error("Pick at least one budget to compare.")
    if len(pinned) > views.MAX_PINNED:
        raise gr.Error(f"Compare at most {views.MAX_PINNED} budgets at once.")
    mus = [views.pinned_mu(p, float(delta)) for p in pinned]
    image, table, session = views.compare_budgets(session, mus, progress=Deadline())
    return png(image), table, session


@engine_errors
def pin(pinned, slider, mode, delta):
    """Add the slider's budget to the pinned ones."""
    mu, eps = _mu(slider, mode, delta)
    choice = views.pin_label(mu, eps)
    pinned = [p for p in (pinned or []) if p != choice]
    if len(pinned) >= views.MAX_PINNED:
        raise gr.Error(f"At most {views.MAX_PINNED} budgets can be pinned; remove one first.")
    return gr.CheckboxGroup(choices=views.pin_choices(pinned + [choice]), value=pinned + [choice])


def _solve_seconds(level, mode, delta, session, *rest, **kw) -> int:
    """The search audits about 20 budgets (the ladder: 9), each with the sequential rule."""
    if session is None:
        return 20
    s = session.settings
    return min(600, db.gpu_seconds(s.prior, s.sampler, s.steps, s.trials) * 20 // 9)


@on_gpu(_solve_seconds)
@engine_errors
def find_budget(level, mode, delta, session, progress=gr.Progress()):
    """Search for the largest budget at which the image keeps ``level`` (solve.py) with the
    audit's settings; then the found budget and the first one above it side by side, the
    answer in one sentence, and the slider moved to the answer (its view follows)."""
    from audit_engine.audit.solve import NotSolvable, solve_budget

    if session is None:
        raise gr.Error("Run an audit first: the search uses its image and settings.")
    s = session.settings
    # the search audits about 20 budgets at the first look, and the sequential rule's tries
    check_feasible(s.prior, db.first_look_evaluations(s.trials, s.steps, "ddim", budgets=20),
                   "The search", fewer=f"with fewer tries or steps (now {s.trials} tries)")
    require_prepared(s.prior)
    try:
        found = solve_budget(session.image, prior=s.prior, level=level, delta=float(delta),
                             trials=s.trials, seed=s.seed, steps=s.steps, clip_norm=s.clip_norm,
                             progress=Deadline(progress))
    except NotSolvable as exc:
        return f"**No budget can be given.** {exc}", gr.skip(), gr.skip(), gr.skip()
    if found.mu_max is None:
        return (f"**{found.sentence()}**", gr.skip(), gr.skip(),
                replace(session, search=found.sentence()))
    # the search's own audits of the two budgets (with the tries it used) go into the session,
    # so the picture and table show what the sentence says, without auditing them again
    for m, result in found.results.items():
        session = session.with_exact(m, result)
    image, table, session = views.compare_budgets(session, list(found.results),
                                                  progress=Deadline())
    most = max(g["trials"] for g in found.grid)
    more = f" (up to {most} where the first were undetermined)" if most > found.trials else ""
    text = (f"**{found.sentence()}**\n\nSearched {found.evaluations} budgets, {found.trials} "
            f"tries each{more}, every one with the same rule; protection is shown at every "
            "budget searched below the answer. Top row: the answer; bottom row: the first "
            "budget searched above it.\n\n" + table)
    session = replace(session, search=found.sentence())
    alt = (f"reconstructions at eps {found.eps_max:.3g} (the answer) and at the first budget "
           "searched above it, with their verdicts")
    # the slider moves in steps of 0.01 (log10): to the step at or below the answer, so that
    # the budget on view is never above the one the sentence promises
    position = math.floor(db.mu_to_slider(found.mu_max, mode, float(delta)) * 100 + 1e-9) / 100
    return (text, gr.Image(value=png(image), visible=True, alt_text=alt), position, session)


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
    """Each image: the data set's budgets with the sequential rule, as one ladder scaled to
    their number."""
    try:
        one = db.gpu_seconds(prior or DEFAULT_PRIOR, "ddim", int(steps), int(trials))
    except (TypeError, ValueError, OverflowError):
        one = 60
    return min(600, 20 + len(files or []) * one * len(DATASET_EPS) // (db.LADDER_SIZE + 1))


def _warn_quota(seconds: float) -> None:
    """On ZeroGPU, say what kind of visitor's daily quota covers the work."""
    note = quota_note(seconds) if ZERO_GPU else ""
    if note:
        gr.Warning(note)


@engine_errors
def announce_solve(level, mode, delta, session) -> None:
    """Before the search asks ZeroGPU for its GPU time (a step of its own, outside the GPU
    call, which ZeroGPU refuses outright beyond the visitor's quota): say whose quota it needs."""
    _warn_quota(_solve_seconds(level, mode, delta, session))


@engine_errors
def announce_dataset(files, prior, delta, steps, trials, seed, clip=None) -> None:
    """The same before the Data set tab's audit."""
    _warn_quota(_dataset_seconds(files, prior, delta, steps, trials))


@on_gpu(_dataset_seconds)
@engine_errors
def dataset(files, prior, delta, steps, trials, seed, clip=None, request: gr.Request = None,
            progress=gr.Progress()):
    """Audit several uploaded images with the batch engine: the fraction recognisable at
    each budget, and the data set's report."""
    from audit_engine.batch.config import BatchConfig
    from audit_engine.batch.run import run_batch
    from audit_engine.batch.summary import summarize_batch
    from audit_engine.outputs.plots import dataset_figure

    if not files:
        raise gr.Error("Upload some images first.")
    if len(files) > MAX_DATASET:
        raise gr.Error(f"At most {MAX_DATASET} images at once here (got {len(files)}); the "
                       "command line has no limit: python -m audit_engine batch DIR ...")
    chosen = settings(prior, delta, "ddim", steps, trials, seed, clip)
    per_image = db.first_look_evaluations(chosen.trials, chosen.steps, "ddim",
                                          budgets=len(DATASET_EPS))
    check_feasible(chosen.prior, len(files) * per_image, f"Auditing {len(files)} images",
                   fewer="with fewer images (the command line's batch audit has no limit)")
    require_prepared(chosen.prior)
    paths = _file_paths(files)
    for p in paths:
        remember_upload(p, request)
    sweep_sessions((REPORT_DIR, DATASET_DIR))
    run_dir = DATASET_DIR / (request.session_hash if request and request.session_hash
                             else uuid.uuid4().hex)
    shutil.rmtree(run_dir, ignore_errors=True)  # one data set per session at a time
    folder = run_dir / "in"
    folder.mkdir(parents=True)
    for k, p in enumerate(paths):  # links, not copies: uploads stay in Gradio's cache only
        (folder / f"{k:03d}-{Path(p).name}").symlink_to(Path(p).resolve())
    cfg = BatchConfig(epsilons=list(DATASET_EPS), delta=chosen.delta, prior=chosen.prior,
                      trials=chosen.trials, seed=chosen.seed, steps=chosen.steps,
                      clip_norm=chosen.clip_norm)
    deadline = Deadline(progress)
    r = run_batch(folder, run_dir / "out", cfg,
                  progress=deadline)
    rows = summarize_batch(run_dir / "out")
    lines = [f"**{r['audited']} images audited**, {r['errors']} unreadable"
             + (" (listed in the report's folder)" if r["errors"] else "") + ".", "",
             "| budget | images judged | recognisable | partly | undetermined | not recognisable "
             "| exposed (95% interval) | attribute revealed (95% interval) | outside the prior's "
             "domain |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        exposed = ("n/a" if not s["judged"] else
                   f"{s['exposed_fraction']:.0%} ({s['exposed_lo']:.0%} to {s['exposed_hi']:.0%})")
        revealed = ("n/a (no attribute claim)" if not s["attribute_claimed"] else
                    f"{s['attribute_revealed']} of {s['attribute_claimed']} "
                    f"({s['attribute_revealed_lo']:.0%} to {s['attribute_revealed_hi']:.0%})")
        lines.append(f"| {db.budget_label(s['mu'], s['eps'], s['delta'])} | {s['judged']} | "
                     f"{s['recognisable']} | {s['partly_recognisable']} | {s['undetermined']} | "
                     f"{s['not_recognisable']} | {exposed} | {revealed} | {s['out_of_domain']} |")
    fig = gr.Plot(dataset_figure(rows, chosen.delta), visible=True)
    return "\n".join(lines), fig, gr.DownloadButton(value=str(run_dir / "out" / "report.html"),
                                                    visible=True)


@engine_errors
def cleanup(request: gr.Request):
    """At the end of a session: drop its report files, data-set runs and uploaded images."""
    if request and request.session_hash:
        forget_session(request.session_hash, (REPORT_DIR, DATASET_DIR))


