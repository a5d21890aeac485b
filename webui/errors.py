"""Every failure a sentence: the adapter between the engine's exceptions and the page
(``engine_errors``), one place for all of the page's events."""

from __future__ import annotations

import functools
import inspect
import logging
import time

import gradio as gr

from audit_engine.attacker.priors import PriorUnavailable
from audit_engine.audit.reference import NotPrepared
from audit_engine.images import ImageError

from .config import TIME_LIMIT

LOG = logging.getLogger("audit.web")


def too_long() -> gr.Error:
    return gr.Error(
        f"The audit's first look ran past this server's limit of {TIME_LIMIT:g} s "
        "per request and was stopped (this server was busier than the estimate "
        "made before it started): use fewer steps or tries, DDIM instead of DDPM, "
        "or a smaller prior."
    )


# what each event does, in words, for the sentence that reports a failure nobody foresaw
_ACTIONS = {
    "run": "running the audit",
    "move": "showing that budget",
    "exact": "computing that exact budget",
    "report": "writing the report",
    "compare": "comparing the pinned budgets",
    "find_budget": "searching for the largest safe budget",
    "dataset": "auditing the data set",
    "pin": "pinning the budget",
    "calculator": "computing the DP-SGD budget",
    "send": "moving the slider",
    "switch_mode": "switching the budget's unit",
    "choose_files": "reading the chosen files",
    "alt_texts": "describing the results",
    "readout_text": "reading the budget",
    "refresh_priors": "listing the priors",
    "default_trials_for": "choosing the tries",
    "announce_solve": "estimating the search",
    "announce_dataset": "estimating the data set's audit",
    "cleanup": "cleaning up the session",
}
_FORESEEN = (ImageError, PriorUnavailable, ValueError, NotPrepared)  # Infeasible is a ValueError


def failure_sentence(exc: BaseException, action: str) -> str:
    """The plain sentence a visitor reads for an exception (every kind, never Gradio's
    generic "Error"); unforeseen ones are logged with their traceback by the caller."""
    if isinstance(exc, TimeoutError):
        return too_long().message
    if isinstance(exc, _FORESEEN):
        return _as_sentence(str(exc) or f"{action} failed ({type(exc).__name__})")
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return (
            f"The server ran out of memory while {action}. Try again in a minute, or with "
            "fewer tries, fewer budgets or a smaller image or prior."
        )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (
        f"Something went wrong on the server while {action} ({type(exc).__name__}); it "
        f"was logged at {stamp}. Nothing you entered was lost: try again, or with other "
        "settings, and report it with that time if it happens again."
    )


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
