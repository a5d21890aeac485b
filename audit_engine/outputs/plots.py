"""Plotly figures of an audit: similarity against the budget, and the theoretical bounds.
Never imports gradio."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..audit.run import AuditResult
from ..maths import accounting, bounds

__all__ = [
    "similarity_figure",
    "bound_figure",
    "audit_figures",
    "budgets_figure",
    "budgets_table",
    "budget_axis",
    "dataset_figure",
    "solve_figure",
]

_DIFF, _NOISY, _BASE = "#1f77b4", "#ff7f0e", "#555555"
_METRICS = [
    ("lpips", "LPIPS (lower = more similar)"),
    ("ssim", "SSIM (higher = more similar)"),
    ("psnr", "PSNR in dB (higher = more similar)"),
]


def budget_axis(mode: str) -> str:
    return "privacy budget eps (log scale)" if mode == "eps" else "privacy budget mu (log scale)"


def _x(mu: float, mode: str, delta: float) -> float:
    return accounting.eps_from_mu(mu, delta) if mode == "eps" else mu


def _means(result: AuditResult, who: str, key: str) -> tuple[list[float], list[float | None]]:
    by_mu: dict[float, list[float]] = {}
    for s in result.samples:
        v = getattr(s, who).get(key)
        by_mu.setdefault(s.mu, [])
        if v is not None and np.isfinite(v):
            by_mu[s.mu].append(v)
    mus = sorted(by_mu)
    return mus, [float(np.mean(by_mu[m])) if by_mu[m] else None for m in mus]


def similarity_figure(
    result: AuditResult,
    *,
    mode: str = "eps",
    current_mu: float | None = None,
    baseline: dict | None = None,
) -> go.Figure:
    """LPIPS, SSIM and PSNR against the budget: diffusion vs noisy-observation attack."""
    delta = result.delta
    panels = [m for m in _METRICS if m[0] != "lpips" or result.lpips_available]
    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=[t for _, t in panels], horizontal_spacing=0.07
    )
    labelled = False
    for col, (key, _) in enumerate(panels, start=1):
        for who, name, color in (
            ("recon", "diffusion reconstruction", _DIFF),
            ("noisy", "noisy observation (no prior)", _NOISY),
        ):
            mus, ys = _means(result, who, key)
            if all(y is None for y in ys):
                continue
            fig.add_trace(
                go.Scatter(
                    x=[_x(m, mode, delta) for m in mus],
                    y=ys,
                    mode="lines+markers",
                    name=name,
                    line=dict(color=color),
                    legendgroup=who,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        if baseline and baseline.get(key) is not None:
            note = (
                {}
                if labelled
                else dict(annotation_text="unrelated images", annotation_position="top left")
            )
            fig.add_hline(
                y=baseline[key], line=dict(color=_BASE, dash="dash"), row=1, col=col, **note
            )
            labelled = True
        if current_mu is not None:
            fig.add_vline(
                x=_x(current_mu, mode, delta), line=dict(color="#d62728", width=2), row=1, col=col
            )
        fig.update_xaxes(type="log", title_text=budget_axis(mode), row=1, col=col)
    if not result.lpips_available:
        fig.update_layout(
            title=dict(
                text="LPIPS is not shown: its backbone weights are not available here",
                font=dict(size=12),
            )
        )
    fig.update_layout(
        height=400,
        margin=dict(l=40, r=20, t=80, b=40),
        legend=dict(orientation="h", y=-0.25),
        template="plotly_white",
    )
    return fig


def bound_figure(
    *,
    mode: str = "eps",
    delta: float = 1e-5,
    current_mu: float | None = None,
    mu_range: tuple[float, float] = (0.05, 500.0),
    kappas: tuple[float, ...] = (0.5, 0.1, 0.01, 0.001),
    clip_norm: float | None = None,
    pixels: int | None = None,
    psnr_db: float = 20.0,
) -> go.Figure:
    """ReRo bound on reconstruction success against the budget, for several baselines kappa;
    with the release's public clipping bound C, also P[noisy observation reaches psnr_db]
    (Ziller et al.) for its noise std C / mu.

    The release is clip_C(x) + (C / mu) xi, mu-GDP for adding or removing the image, which
    is what the ReRo bound assumes. The Ziller curve is the law of the unclipped observation
    against clip_C(x); the picture shown is clipped to [0, 1] and does better than the law at
    high budgets."""
    mus = np.geomspace(*mu_range, 200)
    xs = [_x(m, mode, delta) for m in mus]
    fig = go.Figure()
    for k in kappas:
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=bounds.rero_bound_gdp(mus, k),
                mode="lines",
                name=f"ReRo bound, prior success kappa = {k:g}",
            )
        )
    if clip_norm and pixels:
        p = bounds.psnr_sf(psnr_db, s=clip_norm / mus, d=pixels)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=p,
                mode="lines",
                line=dict(dash="dot", color="black"),
                name=f"Ziller et al.: P[PSNR >= {psnr_db:g} dB] of the unclipped observation "
                "(the picture shown is clipped to [0, 1] and does better at high budgets)",
            )
        )
    if current_mu is not None:
        fig.add_vline(x=_x(current_mu, mode, delta), line=dict(color="#d62728", width=2))
    fig.update_xaxes(type="log", title_text=budget_axis(mode))
    fig.update_yaxes(range=[0, 1.02], title_text="probability")
    fig.update_layout(
        height=360,
        margin=dict(l=40, r=20, t=50, b=40),
        template="plotly_white",
        legend=dict(orientation="h", y=-0.3),
        title=dict(
            text="Bounds for any attacker on this release (clip_C(x) + "
            "(C / mu) xi, mu-GDP for adding or removing the image)",
            font=dict(size=12),
        ),
    )
    return fig


def _corridor(result: AuditResult, mode: str) -> list[tuple]:
    """(nominal, own, demonstrated by the gallery and by the prior attacker) of each judged
    budget, as eps at the audit's delta or as mu (None: none demonstrated)."""
    rows = []
    for v in result.verdicts if result.no_verdict_reason() is None else []:
        at = (lambda m: v.eps_of(m)) if mode == "eps" else (lambda m: m)
        demo = [a.demonstrated_mu for a in (v.gallery, v.identification)]
        rows.append(
            (
                v.eps if mode == "eps" else v.mu,
                at(v.own_mu) if v.own_mu is not None else None,
                *(at(m) if m > 0 else None for m in demo),
            )
        )
    return rows


