"""What a UNet evaluation of a prior costs on this machine, kept from the last runs, so that
long work is estimated (and refused at once when it cannot finish) before it starts.

The store is one small JSON file under the cache directory (reference.cache_dir), keyed by
prior, device and precision: seconds per sample evaluation, measured by ``prepare`` and
updated after every audit (an exponential average of the last runs, so a busy machine is
reflected and an idle one recovers).
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import torch

__all__ = ["key_of", "key_for", "per_eval", "record", "measure", "estimate", "store_path"]

_LOCK = threading.Lock()
WEIGHT = 0.5  # the newest run's weight in the running average


def store_path() -> Path:
    from .reference import cache_dir

    return cache_dir() / "costs.json"


def key_of(prior) -> str:
    return key_for(prior.name, prior.device, prior.dtype)


def key_for(name: str, device, dtype) -> str:
    """The store's key for a prior by name, device and precision (no need to load it)."""
    return f"{name}|{torch.device(device)}|{str(dtype).removeprefix('torch.')}"


def _read() -> dict:
    try:
        return json.loads(store_path().read_text())
    except (OSError, ValueError):
        return {}


def per_eval(prior) -> float | None:
    """Seconds per sample evaluation of this prior here (a loaded Prior, or a key from
    ``key_for``), or None when never measured."""
    entry = _read().get(prior if isinstance(prior, str) else key_of(prior))
    return None if entry is None else float(entry["per_eval_s"])


def record(prior, evaluations: int, seconds: float) -> None:
    """Fold a run of ``evaluations`` sample evaluations in ``seconds`` into the store (a
    read-only cache keeps nothing)."""
    if evaluations <= 0 or not seconds > 0:
        return
    new = seconds / evaluations
    with _LOCK:
        data = _read()
        old = data.get(key_of(prior))
        value = new if old is None else WEIGHT * new + (1 - WEIGHT) * float(old["per_eval_s"])
        data[key_of(prior)] = {"per_eval_s": value, "runs": (old or {}).get("runs", 0) + 1,
                               "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            path = store_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)
        except OSError:
            pass


@torch.inference_mode()
def measure(prior, *, batch: int | None = None, repeats: int = 2) -> float:
    """Time sample evaluations of the UNet at a batch the audit uses, record and return the
    seconds per evaluation."""
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
    record(prior, b * repeats, seconds)
    return seconds / (b * repeats)


def estimate(prior, evaluations: int) -> float | None:
    """Seconds ``evaluations`` sample evaluations are expected to take here, or None."""
    s = per_eval(prior)
    return None if s is None else s * evaluations
