"""The batch engine on Ray: actors that each load the prior once and audit (or solve) a share of the
images. Ray is optional (the `scale` extra); results come back to the driver, which
writes them, so the workers need no shared file system."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

__all__ = ["run_on_ray"]


class _Auditor:
    """One Ray actor: the prior loaded once, one image at a time."""

    def __init__(self, cfg):
        import torch

        from ..attacker.priors import load_prior

        torch.set_num_threads(cfg.threads)  # the actor's CPU share: no oversubscription
        self.cfg = cfg
        self.prior = load_prior(cfg.prior)

    def audit(self, name: str, data: bytes):
        from .work import compute_image

        return (name, *compute_image(data, self.cfg, self.prior))


def run_on_ray(
    paths: list[Path], out: Path, cfg, *, workers: int = 2, address: str | None = None
) -> Iterator[dict]:
    """Audit ``paths`` on ``workers`` Ray actors (a local cluster, or the one at ``address``),
    writing each result under ``out`` as it arrives; yields {"name", "ok", "error"}."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise RuntimeError(
            "--engine ray needs Ray: pip install -e .[scale] (or use --engine local)"
        ) from None
    from .work import store_image

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a privacy tool reports no usage
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * cfg.threads, include_dashboard=False, log_to_driver=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        actor = ray.remote(
            num_cpus=cfg.threads, num_gpus=(min(1.0, gpus / workers) if gpus else 0)
        )(_Auditor)
        pool = ActorPool([actor.remote(cfg) for _ in range(workers)])
        by_name = {p.name: p for p in paths}
        jobs = pool.map_unordered(lambda a, p: a.audit.remote(p.name, p.read_bytes()), paths)
        for name, result, error in jobs:
            if result is None:
                yield {"name": name, "ok": False, "error": error}
                continue
            store_image(out, by_name[name], result)
            yield {"name": name, "ok": True, "error": ""}
    finally:
        if started:
            ray.shutdown()
