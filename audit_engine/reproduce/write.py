"""Writing a reproduction: rows.csv (every number), summary.csv, run.json, tables.md, the
figures as PNG and as one HTML page, and examples.png."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..docblocks import fill_file
from .data import IN_DOMAIN
from .experiment import Reproduction
from .figures import figures, to_plotly, to_png
from .stats import summarize, write_csv
from .tables import tables

__all__ = ["run_info", "examples_image", "write_reproduction"]


def run_info(rep: Reproduction) -> dict:
    """run.json: what the figures and tables need besides summary.csv, and how it was run."""
    from ..files import package_versions

    cfg = rep.config
    return {
        "command": " ".join(["python -m audit_engine"] + sys.argv[1:]) if sys.argv else None,
        "config": asdict(cfg) | {"mus": list(cfg.mus), "ood": list(cfg.ood)},
        "prior": rep.prior_name,
        "targets": (
            f"the folder {Path(cfg.images).name}"
            if cfg.images
            else "held out from the prior's training, shipped beside it"
        ),
        "elapsed_s": rep.elapsed_s,
        "set_sizes": rep.set_sizes,
        "clip_norms": rep.clip_norms,
        "pixels": rep.pixels,
        "pool_size": rep.pool_size,
        "n_candidates": rep.n_candidates,
        "tau_ssim": rep.tau,
        "eta_mse": rep.eta,
        "psnr_threshold": cfg.psnr_threshold,
        "kappa_candidate": rep.kappa_candidate,
        "kappa_threshold": rep.kappa_threshold,
        "kappa_threshold_best_guess": rep.kappa_threshold_guess,
        "baselines": rep.baselines,
        "lpips": rep.lpips_note,
        "lpips_available": rep.lpips_available,
        "has_attribute": rep.has_attribute,
        "skipped": rep.skipped,
        "dtype": rep.dtype,
        "device": rep.device,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "versions": package_versions(),
    }


def examples_image(rep: Reproduction, out: Path) -> Path:
    """Per set: for 4 images, a row of noisy observations and a row of reconstructions."""
    from ..outputs.report import tile

    rows = []
    for ex in rep.examples.values():
        m = len(ex["mus"])
        for k in range(len(ex["original"])):
            rows += [
                torch.cat([ex["original"][k][None], ex["noisy"][k]]),
                torch.cat([ex["original"][k][None], ex["recon"][k]]),
            ]
    path = out / "examples.png"
    tile(torch.cat(rows), cols=m + 1, scale=2).save(path)
    return path


def write_reproduction(rep: Reproduction, out: Path, *, doc: Path | None = None) -> dict[str, Path]:
    """Every output of a run under ``out``; with ``doc``, its generated blocks refreshed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rep)
    info = run_info(rep)
    paths = {
        "rows": out / "rows.csv",
        "summary": out / "summary.csv",
        "run": out / "run.json",
        "tables": out / "tables.md",
        "html": out / "reproduction.html",
    }
    write_csv(paths["rows"], rep.rows)
    write_csv(paths["summary"], summary)
    paths["run"].write_text(json.dumps(info, indent=2) + "\n")
    blocks = tables(summary, info)
    paths["tables"].write_text("\n\n".join(f"## {k}\n\n{v}" for k, v in blocks.items()) + "\n")
    figs = figures(summary, info)
    html = [
        "<html><head><meta charset='utf-8'><title>Reproduction</title></head><body>",
        f"<h1>Visual privacy auditing: reproduction on {rep.prior_name}</h1>",
        f"<p>{rep.set_sizes[IN_DOMAIN]} target images; LPIPS: {rep.lpips_note}; run time "
        f"{rep.elapsed_s:.0f} s.</p>",
    ]
    for i, fig in enumerate(figs):
        html.append(
            to_plotly(fig).to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
        )
        paths[fig.key] = to_png(fig, out / f"{fig.key}.png")
    html.append("</body></html>")
    paths["html"].write_text("\n".join(html))
    paths["examples"] = examples_image(rep, out)
    if doc is not None:
        fill_file(doc, blocks)
        paths["doc"] = Path(doc)
    return paths
