"""One image's work in a batch, the same in every engine: compute it (an audit, a solve or
the refusal) and store its files under OUT/images/<name>/."""

from __future__ import annotations

from pathlib import Path

from ..attacker.priors import load_prior
from ..audit.run import AuditResult, default_trials, run_audit
from ..audit.solve import NotSolvable, refusal, solve_budget, write_solve
from ..images import ImageError
from ..outputs.report import write_outputs
from .config import BatchConfig, image_dir

__all__ = ["compute_image", "store_image", "audit_image"]


def compute_image(source, cfg: BatchConfig, prior) -> tuple[object, str]:
    """(what to store, error) for one image (a path or its bytes): its AuditResult, or in
    solve mode its SolveResult or, when no budget can be trusted, the refusal; (None, reason)
    for a file that is not a readable image. The same in both engines."""
    try:
        if not cfg.solve:
            return run_audit(source, prior=prior, **cfg.audit_kwargs()), ""
        try:
            return solve_budget(source, prior=prior, **cfg.solve_kwargs()), ""
        except NotSolvable as exc:
            return refusal(
                prior.name, cfg.level, cfg.delta, cfg.trials or default_trials(prior), exc
            ), ""
    except (ImageError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def store_image(out: Path, path: Path, payload) -> None:
    """Write one image's outputs under OUT/images/<name>/ (see batch.run's docstring)."""
    folder = image_dir(out, path)
    if isinstance(payload, AuditResult):
        write_outputs(payload, folder)
    elif isinstance(payload, dict):
        write_solve(folder, refused=payload)
    else:
        write_solve(folder, payload)


def audit_image(path: Path, out: Path, cfg: BatchConfig, prior=None) -> dict:
    """Audit (or solve) one file and write its outputs; returns {"name", "ok", "error"}."""
    payload, error = compute_image(path, cfg, prior if prior is not None else load_prior(cfg.prior))
    if payload is None:
        return {"name": path.name, "ok": False, "error": error}
    store_image(out, path, payload)
    return {"name": path.name, "ok": True, "error": ""}
