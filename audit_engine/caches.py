"""The process's caches, safe under the dashboard's threads.

- ``Memo``: a value built once per key (a prior, an LPIPS metric, a reference set, a
  network check). Each key has its own lock, and a hit takes no lock at all, so a slow
  build (a prior downloading from the Hub) never makes users of other keys wait. Values
  that ``failed`` calls failures are built again after ``retry_after`` seconds: an app
  started offline recovers when the network returns.
- ``LRU``: a bounded, thread-safe least-recently-used map (one session's exact budgets).
- ``reachable``: whether a host answers a TCP connection, with failures remembered for
  ``RETRY_S`` seconds only.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, Iterator, TypeVar

__all__ = ["Memo", "LRU", "RETRY_S", "reachable"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# seconds after which a failed network check or a failed build is tried again
RETRY_S = float(os.environ.get("AUDIT_RETRY_S", "60"))


class Memo(Generic[K, V]):
    """Values built once per key, each key under its own lock.

    ``failed(value)``: whether a built value records a failure (for example an LPIPS metric
    without weights); such a value is returned until ``retry_after`` seconds have passed,
    then built again. A build that raises stores nothing (the next call builds again).
    ``clock``: the time source (tests advance it).
    """

    def __init__(
        self,
        *,
        failed: Callable[[V], bool] | None = None,
        retry_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._values: dict[K, tuple[V, float]] = {}
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()
        self._failed = failed or (lambda value: False)
        self._retry_after = retry_after
        self.clock = clock

    def _fresh(self, entry: tuple[V, float] | None) -> bool:
        if entry is None:
            return False
        value, built = entry
        if self._retry_after is None or not self._failed(value):
            return True
        return self.clock() - built < self._retry_after

    def get(self, key: K, build: Callable[[], V]) -> V:
        entry = self._values.get(key)  # a hit takes no lock
        if self._fresh(entry):
            return entry[0]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # only callers of this key wait for its build
            entry = self._values.get(key)
            if self._fresh(entry):
                return entry[0]
            value = build()
            self._values[key] = (value, self.clock())
            return value

    def put(self, key: K, value: V) -> None:
        self._values[key] = (value, self.clock())

    def peek(self, key: K) -> V | None:
        """The value built for ``key`` if there is a fresh one, else None; never builds."""
        entry = self._values.get(key)
        return entry[0] if self._fresh(entry) else None

    def empty_copy(self) -> "Memo[K, V]":
        """A new, empty memo with this one's policy (what counts as a failure, when it is
        tried again, the clock)."""
        return Memo(failed=self._failed, retry_after=self._retry_after, clock=self.clock)

    def __contains__(self, key: K) -> bool:
        return self._fresh(self._values.get(key))

    def clear(self) -> None:
        self._values.clear()


class LRU(Generic[K, V]):
    """At most ``size`` entries; a lookup or an insert makes an entry the most recent and an
    insert beyond ``size`` drops the least recent. Every method holds the lock, so readers
    and writers in different threads never see the map change under them."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"an LRU needs room for at least one entry, got size={size}")
        self.size = int(size)
        self._d: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, match: Callable[[K], bool]) -> tuple[K, V] | None:
        """The first entry whose key matches, made the most recent; None if none does."""
        with self._lock:
            for k in self._d:
                if match(k):
                    self._d.move_to_end(k)
                    return k, self._d[k]
            return None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def items(self) -> list[tuple[K, V]]:
        """A snapshot, least recent first."""
        with self._lock:
            return list(self._d.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._d

    def __iter__(self) -> Iterator[K]:
        return iter([k for k, _ in self.items()])

    def __getstate__(self) -> dict[str, Any]:  # copy.deepcopy and pickle: a fresh lock
        return {"size": self.size, "items": self.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"])
        for k, v in state["items"]:
            self.put(k, v)


_REACHABLE: Memo[tuple[str, int], bool] = Memo(failed=lambda ok: not ok, retry_after=RETRY_S)


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers a TCP connection on ``port``. A success is remembered for the
    life of the process, a failure for ``RETRY_S`` seconds (AUDIT_RETRY_S)."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return _REACHABLE.get((host, port), check)
