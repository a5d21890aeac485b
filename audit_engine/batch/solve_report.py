"""The data set's answer of a solve batch (``batch --solve``): from each image's largest safe
budget (solve.py) to the largest budget at which at most a chosen fraction of the images
fails the level, and its files: solve.json, budgets.csv, summary.csv, report.html."""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict
from pathlib import Path

from ..audit.solve import SEARCH_RANGE, dataset_budget
from ..audit.verdict import wilson_interval
from ..files import atomic_write
from ..maths import accounting
from ..outputs.page import figure_html, generated_at, html_page, parameter_sections
from .config import BatchConfig
from .summary import write_summary

__all__ = ["summarize_solve", "write_solve_outputs", "dataset_sentence"]


def _load(out: Path) -> list[dict]:
    rows = []
    for d in sorted((Path(out) / "images").iterdir()):
        f = d / "solve.json"
        if f.is_file():
            rows.append({"name": d.name, **json.loads(f.read_text())})
    return rows


def summarize_solve(out: Path, cfg: BatchConfig) -> dict:
    """{"dataset": the answer, "images": one row per image, "curve": the fraction of the
    judged images failing the level at each per-image budget, with its Wilson interval}."""
    images = _load(out)
    judged = [r for r in images if r["in_domain"] and not r.get("refused")]
    per_image = [r["mu_max"] for r in judged]
    answer = dataset_budget(per_image, max_fraction=cfg.max_fraction, search_high=SEARCH_RANGE[1])
    mu = answer["mu_max"]
    answer.update(
        level=cfg.level,
        max_fraction=cfg.max_fraction,
        delta=cfg.delta,
        prior=images[0]["prior"] if images else cfg.prior,
        images=len(images),
        out_of_domain=sum(not r["in_domain"] for r in images),
        refused=sum(bool(r.get("refused")) for r in images),
        attribute=next(
            (
                g["attribute_name"]
                for r in images
                for g in r.get("grid", [])
                if g.get("attribute_name")
            ),
            "class",
        ),
        eps_max=None if mu is None else accounting.eps_from_mu(mu, cfg.delta),
    )
    answer["sentence"] = dataset_sentence(answer)
    curve = []
    n = len(per_image)
    for m in sorted({0.0 if v is None else float(v) for v in per_image}):
        if m <= 0:
            continue
        failing = sum((0.0 if v is None else v) < m for v in per_image)
        lo, hi = wilson_interval(failing, n)
        curve.append(
            {
                "mu": m,
                "eps": accounting.eps_from_mu(m, cfg.delta),
                "delta": cfg.delta,
                "judged": n,
                "failing": failing,
                "still_holding_fraction": 1 - failing / n,
                "failing_fraction": failing / n,
                "failing_lo": lo,
                "failing_hi": hi,
                "within_target": hi <= cfg.max_fraction,
            }
        )
    rows = [
        {
            "file": r["name"],
            "in_domain": r["in_domain"],
            "mu_max": r["mu_max"],
            "eps_max": r["eps_max"],
            "bracket_lo": r["bracket"][0],
            "bracket_hi": r["bracket"][1],
            "evaluations": r["evaluations"],
            "trials": r["trials"],
            "refused": r.get("refused", ""),
        }
        for r in images
    ]
    return {"dataset": answer, "images": rows, "curve": curve}


def dataset_sentence(a: dict) -> str:
    if a["mu_max"] is None:
        return f"No budget can be given: {a['reason']}."
    if a["level"] == "not recognisable":
        what = (
            "neither an attacker who holds them among 10 candidates nor one who knows "
            "what such images look like picks them out of 10 of their kind more often "
            "than chance + the tolerance"
        )
    else:
        name = a.get("attribute", "class")
        what = (
            f"their {name} stays hidden: neither an attacker reading it off a "
            f"reconstruction nor one reading it off the release names it more often than "
            "its base rate + the tolerance"
        )
    return (
        f"Up to eps = {a['eps_max']:.3g} (delta = {a['delta']:g}; mu = {a['mu_max']:.3g}), "
        f"at most {a['max_fraction']:.0%} of images like these (95% upper bound, over "
        f"{a['judged']} images judged, {a['failing_at_mu_max']} of which are not shown "
        f"protected at this budget) lack evidence that {what}."
    )


def write_solve_outputs(
    out: Path, summary: dict, cfg: BatchConfig, *, engine: str, workers: int, n_errors: int
) -> None:
    out = Path(out)
    atomic_write(
        out / "solve.json", lambda p: p.write_text(json.dumps(summary["dataset"], indent=2))
    )
    write_summary(out, summary["images"], name="budgets.csv")
    write_summary(out, summary["curve"] or [{"mu": ""}])
    _write_report(out, summary, cfg, engine=engine, workers=workers, n_errors=n_errors)


def _write_report(out: Path, summary: dict, cfg: BatchConfig, *, engine, workers, n_errors):
    from ..outputs.plots import solve_figure

    esc = html.escape
    a = summary["dataset"]
    fig = solve_figure(summary["curve"], a, cfg.delta)
    rows = "".join(
        f"<tr><td>{esc(r['file'])}</td><td>{'yes' if r['in_domain'] else 'no'}</td><td>"
        + ("n/a" if r["eps_max"] is None else f"{r['eps_max']:.4g}")
        + "</td><td>"
        + ("n/a" if r["mu_max"] is None else f"{r['mu_max']:.4g}")
        + "</td><td>"
        + esc(r["refused"] or "")
        + "</td></tr>"
        for r in sorted(
            summary["images"], key=lambda r: math.inf if r["mu_max"] is None else r["mu_max"]
        )
    )
    params = {**asdict(cfg), "engine": engine, "workers": workers, "unreadable files": n_errors}
    page = html_page(
        "Largest safe budget of a data set",
        [
            f"<p><strong>{esc(a['sentence'])}</strong></p>",
            f"<p>{a['images']} images; {a['out_of_domain']} outside the prior's domain and "
            f"{a['refused']} refused in all (not judged); {n_errors} unreadable files (errors.csv). "
            f"Level: {esc(a['level'])}. Generated {generated_at()}.</p>",
            figure_html([fig]),
            "<table><caption>Each image's largest safe budget (most exposed first)</caption><tr>"
            "<th scope='col'>file</th><th scope='col'>in the prior's domain</th>"
            "<th scope='col'>largest eps</th><th scope='col'>largest mu</th>"
            f"<th scope='col'>refused because</th></tr>{rows}</table>",
            parameter_sections(params),
        ],
    )
    atomic_write(out / "report.html", lambda p: p.write_text(page, encoding="utf-8"))
