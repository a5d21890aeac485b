"""What a UNet evaluation of a prior costs in this process, so that long work is estimated
(and refused at once when it cannot finish) before it starts.

Each process keeps its own estimate per prior, device and precision: the seconds per
sample evaluation of the UNet's own compute in this process (timed around the reverse
process itself, after the model group was obtained: never time spent waiting for it, never
another process's runs), an exponential average of its last runs (so a busy machine is
reflected and an idle one recovers). A short direct measurement (``measure``: at
preparation, and as a probe whenever an estimate would refuse work) replaces the average,
so a stale or high estimate never locks work out: the probe decides.

The JSON file under the cache directory (reference.cache_dir) only seeds a fresh process
(read once per key, before this process has measured anything of its own); every process
writes its measurements there for the next one. A command-line batch or a test run
rewriting the file never changes a running server's estimate.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import torch

__all__ = [
    "key_of",
    "key_for",
    "per_eval",
    "record",
    "measure",
    "estimate",
    "store_path",
    "source",
    "forget",
    "probe",
    "measure_quickly",
    "seconds_for",
    "PROBE_EVERY_S",
]

_LOCK = threading.Lock()
WEIGHT = 0.5  # the newest run's weight in the running average
PROBE_EVERY_S = 30.0  # at most one probe per prior in this many seconds
# key -> {"per_eval_s", "source": "file" | "run" | "probe", "at": time.monotonic()}
_LIVE: dict[str, dict] = {}
_SEEDED: set[str] = set()  # keys already looked up in the file by this process


def store_path() -> Path:
    from .reference import cache_dir

    return cache_dir() / "costs.json"


def key_of(prior) -> str:
    return key_for(prior.name, prior.device, prior.dtype)


def key_for(name: str, device, dtype) -> str:
    """The store's key for a prior by name, device and precision (no need to load it)."""
    return f"{name}|{torch.device(device)}|{str(dtype).removeprefix('torch.')}"


def _key(prior) -> str:
    return prior if isinstance(prior, str) else key_of(prior)


def _read() -> dict:
    try:
        return json.loads(store_path().read_text())
    except (OSError, ValueError):
        return {}


def _entry(key: str) -> dict | None:
    """This process's estimate for ``key``, seeded from the file the first time it is asked
    for (call with _LOCK held)."""
    if key not in _LIVE and key not in _SEEDED:
        _SEEDED.add(key)
        stored = _read().get(key)
        try:
            value = float(stored["per_eval_s"]) if stored is not None else None
        except (KeyError, TypeError, ValueError):
            value = None
        if value is not None and value > 0:
            _LIVE[key] = {"per_eval_s": value, "source": "file", "at": time.monotonic()}
    return _LIVE.get(key)


def per_eval(prior) -> float | None:
    """Seconds per sample evaluation of this prior in this process (a loaded Prior, or a key
    from ``key_for``), or None when never measured (here or by an earlier process)."""
    with _LOCK:
        entry = _entry(_key(prior))
    return None if entry is None else float(entry["per_eval_s"])


def source(prior) -> str | None:
    """Where this process's estimate comes from: "file" (an earlier process), "run" (this
    process's own audits), "probe" (a direct measurement), or None."""
    with _LOCK:
        entry = _entry(_key(prior))
    return None if entry is None else entry["source"]


def forget() -> None:
    """Drop this process's estimates (tests; a fresh process starts like this)."""
    with _LOCK:
        _LIVE.clear()
        _SEEDED.clear()


def _save(key: str, value: float) -> None:
    """Write this process's estimate to the file, the next process's seed (a read-only cache
    keeps nothing)."""
    data = _read()
    old = data.get(key)
    runs = old.get("runs", 0) if isinstance(old, dict) else 0
    data[key] = {
        "per_eval_s": value,
        "runs": runs + 1,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        path = store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass


def record(prior, evaluations: int, seconds: float, *, direct: bool = False) -> None:
    """Fold a run of ``evaluations`` sample evaluations in ``seconds`` (this process's own
    compute) into this process's estimate; ``direct``: a measurement made for the purpose
    (``measure``), which replaces the estimate instead of being averaged in. A seed read from
    the file is always replaced by this process's first measurement."""
    if evaluations <= 0 or not seconds > 0:
        return
    new = seconds / evaluations
    key = _key(prior)
    with _LOCK:
        old = _entry(key)
        if direct or old is None or old["source"] == "file":
            value = new
        else:
            value = WEIGHT * new + (1 - WEIGHT) * float(old["per_eval_s"])
        _LIVE[key] = {
            "per_eval_s": value,
            "source": "probe" if direct else "run",
            "at": time.monotonic(),
        }
        _save(key, value)


@torch.inference_mode()
def measure(prior, *, batch: int | None = None, repeats: int = 2) -> float:
    """Time sample evaluations of the UNet at a batch the audit uses, now; the result
    replaces this process's estimate (and seeds the next process's). Returns the seconds
    per evaluation."""
    from ..attacker.reconstruct import default_batch

    b = batch or min(16, default_batch(prior))
    x = torch.randn(b, prior.channels, prior.sample_size, prior.sample_size, device=prior.device)
    t = torch.full((b,), prior.num_train_timesteps // 2, device=prior.device)
    prior.predict_eps(x, t)  # warm-up
    if prior.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        prior.predict_eps(x, t)
    if prior.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    record(prior, b * repeats, seconds, direct=True)
    return seconds / (b * repeats)


def probe(prior) -> float | None:
    """A short direct measurement of a loaded prior (one small batch), unless one was made
    for it in the last PROBE_EVERY_S seconds; returns the estimate afterwards. The check
    that would refuse work calls it first, so a stale or high estimate recovers by itself."""
    key = key_of(prior)
    with _LOCK:
        entry = _entry(key)
        recent = (
            entry is not None
            and entry["source"] == "probe"
            and time.monotonic() - entry["at"] < PROBE_EVERY_S
        )
    if not recent:
        measure_quickly(prior)
    return per_eval(prior)


def measure_quickly(prior) -> float:
    """``measure`` at the size the preparation and the probe use: the audit's batch for
    priors up to 64 pixels (two timed calls), one sample per call above (one call)."""
    small = prior.sample_size <= 64
    return measure(prior, batch=None if small else 1, repeats=2 if small else 1)


def estimate(prior, evaluations: int) -> float | None:
    """Seconds ``evaluations`` sample evaluations are expected to take here, or None."""
    s = per_eval(prior)
    return None if s is None else s * evaluations


def seconds_for(name: str, evaluations: int, limit: float) -> tuple[float, float] | None:
    """(seconds, seconds per evaluation) ``evaluations`` of the prior ``name`` on this
    process's device are expected to take, or None when nothing is known yet. When the
    estimate exceeds ``limit`` and the prior is in memory, it is probed first (``probe``), so
    that only a measurement made now can refuse work. Never loads the prior nor waits for
    it."""
    from ..attacker.priors import default_device, default_dtype, loaded_prior

    device = default_device()
    dtype = default_dtype(device)
    per = per_eval(key_for(name, device, dtype))
    if per is None:
        return None
    if per * evaluations > limit:
        prior = loaded_prior(name, device=device, dtype=dtype)
        if prior is not None:
            per = probe(prior) or per
    return per * evaluations, per
