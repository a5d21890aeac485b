"""A batch audit's summary: per budget, how many images reach each level (summary.csv), and
its report (report.html)."""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..audit.verdict import LABELS, wilson_interval
from ..files import atomic_write
from ..outputs.page import figure_html, generated_at, html_page, parameter_sections
from .config import BatchConfig

__all__ = ["summarize_batch", "write_summary", "write_report"]


def _load(out: Path) -> list[dict]:
    """Every complete image: its name, verdicts.json and metrics.json."""
    rows = []
    for d in sorted((Path(out) / "images").iterdir()):
        v, m = d / "verdicts.json", d / "metrics.json"
        if v.is_file() and m.is_file():
            rows.append(
                {
                    "name": d.name,
                    "verdicts": json.loads(v.read_text()),
                    "metrics": json.loads(m.read_text()),
                }
            )
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
        attr = sum(
            bool(b["attribute"] and b["attribute"]["level"] == "revealed") for _, b in judged
        )
        claimed = [b["attribute"] for _, b in judged if b.get("attribute")]
        attr_lo, attr_hi = wilson_interval(attr, len(claimed)) if claimed else (math.nan, math.nan)
        lo, hi = wilson_interval(exposed, len(judged)) if judged else (math.nan, math.nan)
        sims = [
            m
            for img, _, _ in entries
            for m in img["metrics"]
            if math.isclose(m["mu"], entries[0][1]["mu"])
        ]

        def mean(who, key):
            vals = [s[who][key] for s in sims if s[who].get(key) is not None]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        release = entries[0][0]["verdicts"].get("release") or {}
        rows.append(
            {
                "mu": entries[0][1]["mu"],
                "eps": entries[0][1]["eps"],
                "delta": entries[0][1]["delta"],
                "clip_norm": release.get("clip_norm"),
                "images": n,
                "judged": len(judged),
                "out_of_domain": n - len(judged),
                "out_of_domain_fraction": (n - len(judged)) / n,
                "recognisable": rec,
                "partly_recognisable": counts["partly recognisable"],
                "undetermined": counts["undetermined"],
                "not_recognisable": counts["not recognisable"],
                "exposed": exposed,
                "exposed_fraction": exposed / len(judged) if judged else None,
                "exposed_lo": lo,
                "exposed_hi": hi,
                "attribute_revealed_fraction": attr / len(judged) if judged else None,
                # over the images with an attribute claim (the classifier reads them clearly)
                "attribute_name": claimed[0]["name"] if claimed else None,
                "attribute_claimed": len(claimed),
                "attribute_revealed": attr,
                "attribute_not_revealed": sum(a["level"] == "not revealed" for a in claimed),
                "attribute_revealed_lo": attr_lo,
                "attribute_revealed_hi": attr_hi,
                "recon_ssim": mean("recon", "ssim"),
                "noisy_ssim": mean("noisy", "ssim"),
                "recon_mse": mean("recon", "mse"),
                "noisy_mse": mean("noisy", "mse"),
                "recon_lpips": mean("recon", "lpips"),
                **_budget_quantiles(judged),
            }
        )
    return rows


QUANTILES = (0.1, 0.5, 0.9)  # the spread of the images' budgets in summary.csv


def _budget_quantiles(judged: list) -> dict:
    """Over the judged images at one nominal budget: the 10th, 50th and 90th percentiles of
    their own budgets (eps) and of what each attacker demonstrably uses (eps; 0 when none is
    shown); empty where verdicts.json predates them."""
    out = {}
    columns = {
        "own_eps": lambda b: b.get("own_eps"),
        "gallery_demonstrated_eps": lambda b: b["gallery"].get("demonstrated_eps"),
        "prior_demonstrated_eps": lambda b: b["identification"].get("demonstrated_eps"),
    }
    for name, get in columns.items():
        values = [v for v in (get(b) for _, b in judged) if v is not None]
        for q in QUANTILES:
            key = f"{name}_p{int(q * 100)}"
            out[key] = float(np.quantile(values, q)) if values else None
    return out


def write_summary(out: Path, summary: list[dict], name: str = "summary.csv") -> None:
    def write(p: Path) -> None:
        fields = list(dict.fromkeys(k for r in summary for k in r)) or ["mu"]
        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in summary:
                w.writerow({k: "" if r.get(k) is None else r[k] for k in fields})

    atomic_write(Path(out) / name, write)


def _exposure(img: dict) -> tuple[float, float]:
    """How exposed an image is: the smallest mu at which it is recognisable (inf if never),
    then the identification rate at the largest budget (higher first)."""
    budgets = img["verdicts"]["budgets"]
    first = min(
        (b["mu"] for b in budgets if b.get("verdict") in ("recognisable", "partly recognisable")),
        default=math.inf,
    )
    return first, -max(
        (b["gallery"]["rate"] for b in budgets if b.get("verdict") is not None), default=0.0
    )


