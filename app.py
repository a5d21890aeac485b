"""Visual privacy audit: the Gradio dashboard. Layout and wiring only; the work is in
audit_engine (see audit_engine/dashboard.py)."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a privacy tool does not phone home

import functools
import hashlib
import io
import math
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
from PIL import Image as PILImage

try:  # Hugging Face ZeroGPU: GPU work runs inside functions decorated with spaces.GPU
    import spaces
except ImportError:
    spaces = None

from audit_engine import dashboard as db
from audit_engine.audit import MAX_STEPS, MAX_TRIALS
from audit_engine.images import ImageError
from audit_engine.priors import (EMBEDDED, REGISTRY, PriorUnavailable, configure_registry,
                                 load_prior)
from audit_engine.reconstruct import DEFAULT_DDIM_STEPS, SAMPLERS
from audit_engine.report import CAVEATS

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "assets" / "examples").glob("*.png"))
MAX_UPLOAD = os.environ.get("AUDIT_MAX_UPLOAD", "10mb")
QUEUE_SIZE = int(os.environ.get("AUDIT_QUEUE_SIZE", "32"))
TIME_LIMIT = float(os.environ.get("AUDIT_TIME_LIMIT", "300"))  # seconds per request
MODEL_CONCURRENCY = 1  # model runs at a time, over all users and events (one group, "model")
ZERO_GPU = spaces is not None and bool(os.environ.get("SPACES_ZERO_GPU"))
configure_registry()  # AUDIT_PRIORS: the priors this deployment offers (embedded always)
DEFAULT_PRIOR = os.environ.get("AUDIT_DEFAULT_PRIOR", EMBEDDED)
if DEFAULT_PRIOR not in REGISTRY:
    raise SystemExit(f"AUDIT_DEFAULT_PRIOR={DEFAULT_PRIOR!r} is not among the offered priors "
                     f"({', '.join(REGISTRY)})")
N_VIEW = 9  # outputs of one budget's view (see _budget_outputs)
TEMP_DIR = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio"))
REPORT_DIR = TEMP_DIR / "reports"
IMAGE_DIR = TEMP_DIR / "audit-images"  # result images, named by content (see _png)
DATASET_DIR = TEMP_DIR / "datasets"  # per session: links to its uploads, and the batch outputs
MAX_DATASET = int(os.environ.get("AUDIT_MAX_DATASET", "50"))  # images per data-set audit
DATASET_EPS = (1.0, 3.0, 8.0, 100.0, 1000.0)  # the budgets of a data-set audit

DATASET_INTRO = """**Audit a data set.** Upload several images of one kind: each is audited
at eps 1, 3, 8, 100 and 1000 (delta as set on the first tab) with the prior, tries and seed of
the first tab, and you get the fraction an attacker with this prior recognises at each budget,
with its uncertainty over the images. Images outside the prior's domain are counted apart
and not judged. For more images use the command line (`python -m audit_engine batch`)."""

INTRO = """# Visual privacy audit
Upload an image (or pick an example), choose a privacy budget and press **Run audit**.
You see what an attacker who knows what such images look like could recover from a model
trained with differential privacy (DP-SGD) at that budget."""

WHAT = """**What am I looking at?** *Original*: your image, as the model sees it. *Privatized*:
what an attacker gets back from one DP-SGD training step on this image (the gradient,
clipped and noised as DP-SGD does, turned back into a picture). *Reconstruction*: what a
diffusion model that knows this kind of image (the attacker's "prior") makes of the
privatized picture. If the reconstruction looks like your image, the budget does not
protect it against this attacker. Smaller budgets (left on the slider) add more noise.

**Verdicts** are rates over repeated tries, never one picture: at each budget the attack
runs several times (fresh noise each time). In each try the attacker picks, among 10
images of this kind (yours and 9 others), the one its reconstruction resembles most
(correlation of pixels). *Recognisable*: it picks yours in more than half the tries and
clearly more often than guessing would (the lower end of the 95% interval above chance);
*partly recognisable*: clearly more often than guessing, but not in most tries; *not
recognisable*: not distinguishable from guessing. Chance is 1 in 10, or what the prior's
own samples achieve on your image if that is more. The digit class is *revealed* only when
the reconstructions show it clearly more often than the prior draws that class on its own.
The *spread* map shows where the tries disagree: where the attacker is guessing.
Before any verdict the prior scores how typical your image is of what it knows; outside
its domain no verdict is made (see `audit_engine/verdict.py`, docs/DOMAIN.md)."""


class UploadedImage(gr.Image):
    """An image input that Gradio does not decode: the handler gets the uploaded file's path and
    the engine decodes it (audit_engine.images.open_image), with its pixel limit and its
    messages, so every odd file meets one decoder."""

    @classmethod
    def get_block_name(cls) -> str:
        return "image"  # the browser renders it as Gradio's image component

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path is None:
            raise gr.Error("The image did not arrive as a file; upload it again.")
        return str(payload.path)


class _FiniteInput:
    """Numbers from a request are checked before Gradio's own handling: a string, null, NaN or
    infinity (which JSON clients send as text) gets a message that names the field."""

    def preprocess(self, payload):
        what = self.label or "a number"
        if payload is None:
            raise gr.Error(f"{what}: a value is missing")
        if isinstance(payload, bool):
            raise gr.Error(f"{what} must be a number, got {payload!r}")
        try:
            value = float(payload)
        except (TypeError, ValueError, OverflowError):
            raise gr.Error(f"{what} must be a number, got {str(payload)[:40]!r}") from None
        if not math.isfinite(value):
            raise gr.Error(f"{what} must be a finite number, got {str(payload)[:40]!r}")
        return super().preprocess(value)


class Slider(_FiniteInput, gr.Slider):
    pass


class Number(_FiniteInput, gr.Number):
    pass


# Uploads each session used, removed when it ends. Gradio stores an upload under a folder
# named by its content's hash, so two sessions uploading the same picture share one path;
# a file is removed only if no other live session used it and nobody uploaded it again
# since (a new upload re-creates the file: a newer modification time).
_UPLOADS: dict[str, dict[str, int]] = {}  # session -> {path: mtime_ns when it was used}
_UPLOADS_LOCK = threading.Lock()
_EXAMPLE_BYTES = {Path(p).name: (ROOT / p).read_bytes() for p in EXAMPLES}


def _remember_upload(path: str, request: gr.Request | None) -> None:
    """Note an uploaded file for removal at the end of the session (examples are kept)."""
    if not isinstance(path, (str, Path)) or request is None or not request.session_hash:
        return
    p = Path(path)
    try:
        if _EXAMPLE_BYTES.get(p.name) is not None and p.read_bytes() == _EXAMPLE_BYTES[p.name]:
            return
        mtime = p.stat().st_mtime_ns
    except OSError:
        return
    with _UPLOADS_LOCK:
        _UPLOADS.setdefault(request.session_hash, {})[str(p)] = mtime


def _forget_uploads(session_hash: str) -> None:
    with _UPLOADS_LOCK:
        mine = _UPLOADS.pop(session_hash, {})
        others = {path for used in _UPLOADS.values() for path in used}
        for path, mtime in mine.items():
            p = Path(path)
            try:
                if path not in others and p.stat().st_mtime_ns == mtime:
                    p.unlink()
            except OSError:
                pass


def _settings(prior, delta, sampler, steps, trials, seed) -> db.Settings:
    if prior not in (None, "") and prior not in REGISTRY:
        raise gr.Error(f"unknown prior {str(prior)[:80]!r}: choose one from the list")
    if sampler not in SAMPLERS:
        raise gr.Error(f"sampler must be one of {', '.join(SAMPLERS)}")
    try:
        delta = float(delta)
        if any(float(v) != int(v) for v in (steps, trials, seed)):
            raise ValueError
        steps, trials, seed = int(steps), int(trials), int(seed)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error("delta must be a number; steps, trials and seed whole numbers") from None
    if not 0 <= seed < 2**31:
        raise gr.Error(f"seed must be between 0 and {2**31 - 1} (got {seed})")
    if not 0 < delta < 1:
        raise gr.Error(f"delta must lie strictly between 0 and 1 (got {delta:g}); 1e-5 is usual")
    if not 1 <= steps <= MAX_STEPS:
        raise gr.Error(f"steps must be between 1 and {MAX_STEPS} (got {steps})")
    if not 1 <= trials <= MAX_TRIALS:
        raise gr.Error(f"trials must be between 1 and {MAX_TRIALS} (got {trials})")
    return db.Settings(prior=prior or DEFAULT_PRIOR, sampler=sampler, steps=steps, trials=trials,
                       seed=seed, delta=delta)


def _mu(slider, mode, delta) -> tuple[float, float]:
    try:
        return db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError, OverflowError) as exc:
        raise gr.Error(str(exc)) from None


# Gradio's default theme with WCAG 2.1 AA contrast: subdued text (slider ends, "- or -") at
# neutral-600 on white (7.6:1, was 1.9:1), white on a darker orange button and orange-700
# accents (5.2:1, was 3.6:1)
THEME = gr.themes.Default(primary_hue="orange").set(
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    color_accent="*primary_700",  # the selected tab's text (orange-500 on white: 2.8:1)
)
# a focus ring on everything the keyboard reaches (Gradio's example buttons have none)
CSS = """:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }"""
# the upload area's visible text equals its accessible name (Gradio labels it so)
UPLOAD_TEXT = "Drop an image file here to upload"


def _example_label(path: str) -> str:
    """A name a screen reader can say: "digit 7 (held-out #3517)", "photo: cat (not a digit)"."""
    stem = Path(path).stem
    if stem.startswith("digit-"):
        _, cls, idx = stem.split("-")
        return f"digit {cls} (held-out #{idx})"
    what = stem.removeprefix("ood-")
    kind = "printed text" if what == "text" else f"photo: {what}"
    return f"{kind} (not a digit)"


def _png(image) -> str:
    """The image as a PNG file named by its content, written once and atomically.

    Handed pixels, Gradio writes them to its cache on every answer, truncating the file in
    place: when two answers hold the same picture (a slider dragged across one ladder point,
    two users at one budget) a browser could download the file half-written. A finished
    file, named by its content, is never rewritten, and Gradio copies it atomically."""
    pil = image if isinstance(image, PILImage.Image) else PILImage.fromarray(image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    data = buf.getvalue()
    path = IMAGE_DIR / f"{hashlib.sha256(data).hexdigest()[:40]}.png"
    try:
        os.utime(path)  # in use again: the sweep keeps it
    except FileNotFoundError:
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.stem}.{uuid.uuid4().hex}")
        staging.write_bytes(data)
        os.replace(staging, path)
        _sweep_images()
    return str(path)


_SWEPT = [0.0]


def _sweep_images(max_age: float = 1800.0, every: float = 300.0) -> None:
    """Remove this app's image files unused for ``max_age`` seconds (Gradio has copied them
    into its own cache, which delete_cache ages), at most once every ``every`` seconds."""
    now = time.time()
    if now - _SWEPT[0] < every:
        return
    _SWEPT[0] = now
    for p in IMAGE_DIR.glob("*.png"):
        try:
            if now - p.stat().st_mtime > max_age:
                p.unlink()
        except OSError:
            pass


def _budget_outputs(session: db.Session, mu: float, mode: str, *, plots: bool = True):
    """The view of one budget; ``plots=False`` leaves the original and the two plots as they
    are (a slider move: the images and numbers change at once, the plots' budget marker
    follows with the exact-budget answer)."""
    v = db.view_budget(session, mu)
    first = v.samples[0]
    status = "" if v.exact else " (nearest ladder point; the exact budget is being computed)"
    beyond = ("\n\nThe noise is beyond what the prior can model: each reconstruction is "
              "essentially a random image of this kind." if v.beyond_range else "")
    pending = (f"\n\n_The budget ladder is still being computed: {session.pending} of "
               f"{db.LADDER_SIZE} budgets to come; the plots fill in as they finish._"
               if session.pending else "")
    verdict = (f"### {v.label.capitalize()}\n{v.verdict_markdown()}\n\n"
               f"{db.budget_label(v.mu, v.eps, session.settings.delta)}{status}; "
               f"{len(v.samples)} tries; reverse process from t* = {first.t_star}.{beyond}{pending}")
    original, sim, bnd = gr.skip(), gr.skip(), gr.skip()
    if plots:
        original = _png(db.display(session.image))
        sim, bnd = db.figures(session, mode, mu)
    return (original, _png(db.display(first.privatized)), _png(db.tries_image(v.samples)),
            _png(db.display(v.spread)), verdict, v.metrics_markdown(session.ladder.lpips), sim,
            bnd, db.verdicts_payload(session, v))


def alt_texts(slider, mode, delta, session):
    """Text alternatives that carry the finding, for the result images (a private event after
    each view, so that the API's outputs stay plain files); and the results shown."""
    if session is None:
        return (gr.skip(),) * 6
    try:
        mu, _ = db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError):
        return (gr.skip(),) * 6
    v = db.view_budget(session, mu)
    at = f"eps {v.eps:.3g} (mu {v.mu:.3g})"
    k = len(v.samples)
    ladder = "; ".join(f"eps {w.eps:.3g}: {w.label}"
                       for w in (db.view_budget(session, m) for m in session.ladder.budgets()))
    return (gr.update(alt_text="the audited image, as the prior sees it"),
            gr.update(alt_text=f"what the attacker receives at {at}, try 1 of {k}"),
            gr.update(alt_text=f"{k} reconstructions at {at}, one per try; verdict: {v.label}"),
            gr.update(alt_text=f"spread of the {k} reconstructions at {at}: bright where the "
                               "tries disagree"),
            gr.update(alt_text=f"budget ladder, strongest protection first: {ladder}"),
            gr.update(visible=True))


