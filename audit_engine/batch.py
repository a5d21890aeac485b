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
import datetime
import html
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import accounting
from .report import _atomic_write, package_versions, write_outputs
from .verdict import LABELS, wilson_interval

__all__ = ["BatchConfig", "list_images", "run_batch", "summarize_batch", "write_report"]

ENGINES = ("local", "ray")
Progress = Callable[[int, int, str], None]


@dataclass
class BatchConfig:
    mus: Sequence[float] | None = None
    epsilons: Sequence[float] | None = None
    delta: float = 1e-5
    prior: str | None = None
    trials: int | None = None
    seed: int = 0
    steps: int | None = None  # DDIM steps from t* (default: the engine's)
    lpips: str | None = None  # the batch skips LPIPS by default (it dominates CPU time)
    # CPU threads per audit, in both engines: float32 sums depend on the thread count, so
    # the same count gives the same numbers to the last digit locally and on Ray
    threads: int = 1
    # solve mode (--solve): each image's largest budget keeping `level`, then the data set's,
    # at which at most `max_fraction` of the images fail it (95% upper bound)
    solve: bool = False
    level: str = "not recognisable"
    max_fraction: float = 0.05
    # the release's clipping bound (None: the prior's default) and the evidence rule
    clip_norm: float | None = None
    tolerance: float = 0.10
    max_trials: int | None = None

    def audit_kwargs(self) -> dict:
        """run_audit's arguments besides the image and the prior (loaded once per worker)."""
        kw = dict(mus=self.mus, epsilons=self.epsilons, delta=self.delta,
                  trials=self.trials, seed=self.seed, lpips=self.lpips,
                  clip_norm=self.clip_norm, tolerance=self.tolerance, max_trials=self.max_trials)
        if self.steps is not None:
            kw["steps"] = self.steps
        return kw

    def solve_kwargs(self) -> dict:
        """solve_budget's arguments besides the image and the prior."""
        kw = dict(level=self.level, delta=self.delta, trials=self.trials, seed=self.seed,
                  clip_norm=self.clip_norm, tolerance=self.tolerance, max_trials=self.max_trials)
        if self.steps is not None:
            kw["steps"] = self.steps
        return kw


def list_images(folder: Path) -> list[Path]:
    """Every visible file of the folder (not sub-folders), sorted by name: a file that is not
    an image is reported as an error, not silently skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def image_dir(out: Path, path: Path) -> Path:
    return Path(out) / "images" / path.name


def is_complete(out: Path, path: Path, cfg: BatchConfig | None = None) -> bool:
    last = "solve.json" if cfg is not None and cfg.solve else "verdicts.json"  # written last
    return (image_dir(out, path) / last).is_file()


def compute_image(source, cfg: BatchConfig, prior) -> tuple[object, str]:
    """(what to store, error) for one image (a path or its bytes): its AuditResult, or in
    solve mode its SolveResult or, when no budget can be trusted, the refusal; (None, reason)
    for a file that is not a readable image. The same in both engines."""
    from .audit import default_trials, run_audit
    from .images import ImageError
    from .solve import NotSolvable, refusal, solve_budget

    try:
        if not cfg.solve:
            return run_audit(source, prior=prior, **cfg.audit_kwargs()), ""
        try:
            return solve_budget(source, prior=prior, **cfg.solve_kwargs()), ""
        except NotSolvable as exc:
            return refusal(prior.name, cfg.level, cfg.delta, cfg.trials or default_trials(prior),
                           exc), ""
    except (ImageError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def store_image(out: Path, path: Path, payload) -> None:
    """Write one image's outputs under OUT/images/<name>/ (see the module docstring)."""
    from .audit import AuditResult
    from .solve import write_solve

    folder = image_dir(out, path)
    if isinstance(payload, AuditResult):
        write_outputs(payload, folder)
    elif isinstance(payload, dict):
        write_solve(folder, refused=payload)
    else:
        write_solve(folder, payload)


def audit_image(path: Path, out: Path, cfg: BatchConfig, prior=None) -> dict:
    """Audit (or solve) one file and write its outputs; returns {"name", "ok", "error"}."""
    from .priors import load_prior

    payload, error = compute_image(path, cfg, prior if prior is not None else load_prior(cfg.prior))
    if payload is None:
        return {"name": path.name, "ok": False, "error": error}
    store_image(out, path, payload)
    return {"name": path.name, "ok": True, "error": ""}


def _eta(done: int, total: int, t0: float) -> str:
    if done == 0:
        return "estimating"
    left = (time.perf_counter() - t0) / done * (total - done)
    return f"{left / 60:.1f} min left" if left >= 60 else f"{left:.0f} s left"