def budgets_figure(
    result: AuditResult, *, mode: str = "eps", current_mu: float | None = None
) -> go.Figure:
    """What eps means for this image, against the nominal budget: the nominal budget itself,
    the image's own (mu min(1, ||x|| / C)) and what each attacker demonstrably uses (lower
    bounds; maths/budgets.py), on log axes."""
    rows = _corridor(result, mode)
    fig = go.Figure()
    unit = "eps" if mode == "eps" else "mu"
    if rows:
        xs = [r[0] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=xs,
                mode="lines",
                name=f"nominal {unit}",
                line=dict(color=_BASE, dash="dash"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[r[1] for r in rows],
                mode="lines+markers",
                name="this image's own budget (no attacker can use more)",
                line=dict(color="#2ca02c"),
            )
        )
        for k, (name, colour) in enumerate(
            [
                ("shown used by an attacker who holds your image among 10", _NOISY),
                ("shown used by an attacker who only knows such images", _DIFF),
            ]
        ):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[r[2 + k] for r in rows],
                    mode="markers",
                    name=name + " (lower bound)",
                    marker=dict(color=colour, size=9),
                )
            )
    else:
        fig.add_annotation(
            text="no verdict, so no demonstrated budget (see the verdict)",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    if current_mu is not None and rows:
        x = accounting.eps_from_mu(current_mu, result.delta) if mode == "eps" else current_mu
        fig.add_vline(x=x, line=dict(color="#d62728", width=2))
    fig.update_xaxes(type="log", title_text=budget_axis(mode))
    fig.update_yaxes(type="log", title_text=f"{unit} for this image")
    fig.update_layout(
        height=360,
        margin=dict(l=40, r=20, t=50, b=40),
        template="plotly_white",
        legend=dict(orientation="h", y=-0.3),
        title=dict(
            text=f"What {unit} means for this image: nominal, its own, and what each "
            "attacker is shown to use",
            font=dict(size=12),
        ),
    )
    return fig


def budgets_table(result: AuditResult, *, mode: str = "eps") -> str:
    """budgets_figure's numbers as a markdown table (its text alternative)."""
    rows = _corridor(result, mode)
    if not rows:
        return ""
    unit = "eps" if mode == "eps" else "mu"
    f = lambda v: "none shown" if v is None else f"{v:.3g}"
    lines = [
        f"| nominal {unit} | this image's own | shown used: holds it among 10 | shown "
        "used: knows such images |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r[0]:.3g} | {f(r[1])} | {f(r[2])} | {f(r[3])} |" for r in rows]
    return "\n".join(lines)


def audit_figures(
    result: AuditResult,
    *,
    mode: str = "eps",
    baseline: dict | None = None,
    current_mu: float | None = None,
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The three plots of an audit, as the page and every report show them: similarity
    against the budget, the bounds for this release (its delta, clipping bound and pixels),
    and what the budget means for this image (budgets_figure)."""
    return (
        similarity_figure(result, mode=mode, current_mu=current_mu, baseline=baseline),
        bound_figure(
            mode=mode,
            delta=result.delta,
            current_mu=current_mu,
            clip_norm=result.clip_norm,
            pixels=result.original.numel(),
        ),
        budgets_figure(result, mode=mode, current_mu=current_mu),
    )


def dataset_figure(rows: list[dict], delta: float) -> go.Figure:
    """A data set's fraction exposed (recognisable or partly; with its 95% interval over
    images), fraction undetermined and fraction with the attribute revealed, against eps
    (batch.summarize_batch's rows)."""
    xs = [r["eps"] for r in rows]
    ys = [r["exposed_fraction"] for r in rows]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            name="recognisable or partly (95% interval over images)",
            error_y=dict(
                type="data",
                symmetric=False,
                array=[
                    0.0 if y is None else max(0.0, r["exposed_hi"] - y) for r, y in zip(rows, ys)
                ],
                arrayminus=[
                    0.0 if y is None else max(0.0, y - r["exposed_lo"]) for r, y in zip(rows, ys)
                ],
            ),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[None if not r["judged"] else r["undetermined"] / r["judged"] for r in rows],
            mode="lines+markers",
            name="undetermined",
            line=dict(dash="dot"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r["attribute_revealed_fraction"] for r in rows],
            mode="lines+markers",
            name="attribute revealed",
        )
    )
    fig.update_xaxes(type="log", title_text=f"privacy budget eps at delta = {delta:g} (log scale)")
    fig.update_yaxes(range=[0, 1.02], title_text="fraction of the images")
    fig.update_layout(
        title="Share of the images recognisable or partly recognisable",
        height=380,
        template="plotly_white",
        margin=dict(l=40, r=20, t=50, b=40),
    )
    return fig