class _Deadline:
    """A progress callback that stops the work once the request has run past TIME_LIMIT."""

    def __init__(self, progress=None):
        self.start, self.progress = time.monotonic(), progress

    def __call__(self, frac: float, msg: str) -> None:
        if time.monotonic() - self.start > TIME_LIMIT:
            raise TimeoutError
        if self.progress is not None:
            self.progress(frac, desc=msg)


def _too_long() -> gr.Error:
    return gr.Error(f"The audit ran past this server's limit of {TIME_LIMIT:g} s per request and "
                    "was stopped: use fewer steps or tries, DDIM instead of DDPM, or a smaller prior.")


def _gpu_seconds(image, prior, mode, delta, slider, sampler, steps, trials, *rest, **kw) -> int:
    try:
        return db.gpu_seconds(prior, sampler, int(steps), int(trials))
    except (TypeError, ValueError, OverflowError):
        return 60


def _on_gpu(duration):
    """Run the handler under spaces.GPU (ZeroGPU) when the spaces package is present; the
    handler's signature is kept, so Gradio still passes the request and progress."""
    def wrap(fn):
        fn.gpu_seconds = duration  # marks a handler that runs the model
        if spaces is None:
            return fn
        gpu_fn = spaces.GPU(duration=duration)(fn)
        # off ZeroGPU, spaces.GPU hands back fn itself: wrapping it again would make it its own
        # __wrapped__ (a cycle Gradio's signature inspection never leaves)
        return gpu_fn if gpu_fn is fn else functools.wraps(fn)(gpu_fn)
    return wrap