def run_batch(folder: Path, out: Path, cfg: BatchConfig, *, engine: str = "local",
              workers: int = 1, address: str | None = None,
              progress: Progress | None = None) -> dict:
    """Audit every image of ``folder`` not yet complete under ``out``; then write the
    errors, the summary and the report. Returns counts."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    accounting.validate_delta(cfg.delta)
    if cfg.solve:
        from .solve import LEVELS

        if cfg.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {cfg.level!r}")
        if not 0 < cfg.max_fraction < 1:
            raise ValueError(f"the fraction of images allowed to fail must lie strictly between "
                             f"0 and 1, got {cfg.max_fraction}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    files = list_images(folder)
    todo = [p for p in files if not is_complete(out, p, cfg)]
    say = progress or (lambda d, n, m: None)
    t0 = time.perf_counter()
    results: list[dict] = []
    say(0, len(todo), f"{len(files) - len(todo)} of {len(files)} files already complete")
    if engine == "local":
        import torch

        from .priors import load_prior

        prior = load_prior(cfg.prior)
        before = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            for k, path in enumerate(todo):
                results.append(audit_image(path, out, cfg, prior))
                say(k + 1, len(todo), f"{path.name}; {_eta(k + 1, len(todo), t0)}")
        finally:
            torch.set_num_threads(before)
    else:
        from .distributed import run_on_ray

        for k, r in enumerate(run_on_ray(todo, out, cfg, workers=workers, address=address)):
            results.append(r)
            say(k + 1, len(todo), f"{r['name']}; {_eta(k + 1, len(todo), t0)}")
    errors = [r for r in results if not r["ok"]]
    _write_errors(out, errors)
    if cfg.solve:
        from .solve_report import summarize_solve, write_solve_outputs

        write_solve_outputs(out, summarize_solve(out, cfg), cfg, engine=engine, workers=workers,
                            n_errors=len(errors))
    else:
        summary = summarize_batch(out, cfg)
        write_summary(out, summary)
        write_report(out, summary, cfg, engine=engine, workers=workers, n_errors=len(errors))
    return {"files": len(files), "audited": len(results) - len(errors),
            "skipped_complete": len(files) - len(todo), "errors": len(errors),
            "elapsed_s": time.perf_counter() - t0}


def _write_errors(out: Path, errors: list[dict]) -> None:
    def write(p: Path) -> None:
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "reason"])
            for e in errors:
                w.writerow([e["name"], e["error"]])

    _atomic_write(Path(out) / "errors.csv", write)


def _load(out: Path) -> list[dict]:
    """Every complete image: its name, verdicts.json and metrics.json."""
    rows = []
    for d in sorted((Path(out) / "images").iterdir()):
        v, m = d / "verdicts.json", d / "metrics.json"
        if v.is_file() and m.is_file():
            rows.append({"name": d.name, "verdicts": json.loads(v.read_text()),
                         "metrics": json.loads(m.read_text())})
    return rows


def summarize_batch(out: Path, cfg: BatchConfig | None = None) -> list[dict]:
    """One row per budget over the complete images: how many were audited, how many judged
    images reach each level (recognisable, partly, undetermined, protected), the fraction
    exposed (recognisable or partly) with a Wilson 95% interval over images, the fractions
    with the attribute revealed and outside the prior's domain, and mean similarities."""
    images = _load(out)
    by_mu: dict[float, list] = {}
    for img in images:
        in_domain = (img["verdicts"].get("domain") or {}).get("in_domain", True)
        for b in img["verdicts"]["budgets"]:
            by_mu.setdefault(round(b["mu"], 12), []).append((img, b, in_domain))
    rows = []
    for mu in sorted(by_mu):
        entries = by_mu[mu]
        n = len(entries)
        judged = [(img, b) for img, b, ok in entries if ok and b.get("verdict") is not None]
        counts = {lab: sum(b["verdict"] == lab for _, b in judged) for lab in LABELS}
        rec = counts["recognisable"]
        exposed = rec + counts["partly recognisable"]
        attr = sum(bool(b["attribute"] and b["attribute"]["level"] == "revealed")
                   for _, b in judged)
        lo, hi = wilson_interval(exposed, len(judged)) if judged else (math.nan, math.nan)
        sims = [m for img, _, _ in entries for m in img["metrics"]
                if math.isclose(m["mu"], entries[0][1]["mu"])]

        def mean(who, key):
            vals = [s[who][key] for s in sims if s[who].get(key) is not None]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        release = entries[0][0]["verdicts"].get("release") or {}
        rows.append({
            "mu": entries[0][1]["mu"], "eps": entries[0][1]["eps"], "delta": entries[0][1]["delta"],
            "clip_norm": release.get("clip_norm"),
            "images": n, "judged": len(judged), "out_of_domain": n - len(judged),
            "out_of_domain_fraction": (n - len(judged)) / n,
            "recognisable": rec, "partly_recognisable": counts["partly recognisable"],
            "undetermined": counts["undetermined"], "not_recognisable": counts["not recognisable"],
            "exposed": exposed, "exposed_fraction": exposed / len(judged) if judged else None,
            "exposed_lo": lo, "exposed_hi": hi,
            "attribute_revealed_fraction": attr / len(judged) if judged else None,
            "recon_ssim": mean("recon", "ssim"), "noisy_ssim": mean("noisy", "ssim"),
            "recon_mse": mean("recon", "mse"), "noisy_mse": mean("noisy", "mse"),
            "recon_lpips": mean("recon", "lpips"),
        })
    return rows


