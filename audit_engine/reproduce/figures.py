"""The reproduction's figures, each described once (``figures``) and drawn by two renderers:
plotly for the HTML page, matplotlib for the PNG files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..maths import bounds
from .data import IN_DOMAIN

__all__ = [
    "COLORS",
    "LABELS",
    "METRIC_TITLES",
    "Series",
    "Panel",
    "Figure",
    "figures",
    "to_plotly",
    "to_png",
]

COLORS = {
    "recon": "#1f77b4",
    "noisy": "#ff7f0e",
    "candidate": "#2ca02c",
    "norm": "#8c564b",
    "noise_aware": "#9467bd",
    "law": "#000000",
    "unclipped": "#7f7f7f",
}
LABELS = {
    "recon": "diffusion attack (prior)",
    "noisy": "noisy observation (no prior)",
    "candidate": "candidate attack (Hayes et al.)",
}
METRIC_TITLES = {
    "ssim": "SSIM (higher = more similar)",
    "lpips": "LPIPS (lower = more similar)",
    "mse": "MSE (lower = more similar)",
}


@dataclass
class Series:
    label: str
    x: list[float]
    y: list
    color: str = "#000000"
    dash: str = "solid"  # solid | dash | dot
    markers: bool = True
    lo: list | None = None  # interval (error bars)
    hi: list | None = None


@dataclass
class Panel:
    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    hlines: list[tuple[float, str]] = field(default_factory=list)
    ylim: tuple[float, float] | None = None
    xlabel: str = "mu (GDP)"


@dataclass
class Figure:
    key: str
    title: str
    panels: list[Panel]
    cols: int


def _col(summary: list[dict], name: str, key: str) -> tuple[list[float], list]:
    rows = [s for s in summary if s["set"] == name]
    return [s["mu"] for s in rows], [s.get(key) for s in rows]


def _rate(summary: list[dict], key: str, label: str, color: str, dash: str = "solid") -> Series:
    mus, y = _col(summary, IN_DOMAIN, key)
    return Series(
        label,
        mus,
        y,
        color,
        dash,
        lo=_col(summary, IN_DOMAIN, f"{key}_lo")[1],
        hi=_col(summary, IN_DOMAIN, f"{key}_hi")[1],
    )


def figures(summary: list[dict], info: dict) -> list[Figure]:
    """Figures A, B, C and the attribute figure from the summary rows and run.json's facts."""
    mus = sorted({s["mu"] for s in summary})
    grid = list(np.geomspace(min(mus), max(mus), 200))
    base = info["baselines"]
    out = []

    keys = ["ssim"] + (["lpips"] if info["lpips_available"] else []) + ["mse"]
    panels = []
    for key in keys:
        p = Panel(METRIC_TITLES[key], key.upper())
        for who in ("recon", "noisy", "candidate"):
            x, y = _col(summary, IN_DOMAIN, f"{who}_{key}")
            se = [v or 0.0 for v in _col(summary, IN_DOMAIN, f"{who}_{key}_se")[1]]
            p.series.append(
                Series(
                    LABELS[who],
                    x,
                    y,
                    COLORS[who],
                    lo=[a - b if a is not None else None for a, b in zip(y, se)],
                    hi=[a + b if a is not None else None for a, b in zip(y, se)],
                )
            )
        if base[IN_DOMAIN].get(key) is not None:
            p.hlines.append((base[IN_DOMAIN][key], "unrelated images"))
        panels.append(p)
    out.append(
        Figure(
            "figure_a",
            f"Figure A: attacks on {info['set_sizes'][IN_DOMAIN]} "
            f"held-out images ({info['prior']}); bars: 1 standard error",
            panels,
            len(panels),
        )
    )

    names = list(base)
    panels = []
    for key in ("ssim", "mse"):
        for name in names:
            p = Panel(f"{name}: {key.upper()}", key.upper())
            for who in ("recon", "noisy"):
                x, y = _col(summary, name, f"{who}_{key}")
                p.series.append(Series(LABELS[who], x, y, COLORS[who]))
            p.hlines.append((base[name][key], "unrelated images"))
            panels.append(p)
    out.append(
        Figure("figure_b", "Figure B: the same prior under distribution shift", panels, len(names))
    )

    n = info["n_candidates"]
    ident = Panel(
        f"identifying the target among n = {n} candidates", "success rate", ylim=(0, 1.02)
    )
    ident.series += [
        Series(
            f"ReRo bound, kappa = 1/n = {info['kappa_candidate']:.3g}",
            grid,
            list(bounds.rero_bound_gdp(grid, info["kappa_candidate"])),
            COLORS["law"],
            "dash",
            markers=False,
        ),
        _rate(
            summary, "candidate_success", "candidate attack (nearest in L2)", COLORS["candidate"]
        ),
        _rate(summary, "norm_attack_success", "norm-only attack (self-check)", COLORS["norm"]),
        _rate(
            summary,
            "recon_identification_success",
            "diffusion attack: reconstruction nearest the target (SSIM)",
            COLORS["recon"],
        ),
    ]
    thr = Panel(f"reaching SSIM >= tau = {info['tau_ssim']:.3f}", "success rate", ylim=(0, 1.02))
    thr.series += [
        Series(
            f"ReRo bound, kappa of the threshold = {info['kappa_threshold']:.3g}",
            grid,
            list(bounds.rero_bound_gdp(grid, info["kappa_threshold"])),
            COLORS["law"],
            "dot",
            markers=False,
        ),
        _rate(summary, "recon_threshold_success", "diffusion attack", COLORS["recon"]),
    ]
    sig = _sigma_line(summary, grid)
    law = Panel(
        f"reaching MSE <= eta = {info['eta_mse']:.3g} or PSNR >= {info['psnr_threshold']:g} dB",
        "success rate",
        ylim=(0, 1.02),
    )
    psnr_eta = 10.0 ** (-info["psnr_threshold"] / 10.0)
    law.series += [
        Series(
            "Ziller law, MSE form (unclipped observation)",
            grid,
            list(bounds.mse_cdf(info["eta_mse"], s=sig, d=info["pixels"])),
            COLORS["law"],
            "dash",
            markers=False,
        ),
        Series(
            "Ziller law, PSNR form (unclipped observation)",
            grid,
            list(bounds.mse_cdf(psnr_eta, s=sig, d=info["pixels"])),
            COLORS["law"],
            "dot",
            markers=False,
        ),
        _rate(
            summary,
            "noisy_unclipped_mse_success",
            "noisy observation, unclipped: MSE",
            COLORS["unclipped"],
        ),
        _rate(
            summary,
            "noisy_mse_success",
            "noisy observation, clipped to [0, 1]: MSE",
            COLORS["noisy"],
        ),
        _rate(summary, "recon_mse_success", "diffusion attack: MSE", COLORS["recon"]),
        _rate(
            summary,
            "noisy_psnr_success",
            "noisy observation, clipped: PSNR",
            COLORS["noisy"],
            "dot",
        ),
        _rate(summary, "recon_psnr_success", "diffusion attack: PSNR", COLORS["recon"], "dot"),
    ]
    out.append(
        Figure(
            "figure_c",
            "Figure C: attack success against the ReRo bound and the "
            "Ziller law (bars: 95% bootstrap intervals over images)",
            [ident, thr, law],
            3,
        )
    )

    if info["has_attribute"]:
        p = Panel(
            "does the output carry the original's class?", "fraction with the label", ylim=(0, 1.02)
        )
        p.series += [
            _rate(
                summary,
                "attr_recon",
                "diffusion reconstruction, read by the classifier",
                COLORS["recon"],
            ),
            _rate(
                summary,
                "attr_noise_aware",
                "noisy observation, noise-aware classifier (Bayes, knows the noise)",
                COLORS["noise_aware"],
            ),
            _rate(
                summary,
                "attr_noisy",
                "noisy observation, read by the clean-image classifier",
                COLORS["noisy"],
                "dot",
            ),
        ]
        chance = [s["attr_chance"] for s in summary if s["set"] == IN_DOMAIN]
        p.hlines.append((max(chance), "most frequent class (a constant guess)"))
        out.append(Figure("figure_attribute", "Attribute disclosure", [p], 1))
    return out