@_on_gpu(_gpu_seconds)
def run(image, prior, mode, delta, slider, sampler, steps, trials, seed, session,
        request: gr.Request = None, progress=gr.Progress()):
    """Compute the budget ladder (once per image, prior and settings) and show the budget."""
    if image is None:
        raise gr.Error("Upload an image or pick an example first.")
    _remember_upload(image, request)
    settings = _settings(prior, delta, sampler, steps, trials, seed)
    mu, _ = _mu(slider, mode, delta)
    try:  # a large prior shows the chosen budget first, then the ladder as it is computed
        for session in db.ladder_steps(image, settings, current_mu=mu, previous=session,
                                       progress=_Deadline(progress)):
            yield (*_budget_outputs(session, mu, mode), _png(db.ladder_image(session)), session)
    except TimeoutError:
        raise _too_long() from None
    except (ImageError, PriorUnavailable, ValueError) as exc:
        raise gr.Error(str(exc)) from None


def move(slider, mode, delta, session):
    """Answer a slider move from the ladder at once."""
    if session is None:
        return (gr.skip(),) * N_VIEW + (_readout(slider, mode, delta),)
    mu, _ = _mu(slider, mode, delta)
    return (*_budget_outputs(session, mu, mode, plots=False), _readout(slider, mode, delta))


