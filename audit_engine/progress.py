"""The one progress protocol of the engine: ``progress(fraction, message)``.

Every long function takes ``progress: Progress | None``, calls it with the fraction of its
work done (0 to 1) and a short message, and hands a part of its range to the functions it
calls with ``within``. The CLI prints it; the dashboard passes Gradio's ``gr.Progress``,
which has the same signature."""

from __future__ import annotations

import time
from typing import Callable, Protocol

__all__ = [
    "Progress",
    "silent",
    "within",
    "counted",
    "time_left",
    "Deadline",
    "TimeLimit",
    "seconds_left",
]


class Progress(Protocol):
    def __call__(self, fraction: float, message: str) -> object: ...


def silent(fraction: float, message: str) -> None:
    """The progress of nobody watching."""


class TimeLimit(TimeoutError):
    """Work stopped because its request ran past its time limit (``Deadline``)."""


class Deadline:
    """A progress that ends the work once ``limit_s`` seconds have passed since it was made
    (raising TimeLimit at the next progress call before the end) and says how long is left (``left()``), so
    that optional work (the sequential rule's further tries) is started only when it can
    finish in time. ``progress``: where the messages go."""

    def __init__(
        self,
        limit_s: float,
        progress: Callable | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit_s, self.progress, self.clock = float(limit_s), progress, clock
        self.start = clock()

    def left(self) -> float:
        return self.limit_s - (self.clock() - self.start)

    def __call__(self, fraction: float, message: str) -> None:
        if self.left() < 0 and fraction < 1.0:  # finished work is never thrown away
            raise TimeLimit(f"ran past the limit of {self.limit_s:g} s")
        if self.progress is not None:
            self.progress(fraction, message)


class _Part:
    """``within``'s progress: a part of the range, which keeps the outer one's deadline."""

    def __init__(self, say: Progress, lo: float, hi: float, prefix: str, left):
        self.say, self.lo, self.hi, self.prefix = say, lo, hi, prefix
        if left is not None:
            self.left = left

    def __call__(self, f: float, m: str) -> object:
        return self.say(
            self.lo + (self.hi - self.lo) * f, f"{self.prefix}: {m}" if self.prefix else m
        )


def within(progress: Progress | None, lo: float, hi: float, prefix: str = "") -> Progress:
    """A progress for a part of the work: its 0..1 maps to ``lo..hi`` of ``progress``, its
    messages prefixed with ``prefix`` (a ``": "`` is put between); a deadline is kept."""
    return _Part(progress or silent, lo, hi, prefix, getattr(progress, "left", None))


def seconds_left(progress: Progress | None) -> float:
    """The seconds left before ``progress``'s deadline (``Deadline``); infinite without one."""
    left = getattr(progress, "left", None)
    return float("inf") if left is None else float(left())


def counted(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Report ``done`` of ``total`` units of ``what`` ("reverse diffusion step 3/10")."""
    if progress is not None:
        progress(done / total if total else 1.0, f"{what} {done}/{total}")


def time_left(done: int, total: int, elapsed: float) -> str:
    """ "12 s left" / "3.4 min left" from the pace so far (``elapsed`` seconds for ``done`` of
    ``total`` units)."""
    if done == 0:
        return "estimating the time left"
    left = elapsed / done * (total - done)
    return f"{left / 60:.1f} min left" if left >= 60 else f"{left:.0f} s left"
