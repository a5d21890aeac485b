"""Batch audit of a folder: every image at every budget, resumable, locally or on Ray.

    python -m audit_engine batch DIR (--eps E ... | --mu M ...) [--prior P] [--trials K]
        [--engine local|ray] [--workers N] [--address ADDR] --out OUT

Per image, ``OUT/images/<file name>/`` holds what the audit command writes (grid.png,
metrics.json, metrics.csv, verdicts.json), each file written to a temporary name and renamed
into place, verdicts.json last: an image is complete exactly when its verdicts.json exists,
so a rerun skips complete images and an interrupted run leaves nothing a rerun would trust.
Files that are not readable images go to ``OUT/errors.csv`` with the reason. The data set's
summary is ``OUT/summary.csv`` (per budget) and ``OUT/report.html``.

With ``--solve`` (solve_report.py) each image gets ``solve.json`` (its largest safe budget,
or the refusal when it is outside the prior's domain) instead, and the data set the
largest budget at which at most ``--max-fraction`` of its images fail the level, held to
the fraction's 95% upper bound: ``OUT/solve.json``, ``OUT/budgets.csv`` (per image),
``OUT/summary.csv`` (the fraction against the budget) and ``OUT/report.html``.

The noise streams of an audit are keyed by (seed, image), so the same image gets the same
numbers whichever engine, worker or order audits it.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch

from ..attacker.priors import load_prior
from ..audit.solve import LEVELS
from ..files import atomic_write
from ..maths import accounting
from ..progress import Progress, silent, time_left
from .config import ENGINES, BatchConfig, is_complete, list_images
from .solve_report import summarize_solve, write_solve_outputs
from .summary import summarize_batch, write_report, write_summary
from .work import audit_image

__all__ = ["run_batch"]


def run_batch(
    folder: Path,
    out: Path,
    cfg: BatchConfig,
    *,
    engine: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Audit every image of ``folder`` not yet complete under ``out``; then write the
    errors, the summary and the report. Returns counts."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    accounting.validate_delta(cfg.delta)
    if cfg.solve:
        if cfg.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {cfg.level!r}")
        if not 0 < cfg.max_fraction < 1:
            raise ValueError(
                f"the fraction of images allowed to fail must lie strictly between "
                f"0 and 1, got {cfg.max_fraction}"
            )
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    files = list_images(folder)
    todo = [p for p in files if not is_complete(out, p, cfg)]
    say = progress or silent
    t0 = time.perf_counter()
    results: list[dict] = []

    def done(k: int, name: str) -> None:
        say(
            (k + 1) / len(todo),
            f"image {k + 1} of {len(todo)}: {name}; "
            f"{time_left(k + 1, len(todo), time.perf_counter() - t0)}",
        )

    say(0.0, f"{len(files) - len(todo)} of {len(files)} files already complete")
    if engine == "local":
        prior = load_prior(cfg.prior)
        before = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            for k, path in enumerate(todo):
                results.append(audit_image(path, out, cfg, prior))
                done(k, path.name)
        finally:
            torch.set_num_threads(before)
    else:
        from .distributed import run_on_ray

        for k, r in enumerate(run_on_ray(todo, out, cfg, workers=workers, address=address)):
            results.append(r)
            done(k, r["name"])
    errors = [r for r in results if not r["ok"]]
    _write_errors(out, errors)
    if cfg.solve:
        write_solve_outputs(
            out,
            summarize_solve(out, cfg),
            cfg,
            engine=engine,
            workers=workers,
            n_errors=len(errors),
        )
    else:
        summary = summarize_batch(out, cfg)
        write_summary(out, summary)
        write_report(out, summary, cfg, engine=engine, workers=workers, n_errors=len(errors))
    return {
        "files": len(files),
        "audited": len(results) - len(errors),
        "skipped_complete": len(files) - len(todo),
        "errors": len(errors),
        "elapsed_s": time.perf_counter() - t0,
    }


def _write_errors(out: Path, errors: list[dict]) -> None:
    def write(p: Path) -> None:
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "reason"])
            for e in errors:
                w.writerow([e["name"], e["error"]])

    atomic_write(Path(out) / "errors.csv", write)