def _exact_seconds(slider, mode, delta, session, *rest, **kw) -> int:
    if session is None:
        return 20
    s = session.settings
    return max(20, db.gpu_seconds(s.prior, s.sampler, s.steps, s.trials) // (db.LADDER_SIZE + 1))


@_on_gpu(_exact_seconds)
def exact(slider, mode, delta, session):
    """Compute the exact budget when it lies between ladder points; returns the view and the
    new session that holds it (Gradio's state contract: returned, never changed in place)."""
    if session is None:
        return (gr.skip(),) * (N_VIEW + 1)
    mu, _ = _mu(slider, mode, delta)
    if not db.view_budget(session, mu).exact:
        try:
            session, _ = db.compute_exact(session, mu, progress=_Deadline())
        except TimeoutError:
            raise _too_long() from None
    return (*_budget_outputs(session, mu, mode), session)


def _readout(slider, mode, delta) -> str:
    try:
        mu, eps = db.slider_to_mu(slider, mode, float(delta))
    except (TypeError, ValueError) as exc:
        return f"invalid budget: {exc}"
    return f"**{db.budget_label(mu, eps, float(delta))}**"


def switch_mode(mode, slider, delta):
    """Keep the same budget when switching between eps and mu."""
    old = "mu" if mode == "eps" else "eps"
    mu, _ = _mu(slider, old, delta)
    lo, hi = db.SLIDER_RANGE[mode]
    return gr.Slider(minimum=lo, maximum=hi, value=db.mu_to_slider(mu, mode, float(delta)),
                     label=_slider_label(mode))


def _slider_label(mode: str) -> str:
    unit = "eps (log10)" if mode == "eps" else "mu (log10)"
    return f"Privacy budget, {unit}:  ◀ more privacy  ·  less privacy ▶"


def calculator(z, q, steps, delta):
    try:
        text, mu = db.dpsgd_text(float(z), float(q), int(steps), float(delta))
    except (TypeError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    return text, mu


def send(mu, mode, delta):
    if not mu:
        raise gr.Error("Compute a DP-SGD budget first.")
    return db.mu_to_slider(float(mu), mode, float(delta))


def report(slider, mode, delta, session, request: gr.Request):
    if session is None:
        raise gr.Error("Run an audit first.")
    mu, _ = _mu(slider, mode, delta)
    folder = REPORT_DIR / (request.session_hash if request and request.session_hash else uuid.uuid4().hex)
    shutil.rmtree(folder, ignore_errors=True)  # one report per session at a time
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "privacy-audit-report.html"
    path.write_text(db.report_html(session, mode, mu), encoding="utf-8")
    return str(path)


def priors_table() -> str:
    rows = ["| prior | state | why |", "|---|---|---|"]
    rows += [f"| {title} (`{key}`) | {state} | {why} |" for key, title, state, why in db.prior_table()]
    return "\n".join(rows)


# A DownloadButton downloads the file it already holds: the visible button makes the report,
# then this clicks the hidden DownloadButton that now holds it.
_CLICK_REPORT = """() => { const el = document.querySelector('#report-file');
  if (el) { (el.tagName === 'BUTTON' ? el : (el.querySelector('button') || el)).click(); } }"""


def _compare_seconds(pinned, delta, session, *rest, **kw) -> int:
    return min(600, _exact_seconds(None, None, None, session) * max(1, len(pinned or [])))


@_on_gpu(_compare_seconds)
def compare(pinned, delta, session):
    """The pinned budgets side by side, each with its verdict; returns the new session that
    holds them."""
    if session is None:
        raise gr.Error("Run an audit first.")
    if not pinned:
        raise gr.Error("Pick at least one budget to compare.")
    if len(pinned) > db.MAX_PINNED:
        raise gr.Error(f"Compare at most {db.MAX_PINNED} budgets at once.")
    try:
        mus = [db.pinned_mu(p, float(delta)) for p in pinned]
        image, table, session = db.compare_budgets(session, mus, progress=_Deadline())
    except TimeoutError:
        raise _too_long() from None
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    return _png(image), table, session


def pin(pinned, slider, mode, delta):
    """Add the slider's budget to the pinned ones."""
    mu, eps = _mu(slider, mode, delta)
    choice = db.pin_label(mu, eps)
    pinned = [p for p in (pinned or []) if p != choice]
    if len(pinned) >= db.MAX_PINNED:
        raise gr.Error(f"At most {db.MAX_PINNED} budgets can be pinned; remove one first.")
    return gr.CheckboxGroup(choices=db.pin_choices(pinned + [choice]), value=pinned + [choice])


def _file_paths(files) -> list[str]:
    """Paths of Gradio's uploaded files (strings, or objects with a ``name``)."""
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]


def choose_files(files, request: gr.Request = None):
    """Keep the chosen files for the data-set audit and list them."""
    paths = _file_paths(files)
    for p in paths:
        _remember_upload(p, request)
    names = ", ".join(Path(p).name for p in paths[:10]) + (" ..." if len(paths) > 10 else "")
    return paths, f"{len(paths)} images chosen: {names}" if paths else "No images chosen yet."


def _dataset_seconds(files, *rest, **kw) -> int:
    return min(600, 20 + 10 * len(files or []))


@_on_gpu(_dataset_seconds)
def dataset(files, prior, delta, steps, trials, seed, request: gr.Request = None,
            progress=gr.Progress()):
    """Audit several uploaded images with the batch engine: the fraction recognisable at
    each budget, and the data set's report."""
    from audit_engine.batch import BatchConfig, run_batch, summarize_batch
    from audit_engine.plots import dataset_figure

    if not files:
        raise gr.Error("Upload some images first.")
    if len(files) > MAX_DATASET:
        raise gr.Error(f"At most {MAX_DATASET} images at once here (got {len(files)}); the "
                       "command line has no limit: python -m audit_engine batch DIR ...")
    settings = _settings(prior, delta, "ddim", steps, trials, seed)
    paths = _file_paths(files)
    for p in paths:
        _remember_upload(p, request)
    run_dir = DATASET_DIR / (request.session_hash if request and request.session_hash
                             else uuid.uuid4().hex)
    shutil.rmtree(run_dir, ignore_errors=True)  # one data set per session at a time
    folder = run_dir / "in"
    folder.mkdir(parents=True)
    for k, p in enumerate(paths):  # links, not copies: uploads stay in Gradio's cache only
        (folder / f"{k:03d}-{Path(p).name}").symlink_to(Path(p).resolve())
    cfg = BatchConfig(epsilons=list(DATASET_EPS), delta=settings.delta, prior=settings.prior,
                      trials=settings.trials, seed=settings.seed, steps=settings.steps)
    deadline = _Deadline(progress)
    try:
        r = run_batch(folder, run_dir / "out", cfg,
                      progress=lambda d, n, m: deadline(d / max(n, 1), f"image {d} of {n}: {m}"))
    except TimeoutError:
        raise _too_long() from None
    except (PriorUnavailable, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    rows = summarize_batch(run_dir / "out")
    lines = [f"**{r['audited']} images audited**, {r['errors']} unreadable"
             + (" (listed in the report's folder)" if r["errors"] else "") + ".", "",
             "| budget | images judged | recognisable | outside the prior's domain |",
             "|---|---|---|---|"]
    for s in rows:
        rec = ("n/a" if not s["judged"] else
               f"{s['recognisable']} of {s['judged']} ({s['recognisable_fraction']:.0%}; 95% "
               f"interval {s['recognisable_lo']:.0%} to {s['recognisable_hi']:.0%})")
        lines.append(f"| {db.budget_label(s['mu'], s['eps'], s['delta'])} | {s['judged']} | "
                     f"{rec} | {s['out_of_domain']} |")
    fig = gr.Plot(dataset_figure(rows, settings.delta), visible=True)
    return "\n".join(lines), fig, gr.DownloadButton(value=str(run_dir / "out" / "report.html"),
                                                    visible=True)


def cleanup(request: gr.Request):
    """At the end of a session: drop its report files, data-set runs and uploaded images."""
    if request and request.session_hash:
        shutil.rmtree(REPORT_DIR / request.session_hash, ignore_errors=True)
        shutil.rmtree(DATASET_DIR / request.session_hash, ignore_errors=True)
        _forget_uploads(request.session_hash)


with gr.Blocks(title="Visual privacy audit", delete_cache=(600, 1800)) as demo:
    session = gr.State(None)
    gr.Markdown(INTRO)
    with gr.Accordion("What am I looking at?", open=False):
        gr.Markdown(WHAT + "\n\n**Caveats**\n" + "\n".join(f"- {c}" for c in CAVEATS))
    with gr.Tab("One image"):
        with gr.Row():
            with gr.Column(scale=1):
                image = UploadedImage(label="Image", type="filepath", image_mode=None, format="png",
                                      sources=["upload", "clipboard"], height=260,
                                      elem_id="input-image", placeholder=UPLOAD_TEXT)
                gr.Examples(examples=[[p] for p in EXAMPLES], inputs=[image], label="Examples",
                            examples_per_page=20, example_labels=[_example_label(p) for p in EXAMPLES])
                prior = gr.Dropdown(choices=db.prior_choices(), value=DEFAULT_PRIOR, label="Prior (the attacker's knowledge)")
                with gr.Row():
                    mode = gr.Radio([("eps (with delta)", "eps"), ("mu (Gaussian DP)", "mu")],
                                    value="eps", label="Budget as")
                    delta = Number(value=1e-5, label="delta", minimum=0)
                lo, hi = db.SLIDER_RANGE["eps"]
                slider = Slider(minimum=lo, maximum=hi, value=2.0, step=0.01,
                                   label=_slider_label("eps"), elem_id="budget-slider")
                readout = gr.Markdown(_readout(2.0, "eps", 1e-5), elem_id="budget-readout")
                run_btn = gr.Button("Run audit", variant="primary", elem_id="run-audit")
                with gr.Accordion("DP-SGD calculator", open=False):
                    with gr.Row():
                        z = Number(value=1.0, label="noise multiplier z")
                        q = Number(value=0.01, label="sample rate q")
                    with gr.Row():
                        t_steps = Number(value=1000, label="steps T", precision=0)
                        c_delta = Number(value=1e-5, label="delta")
                    calc_btn = gr.Button("Compute")
                    calc_out = gr.Markdown()
                    calc_mu = gr.Number(visible=False)  # internal: None until computed
                    send_btn = gr.Button("Send to slider")
                with gr.Accordion("Advanced", open=False):
                    sampler = gr.Radio([("DDIM (deterministic)", "ddim"), ("DDPM (posterior samples)", "ddpm")],
                                       value="ddim", label="Reverse process")
                    steps = Slider(1, 200, value=DEFAULT_DDIM_STEPS, step=1, label="DDIM steps from t* (DDPM uses all)")
                    trials = Slider(1, MAX_TRIALS, value=8, step=1,
                                    label="tries per budget (noise draws / posterior samples)")
                    seed = Number(value=0, precision=0, label="seed (noise streams are keyed by seed and image)")
                with gr.Accordion("Priors available here", open=False):
                    gr.Markdown(priors_table)
            with gr.Column(scale=2):
                verdict = gr.Markdown(elem_id="verdict")
                # the results appear with the first audit (no empty image boxes before; on a
                # phone the verdict comes right after the controls); progress shows on the verdict
                with gr.Column(visible=False) as results:
                    with gr.Row():
                        out_orig = gr.Image(label="Original", format="png", interactive=False,
                                            height=200)
                        out_priv = gr.Image(label="Privatized (what the attacker gets, try 1)",
                                            format="png", interactive=False, height=200)
                        out_spread = gr.Image(label="Spread across tries (bright: the attacker guesses)",
                                              format="png", interactive=False, height=200)
                    out_recon = gr.Image(label="Reconstructions, one per try", format="png", height=200,
                                         interactive=False, elem_id="reconstructions")
                    metrics = gr.Markdown()
                    verdicts_json = gr.JSON(label="Verdicts (as in verdicts.json)", visible=False)
                    with gr.Accordion("Compare chosen budgets", open=False):
                        pinned = gr.CheckboxGroup(choices=db.pin_choices([]), value=[],
                                                  label=f"Budgets to compare (at most {db.MAX_PINNED})")
                        with gr.Row():
                            pin_btn = gr.Button("Pin the slider's budget")
                            compare_btn = gr.Button("Compare")
                        compare_img = gr.Image(label="Pinned budgets side by side", format="png",
                                               interactive=False)
                        compare_table = gr.Markdown()
                    sim_plot = gr.Plot(label="Similarity against the budget")
                    bound_plot = gr.Plot(label="Theoretical bounds")
                    ladder = gr.Image(label="Budget ladder: from strong protection (top) to useless "
                                            "(bottom)", format="png", interactive=False)
                    report_btn = gr.Button("Download report (HTML)", elem_id="download-report")
                    report_file = gr.DownloadButton("report", visible="hidden", elem_id="report-file")

    with gr.Tab("Data set"):
        gr.Markdown(DATASET_INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                # a button whose text is its name (Gradio's drop area is labelled otherwise)
                ds_files = gr.State([])
                ds_upload = gr.UploadButton(f"Choose images (at most {MAX_DATASET})",
                                            file_count="multiple", file_types=["image"],
                                            elem_id="dataset-files")
                ds_chosen = gr.Markdown("No images chosen yet.")
                ds_btn = gr.Button("Audit the data set", variant="primary", elem_id="run-dataset")
            with gr.Column(scale=2):
                ds_summary = gr.Markdown(elem_id="dataset-summary")
                ds_plot = gr.Plot(label="Fraction of the images recognisable against the budget",
                                  visible=False)
                ds_report = gr.DownloadButton("Download the data set's report (HTML)",
                                              visible=False, elem_id="dataset-report")

    view_outputs = [out_orig, out_priv, out_recon, out_spread, verdict, metrics, sim_plot,
                    bound_plot, verdicts_json]
    # Every handler that runs the model is in one concurrency group of MODEL_CONCURRENCY
    # (one model run at a time on this server, whoever asks and through whichever event).
    model = dict(concurrency_id="model", concurrency_limit=MODEL_CONCURRENCY)
    alt = dict(fn=alt_texts, inputs=[slider, mode, delta, session],
               outputs=[out_orig, out_priv, out_recon, out_spread, ladder, results], queue=False,
               api_visibility="private", show_progress="hidden")
    run_btn.click(run, [image, prior, mode, delta, slider, sampler, steps, trials, seed, session],
                  view_outputs + [ladder, session], api_name="audit", **model).then(**alt)
    # a slider move only reads the ladder: it skips the queue (answered at once, in parallel
    # for all users); computing an exact budget goes through the queue
    slider.change(move, [slider, mode, delta, session], view_outputs + [readout],
                  api_name="budget", trigger_mode="always_last", queue=False,
                  show_progress="hidden").then(
        exact, [slider, mode, delta, session], view_outputs + [session], api_name="exact_budget",
        trigger_mode="always_last", **model).then(**alt)
    mode.change(switch_mode, [mode, slider, delta], [slider], api_visibility="private")
    delta.change(_readout, [slider, mode, delta], [readout], api_visibility="private")
    calc_btn.click(calculator, [z, q, t_steps, c_delta], [calc_out, calc_mu], api_name="dpsgd")
    send_btn.click(send, [calc_mu, mode, delta], [slider], api_visibility="private")
    report_btn.click(report, [slider, mode, delta, session], [report_file], api_name="report").then(
        None, None, None, js=_CLICK_REPORT, api_visibility="private")
    pin_btn.click(pin, [pinned, slider, mode, delta], [pinned], api_visibility="private")
    compare_btn.click(compare, [pinned, delta, session], [compare_img, compare_table, session],
                      api_name="compare", **model)
    ds_upload.upload(choose_files, [ds_upload], [ds_files, ds_chosen], api_visibility="private")
    # the tab's files live in session state, which the API cannot send: for scripts, the
    # command line's batch audit does the same
    ds_btn.click(dataset, [ds_files, prior, delta, steps, trials, seed],
                 [ds_summary, ds_plot, ds_report], api_visibility="private", **model)
    # the priors' states (a Hub prior becomes available when the network returns)
    demo.load(lambda: gr.Dropdown(choices=db.prior_choices()), None, [prior], queue=False,
              api_visibility="private")
    demo.unload(cleanup)


def launch(**overrides):
    """Start the server with the privacy settings; tests pass prevent_thread_lock etc.
    Address and port are Gradio's: GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (a Hugging Face
    Space sets both), else 127.0.0.1 and the first free port from 7860."""
    retired = [v for v in ("AUDIT_HOST", "AUDIT_PORT") if v in os.environ]
    if retired:
        raise SystemExit(f"{' and '.join(retired)} no longer choose the address: set Gradio's "
                         "own GRADIO_SERVER_NAME (e.g. 0.0.0.0) and GRADIO_SERVER_PORT instead")
    kwargs = dict(max_file_size=MAX_UPLOAD, run_history=False, footer_links=["api"],
                  allowed_paths=[], theme=THEME, css=CSS)
    kwargs.update(overrides)
    if not ZERO_GPU:  # on ZeroGPU, CUDA may only be touched inside spaces.GPU functions
        load_prior(EMBEDDED)  # warm: the first audit should not wait for the model
    return demo.queue(max_size=QUEUE_SIZE).launch(**kwargs)


if __name__ == "__main__":
    launch()