def solve_figure(curve: list[dict], answer: dict, delta: float) -> go.Figure:
    """A solve batch's per-image budgets: the fraction of the judged images still meeting the
    level against eps (a step down at each image's largest safe budget), the allowed failing
    fraction's 95% upper bound, and the data set's answer (solve_report.summarize_solve)."""
    xs = [c["eps"] for c in curve]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=[c["still_holding_fraction"] for c in curve],
            mode="lines+markers",
            line_shape="hv",
            name=f"images still {answer['level']}",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[1 - c["failing_hi"] for c in curve],
            mode="lines",
            line=dict(dash="dot"),
            line_shape="hv",
            name="the same, 95% lower bound",
        )
    )
    fig.add_hline(
        y=1 - answer["max_fraction"],
        line_dash="dash",
        annotation_text=f"target: at most {answer['max_fraction']:.0%} fail",
    )
    if answer.get("eps_max"):
        fig.add_vline(
            x=answer["eps_max"],
            line_color="#b45309",
            annotation_text=f"data set: eps {answer['eps_max']:.3g}",
        )
    fig.update_xaxes(type="log", title_text=f"privacy budget eps at delta = {delta:g} (log scale)")
    fig.update_yaxes(range=[0, 1.02], title_text="fraction of the images judged")
    fig.update_layout(
        title="Images still protected against the budget",
        height=380,
        template="plotly_white",
        margin=dict(l=40, r=20, t=50, b=40),
    )
    return fig
