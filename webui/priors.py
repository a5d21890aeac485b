"""The offered priors at launch: prepared before the server answers (the embedded one) or
in a background thread (the others), and their states in the page's selector."""

from __future__ import annotations

import functools

import gradio as gr

from audit_engine.attacker.priors import EMBEDDED, REGISTRY, PriorUnavailable, load_prior
from audit_engine.audit import reference as reference_mod
from audit_engine.audit.prepare import Preparer, measure_cost, prepare
from audit_engine.audit.reference import NotPrepared
from audit_engine.session.ladder import prior_table

from .config import ZERO_GPU
from .errors import engine_errors

# prepares the offered priors in a background thread once the app launches (start_preparing)
PREPARER = Preparer(  # on ZeroGPU the preparation runs on a CPU copy (no GPU outside calls)
    list(REGISTRY),
    run=functools.partial(prepare, device="cpu" if ZERO_GPU else None),
    measure=None if ZERO_GPU else measure_cost,
)


def start_preparing(*, embedded_now: bool = True) -> None:
    """At launch: the embedded prior is prepared before the server answers (seconds: its
    reference set ships with it), every other offered prior in the background, outside the
    model group. A request then runs only on a prepared prior (``require_prepared``). On
    ZeroGPU every offered prior is first placed on the GPU (at start-up, not in a GPU call)."""
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
            raise NotPrepared(
                "This prior's reference set is not in memory; the server "
                "prepares it at launch (python -m audit_engine prepare)."
            )


def prior_choices() -> list[tuple[str, str]]:
    """The prior selector's (label, key): the registry's state, and the preparation's."""
    return [
        (f"{title} [{PREPARER.label(key) or state}]", key) for key, title, state, _ in prior_table()
    ]


@engine_errors
def prior_selector():
    return gr.Dropdown(choices=prior_choices())


@engine_errors
def refresh_priors():
    """The selector's labels, and whether to look again (while a prior is being prepared)."""
    busy = any(PREPARER.status(k).get("state") in ("waiting", "preparing") for k in REGISTRY)
    return gr.Dropdown(choices=prior_choices()), gr.Timer(active=PREPARER.active and busy)