def _levels(row: dict) -> str:
    """A summary row's count of judged images at each level, in words."""
    return (
        f"{row['recognisable']} / {row['partly_recognisable']} / {row['undetermined']} / "
        f"{row['not_recognisable']} of {row['judged']}"
    )


def _own_share(img: dict) -> float | None:
    """An image's own budget as a share of the nominal one, min(1, ||x|| / C) (the same at
    every budget); None where verdicts.json predates it."""
    for b in img["verdicts"]["budgets"]:
        if b.get("own_mu") is not None and b["mu"] > 0:
            return b["own_mu"] / b["mu"]
    return None


def _own_budget_section(judged: list[dict], top: int) -> str:
    """The images most exposed by their own budget: the largest share of the nominal budget
    (an image at or above the clipping bound gets all of it)."""
    shares = sorted(
        ((s, i["name"]) for i in judged if (s := _own_share(i)) is not None), reverse=True
    )
    if not shares:
        return ""
    rows = "".join(
        f"<tr><td class='left'>{html.escape(name)}</td><td>{s:.0%}</td></tr>"
        for s, name in shares[:top]
    )
    return (
        f"<h2>By their own budget: the {min(top, len(shares))} most exposed of "
        f"{len(shares)}</h2><p>An image's own budget is mu min(1, ||x|| / C): an image "
        "smaller than the clipping bound C is protected better than the nominal budget says. "
        "Share of the nominal budget each image gets (100%: all of it):</p>"
        "<table><tr><th scope='col'>image</th><th scope='col'>own budget / nominal</th></tr>"
        f"{rows}</table>"
    )


def write_report(
    out: Path,
    summary: list[dict],
    cfg: BatchConfig,
    *,
    engine: str,
    workers: int,
    n_errors: int,
    top: int = 8,
) -> Path:
    """report.html: the fraction recognisable against the budget, the most exposed images
    with their reconstructions, out-of-domain images apart, every parameter; offline."""
    import base64

    from ..outputs.plots import dataset_figure

    out = Path(out)
    images = _load(out)
    esc = html.escape
    fig = dataset_figure(summary, cfg.delta)
    judged = [i for i in images if (i["verdicts"].get("domain") or {}).get("in_domain", True)]
    outside = [i for i in images if i not in judged]
    exposed = sorted(judged, key=_exposure)[:top]

    def grid(name: str) -> str:
        data = base64.b64encode((out / "images" / name / "grid.png").read_bytes()).decode()
        return (
            f"<img class='grid' src='data:image/png;base64,{data}' alt='{esc(name)}: "
            "original, privatized and reconstructions at each budget'>"
        )

    rows = "".join(
        f"<tr><td>{r['eps']:.4g}</td><td>{r['mu']:.4g}</td><td>{r['images']}</td>"
        f"<td>{r['out_of_domain']}</td><td>{_levels(r)}"
        + (
            f" (recognisable or partly {r['exposed_fraction']:.0%}; 95% CI {r['exposed_lo']:.0%} to "
            f"{r['exposed_hi']:.0%})"
            if r["judged"]
            else ""
        )
        + "</td><td>"
        + (
            "n/a (no attribute claim)"
            if not r["attribute_claimed"]
            else f"{r['attribute_revealed']} of {r['attribute_claimed']} (95% CI "
            f"{r['attribute_revealed_lo']:.0%} to {r['attribute_revealed_hi']:.0%})"
        )
        + "</td></tr>"
        for r in summary
    )
    name = next((r["attribute_name"] for r in summary if r["attribute_name"]), "attribute")
    params = {
        **asdict(cfg),
        "engine": engine,
        "workers": workers,
        "images complete": len(images),
        "unreadable files": n_errors,
    }
    page = html_page(
        "Batch privacy audit",
        [
            f"<p>{len(images)} images; {len(outside)} outside the prior's domain (not judged); "
            f"{n_errors} unreadable files (errors.csv). Generated {generated_at()}.</p>",
            figure_html([fig]),
            "<table><caption>Per budget</caption><tr><th scope='col'>eps</th>"
            "<th scope='col'>mu</th><th scope='col'>images</th><th scope='col'>outside the domain</th>"
            "<th scope='col'>recognisable / partly / undetermined / not recognisable</th>"
            f"<th scope='col'>{esc(name)} revealed (of the images it is claimed for)</th></tr>"
            f"{rows}</table>",
            (
                f"<h2>The {len(exposed)} most exposed images</h2>"
                if len(exposed) < len(judged)
                else f"<h2>All {len(exposed)} images judged, the most exposed first</h2>"
            ),
            "<p>Recognisable or partly recognisable at the smallest budget first.</p>",
            "".join(f"<h3>{esc(i['name'])}</h3>{grid(i['name'])}" for i in exposed),
            _own_budget_section(judged, top),
            (
                "<h2>Outside the prior's domain (no verdict)</h2><ul>"
                + "".join(f"<li>{esc(i['name'])}</li>" for i in outside)
                + "</ul>"
                if outside
                else ""
            ),
            parameter_sections(params),
        ],
    )
    path = out / "report.html"
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"))
    return path
