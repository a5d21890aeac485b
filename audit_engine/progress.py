"""The one progress protocol of the engine: ``progress(fraction, message)``.

Every long function takes ``progress: Progress | None``, calls it with the fraction of its
work done (0 to 1) and a short message, and hands a part of its range to the functions it
calls with ``within``. The CLI prints it; the dashboard passes Gradio's ``gr.Progress``,
which has the same signature."""
from __future__ import annotations

from typing import Protocol

__all__ = ["Progress", "silent", "within", "counted", "time_left"]


class Progress(Protocol):
    def __call__(self, fraction: float, message: str) -> object: ...


def silent(fraction: float, message: str) -> None:
    """The progress of nobody watching."""


def within(progress: Progress | None, lo: float, hi: float, prefix: str = "") -> Progress:
    """A progress for a part of the work: its 0..1 maps to ``lo..hi`` of ``progress``, its
    messages prefixed with ``prefix`` (a ``": "`` is put between)."""
    say = progress or silent
    return lambda f, m: say(lo + (hi - lo) * f, f"{prefix}: {m}" if prefix else m)


def counted(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Report ``done`` of ``total`` units of ``what`` ("reverse diffusion step 3/10")."""
    if progress is not None:
        progress(done / total if total else 1.0, f"{what} {done}/{total}")


def time_left(done: int, total: int, elapsed: float) -> str:
    """"12 s left" / "3.4 min left" from the pace so far (``elapsed`` seconds for ``done`` of
    ``total`` units)."""
    if done == 0:
        return "estimating the time left"
    left = elapsed / done * (total - done)
    return f"{left / 60:.1f} min left" if left >= 60 else f"{left:.0f} s left"