def write_summary(out: Path, summary: list[dict], name: str = "summary.csv") -> None:
    def write(p: Path) -> None:
        fields = list(dict.fromkeys(k for r in summary for k in r)) or ["mu"]
        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in summary:
                w.writerow({k: "" if r.get(k) is None else r[k] for k in fields})

    _atomic_write(Path(out) / name, write)


def _exposure(img: dict) -> tuple[float, float]:
    """How exposed an image is: the smallest mu at which it is recognisable (inf if never),
    then the identification rate at the largest budget (higher first)."""
    budgets = img["verdicts"]["budgets"]
    first = min((b["mu"] for b in budgets if b.get("verdict") in ("recognisable", "partly recognisable")),
                default=math.inf)
    return first, -max((b["gallery"]["rate"] for b in budgets if b.get("verdict") is not None),
                       default=0.0)


def _levels(row: dict) -> str:
    """A summary row's count of judged images at each level, in words."""
    return (f"{row['recognisable']} / {row['partly_recognisable']} / {row['undetermined']} / "
            f"{row['not_recognisable']} of {row['judged']}")


def parameter_tables(params: dict) -> str:
    """The report's "Parameters" and "Versions" sections (HTML)."""
    esc = html.escape
    rows = lambda d: "".join(f"<tr><th scope='row'>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                             for k, v in d.items())
    return (f"<h2>Parameters</h2><table>{rows(params)}</table>"
            f"<h2>Versions</h2><table>{rows(package_versions())}</table>")


def write_report(out: Path, summary: list[dict], cfg: BatchConfig, *, engine: str,
                 workers: int, n_errors: int, top: int = 8) -> Path:
    """report.html: the fraction recognisable against the budget, the most exposed images
    with their reconstructions, out-of-domain images apart, every parameter; offline."""
    import base64

    from .plots import dataset_figure

    out = Path(out)
    images = _load(out)
    esc = html.escape
    fig = dataset_figure(summary, cfg.delta)
    judged = [i for i in images if (i["verdicts"].get("domain") or {}).get("in_domain", True)]
    outside = [i for i in images if i not in judged]
    exposed = sorted(judged, key=_exposure)[:top]

    def grid(name: str) -> str:
        data = base64.b64encode((out / "images" / name / "grid.png").read_bytes()).decode()
        return f"<img src='data:image/png;base64,{data}' alt='{esc(name)}: original, " \
               "privatized and reconstructions at each budget' style='max-width:100%'>"

    rows = "".join(
        f"<tr><td>{r['eps']:.4g}</td><td>{r['mu']:.4g}</td><td>{r['images']}</td>"
        f"<td>{r['out_of_domain']}</td><td>{_levels(r)}"
        + (f" (exposed {r['exposed_fraction']:.0%}; 95% CI {r['exposed_lo']:.0%} to "
           f"{r['exposed_hi']:.0%})" if r["judged"] else "") + "</td><td>"
        + ("n/a" if r["attribute_revealed_fraction"] is None else
           f"{r['attribute_revealed_fraction']:.0%}") + "</td></tr>" for r in summary)
    params = {**asdict(cfg), "engine": engine,
              "workers": workers, "images complete": len(images), "unreadable files": n_errors}
    page = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Batch privacy audit</title></head><body>",
        "<h1>Batch privacy audit</h1>",
        f"<p>{len(images)} images; {len(outside)} outside the prior's domain (not judged); "
        f"{n_errors} unreadable files (errors.csv). Generated "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.</p>",
        fig.to_html(full_html=False, include_plotlyjs="inline"),
        "<table><caption>Per budget</caption><tr><th scope='col'>eps</th>"
        "<th scope='col'>mu</th><th scope='col'>images</th><th scope='col'>outside the domain</th>"
        "<th scope='col'>recognisable / partly / undetermined / not recognisable</th>"
        "<th scope='col'>attribute revealed</th></tr>"
        f"{rows}</table>",
        f"<h2>The {len(exposed)} most exposed images</h2>",
        "<p>Recognisable or partly recognisable at the smallest budget first.</p>",
        "".join(f"<h3>{esc(i['name'])}</h3>{grid(i['name'])}" for i in exposed),
        "<h2>Outside the prior's domain (no verdict)</h2>",
        "<ul>" + "".join(f"<li>{esc(i['name'])}</li>" for i in outside) + "</ul>",
        parameter_tables(params),
        "</body></html>"]
    path = out / "report.html"
    _atomic_write(path, lambda p: p.write_text("\n".join(page), encoding="utf-8"))
    return path