def _sigma_line(summary: list[dict], grid: list[float]) -> np.ndarray:
    """The release's noise std along the grid: C / mu with the in-domain set's clip norm."""
    c = next(s["clip_norm"] for s in summary if s["set"] == IN_DOMAIN)
    return c / np.asarray(grid)


def _finite(v) -> float:
    return np.nan if v is None else float(v)


def to_plotly(fig: Figure):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = -(-len(fig.panels) // fig.cols)
    pf = make_subplots(rows=rows, cols=fig.cols, subplot_titles=[p.title for p in fig.panels])
    seen = set()
    for i, p in enumerate(fig.panels):
        r, c = i // fig.cols + 1, i % fig.cols + 1
        for s in p.series:
            err = None
            if s.lo is not None:
                y = np.array([_finite(v) for v in s.y])
                err = dict(
                    type="data",
                    symmetric=False,
                    array=np.clip(np.array([_finite(v) for v in s.hi]) - y, 0, None),
                    arrayminus=np.clip(y - np.array([_finite(v) for v in s.lo]), 0, None),
                )
            pf.add_trace(
                go.Scatter(
                    x=s.x,
                    y=[_finite(v) for v in s.y],
                    name=s.label,
                    mode="lines+markers" if s.markers else "lines",
                    line=dict(color=s.color, dash=s.dash),
                    error_y=err,
                    legendgroup=s.label,
                    showlegend=s.label not in seen,
                ),
                row=r,
                col=c,
            )
            seen.add(s.label)
        for y, label in p.hlines:
            pf.add_hline(
                y=y, line=dict(dash="dash", color="#555"), annotation_text=label, row=r, col=c
            )
        pf.update_xaxes(type="log", title_text=p.xlabel, row=r, col=c)
        pf.update_yaxes(title_text=p.ylabel, range=list(p.ylim) if p.ylim else None, row=r, col=c)
    pf.update_layout(title=fig.title, template="plotly_white", height=380 * rows + 80)
    return pf


def to_png(fig: Figure, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(fig.panels) // fig.cols)
    mfig, axes = plt.subplots(rows, fig.cols, figsize=(5.2 * fig.cols, 4.2 * rows), squeeze=False)
    styles = {"solid": "-", "dash": "--", "dot": ":"}
    for i, p in enumerate(fig.panels):
        ax = axes[i // fig.cols][i % fig.cols]
        for s in p.series:
            y = np.array([_finite(v) for v in s.y])
            kw = dict(color=s.color, ls=styles[s.dash], label=s.label)
            if s.lo is not None:
                lo = np.array([_finite(v) for v in s.lo])
                hi = np.array([_finite(v) for v in s.hi])
                ax.errorbar(
                    s.x,
                    y,
                    yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)],
                    marker="o",
                    ms=3,
                    capsize=2,
                    **kw,
                )
            else:
                ax.plot(s.x, y, marker="o" if s.markers else None, ms=3, **kw)
        for y, label in p.hlines:
            ax.axhline(y, ls="--", color="#555", label=label)
        ax.set_xscale("log")
        ax.set_xlabel(p.xlabel)
        ax.set_ylabel(p.ylabel)
        if p.ylim:
            ax.set_ylim(*p.ylim)
        ax.set_title(p.title, fontsize=9)
        ax.legend(fontsize=6.5)
    for j in range(len(fig.panels), rows * fig.cols):
        axes[j // fig.cols][j % fig.cols].axis("off")
    mfig.suptitle(fig.title, fontsize=10)
    mfig.tight_layout()
    mfig.savefig(path, dpi=110)
    plt.close(mfig)
    return path
