"""The server's heap, kept to what it uses (Linux with glibc; elsewhere nothing is done).

Gradio runs each request in one of its worker threads, and glibc gives every thread that
allocates its own malloc arena, up to eight per core: the model's large temporary tensors
then leave freed memory in many arenas, which glibc keeps. Measured under bench/soak.py,
resident memory grew by about 600 MB in two minutes that way. Two arenas (``limit_arenas``,
at start-up) and returning freed memory to the system after each model run
(``give_back``) keep it flat (docs/DEPLOYMENT.md, "Memory")."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import inspect

__all__ = ["limit_arenas", "give_back", "trimmed"]

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_arenas(n: int = ARENAS) -> bool:
    """At most ``n`` malloc arenas for the process (call before the worker threads start)."""
    return bool(_LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, n))


def give_back() -> None:
    """Return the heap's free memory to the system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def trimmed(fn):
    """``fn`` followed by ``give_back`` (for handlers that run the model, which allocate and
    free hundreds of MB); works for functions that return and that yield."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            finally:
                give_back()

        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            give_back()

    return call
