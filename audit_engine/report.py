"""Exportable artefacts of an audit: the image grid, CSV and JSON. Never imports gradio."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from .audit import AuditResult
from .images import array_to_pil, to_uint8

__all__ = ["tile", "grid_image", "write_csv", "write_outputs", "format_table", "html_report", "CAVEATS"]

_BG, _FG = (255, 255, 255), (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _cell(x: torch.Tensor, size: int) -> Image.Image:
    img = array_to_pil(to_uint8(x)).convert("RGB")
    scale = max(1, size // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def tile(images: torch.Tensor, cols: int, scale: int = 2, pad: int = 2) -> Image.Image:
    """Images (N, C, H, W) in [0, 1] on a white canvas, ``cols`` per row, enlarged ``scale``x."""
    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    cw, ch = (w + pad) * scale, (h + pad) * scale
    canvas = Image.new("RGB", (cols * cw, rows * ch), _BG)
    for i, x in enumerate(images):
        canvas.paste(_cell(x, w * scale), ((i % cols) * cw, (i // cols) * ch))
    return canvas


def grid_image(result: AuditResult, *, cell: int = 96,
               notes: dict[float, str] | None = None) -> Image.Image:
    """Rows: budgets; columns: original, then privatized and reconstruction for each seed.
    ``notes`` adds a line (e.g. a verdict) under a budget's label."""
    by_budget: dict[float, dict[int, object]] = {}
    for s in result.samples:
        by_budget.setdefault(s.mu, {})[s.seed] = s
    budgets = list(by_budget)  # the order the budgets were given in
    seeds = result.seeds
    side = _cell(result.original, cell).width
    label_w, head_h, pad = 170, 40, 6
    cols = 1 + 2 * len(seeds)
    width = label_w + cols * (side + pad) + pad
    height = head_h + len(budgets) * (side + pad) + pad
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(12)
    titles = ["original"]
    for k in seeds:
        suffix = f"\nseed {k}" if len(seeds) > 1 else ""
        titles += [f"privatized{suffix}", f"reconstruction{suffix}"]
    for j, title in enumerate(titles):
        draw.multiline_text((label_w + pad + j * (side + pad), 6), title, fill=_FG, font=small,
                            spacing=2)
    orig = _cell(result.original, cell)
    for i, mu in enumerate(budgets):
        y = head_h + i * (side + pad)
        first = next(iter(by_budget[mu].values()))
        lines = [f"mu = {mu:.4g}", f"eps = {first.eps:.4g}", f"t* = {first.t_star}"]
        if first.beyond_range:
            lines.append("beyond prior range")
        if notes and mu in notes:
            lines.append(notes[mu])
        draw.multiline_text((pad, y + 4), "\n".join(lines), fill=_FG, font=font, spacing=3)
        canvas.paste(orig, (label_w + pad, y))
        for j, k in enumerate(seeds):
            s = by_budget[mu][k]
            x0 = label_w + pad + (1 + 2 * j) * (side + pad)
            canvas.paste(_cell(s.privatized, cell), (x0, y))
            canvas.paste(_cell(s.reconstruction, cell), (x0 + side + pad, y))
    return canvas


_CSV_FIELDS = ["mu", "eps", "delta", "seed", "t_star", "sigma", "sigma_dm", "beyond_range",
               "below_range"]


def write_csv(result: AuditResult, fh: io.TextIOBase) -> None:
    metric_fields = [f"{who}_{m}" for who in ("noisy", "recon") for m in ("mse", "psnr", "ssim", "lpips")]
    attr_fields = ["attribute_original", "attribute_noisy", "attribute_recon"] if result.attribute else []
    w = csv.DictWriter(fh, fieldnames=_CSV_FIELDS + metric_fields + attr_fields)
    w.writeheader()
    for rec in result.records():
        row = {k: rec[k] for k in _CSV_FIELDS}
        for who in ("noisy", "recon"):
            for m, v in rec[who].items():
                row[f"{who}_{m}"] = "" if v is None else v
        if attr_fields:
            row["attribute_original"] = result.attribute["original"]
            row["attribute_noisy"] = rec["attribute"]["noisy"]
            row["attribute_recon"] = rec["attribute"]["recon"]
        w.writerow(row)


def format_table(result: AuditResult) -> str:
    """A short plain-text table of the audit for the terminal."""
    head = (f"{'mu':>9} {'eps':>10} {'seed':>4} {'t*':>4}  {'SSIM noisy':>10} {'SSIM recon':>10}"
            f"  {'PSNR noisy':>10} {'PSNR recon':>10}  {'LPIPS recon':>11}")
    lines = [head, "-" * len(head)]
    for s in result.samples:
        lp = s.recon.get("lpips")
        flag = "  (beyond prior range)" if s.beyond_range else ""
        lines.append(
            f"{s.mu:9.4g} {s.eps:10.4g} {s.seed:4d} {s.t_star:4d}  {s.noisy['ssim']:10.3f} "
            f"{s.recon['ssim']:10.3f}  {s.noisy['psnr']:10.2f} {s.recon['psnr']:10.2f}  "
            f"{'n/a' if lp is None else format(lp, '.3f'):>11}{flag}")
    return "\n".join(lines)


def write_outputs(result: AuditResult, out: Path) -> dict[str, Path]:
    """grid.png, metrics.json and metrics.csv under ``out`` (created)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"grid": out / "grid.png", "json": out / "metrics.json", "csv": out / "metrics.csv"}
    grid_image(result).save(paths["grid"], format="PNG")
    paths["json"].write_text(result.to_json() + "\n")
    with paths["csv"].open("w", newline="") as fh:
        write_csv(result, fh)
    return paths


# --------------------------------------------------------------------------- HTML report
def _data_uri(x: torch.Tensor, cell: int = 128) -> str:
    import base64

    buf = io.BytesIO()
    _cell(x, cell).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "diffusers", "opacus", "lpips", "scikit-image", "numpy", "scipy",
                 "plotly", "gradio"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


CAVEATS = [
    "This is one attacker with one prior. A stronger attacker, or a prior closer to your "
    "data, may recover more: the pictures show what leaks at least, not at most.",
    "A prior that does not match the image (for example a face audited with a digit "
    "prior) understates the risk: the reconstruction then pulls the image towards the "
    "wrong kind of picture.",
    "The threat model is the worst case of one DP-SGD step: the attacker sees the "
    "gradient of this single image, clipped and noised, and knows its norm.",
    "Budgets are for one release. Training for many steps composes them (use the DP-SGD "
    "calculator).",
]


def html_report(
    ladder: AuditResult,
    *,
    current: AuditResult | None = None,
    mode: str = "eps",
    baseline: dict | None = None,
    figures: Sequence = (),
    verdicts: dict[float, str] | None = None,
    title: str = "Visual privacy audit",
) -> str:
    """One self-contained HTML file: images embedded, interactive plots (plotly.js inline),
    every parameter, prior, seeds, package versions and date. Opens offline; prints."""
    import datetime
    import html

    from . import __version__

    esc = html.escape
    verdicts = verdicts or {}

    def fmt(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    def sample_rows(result: AuditResult) -> str:
        attr = result.attribute
        rows = []
        for s in result.samples:
            attr_cell = ""
            if attr and s.attribute:
                hit = "revealed" if s.attribute["recon"] == attr["original"] else "not revealed"
                attr_cell = (f"<td>{s.attribute['noisy']} / <b>{s.attribute['recon']}</b> "
                             f"({hit})</td>")
            rows.append(
                f"<tr><td>{s.eps:.4g}</td><td>{s.mu:.4g}</td><td>{s.seed}</td><td>{s.t_star}"
                f"{' (beyond range)' if s.beyond_range else ''}</td>"
                f"<td><img src='{_data_uri(result.original)}'></td>"
                f"<td><img src='{_data_uri(s.privatized)}'></td>"
                f"<td><img src='{_data_uri(s.reconstruction)}'></td>"
                f"<td>{fmt(s.noisy['ssim'])} / <b>{fmt(s.recon['ssim'])}</b></td>"
                f"<td>{fmt(s.noisy['psnr'], '.2f')} / <b>{fmt(s.recon['psnr'], '.2f')}</b></td>"
                f"<td>{fmt(s.noisy['lpips'])} / <b>{fmt(s.recon['lpips'])}</b></td>"
                f"{attr_cell}<td>{esc(verdicts.get(s.mu, ''))}</td></tr>")
        attr_head = (f"<th>{esc(attr['name'])} noisy / recon (original: {attr['original']})</th>"
                     if attr else "")
        head = ("<tr><th>eps</th><th>mu</th><th>seed</th><th>t*</th><th>original</th>"
                "<th>privatized</th><th>reconstruction</th><th>SSIM noisy / recon</th>"
                f"<th>PSNR noisy / recon</th><th>LPIPS noisy / recon</th>{attr_head}"
                "<th>verdict</th></tr>")
        return f"<table>{head}{''.join(rows)}</table>"

    params = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "engine": f"audit_engine {__version__}",
        "prior": f"{ladder.prior_name} ({ladder.prior_source})",
        "privatization": ladder.mechanism + " (x + ||x|| / mu * xi, one DP-SGD step on one image)",
        "reverse process": f"{ladder.sampler.upper()}, {ladder.steps or 'all'} steps from t*",
        "seeds": ", ".join(map(str, ladder.seeds)),
        "delta": f"{ladder.delta:g}",
        "budget shown as": "eps at delta" if mode == "eps" else "mu (Gaussian DP)",
        "LPIPS": ladder.lpips,
        "unrelated-image baseline": (", ".join(f"{k} {v:.3f}" for k, v in baseline.items()
                                               if k in ("ssim", "psnr", "lpips", "mse") and v is not None)
                                     if baseline else "not available for this prior"),
    }
    params.update({f"package {k}": v for k, v in package_versions().items()})
    plots = []
    for i, fig in enumerate(figures):
        plots.append(fig.to_html(include_plotlyjs=(i == 0), full_html=False,
                                 config={"displaylogo": False}))
    current_html = ""
    if current is not None:
        current_html = f"<h2>The chosen budget</h2>{sample_rows(current)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: center; font-size: 0.9em; }}
img {{ image-rendering: pixelated; width: 96px; height: 96px; }}
.params td {{ text-align: left; }}
@media print {{ .plotly-graph-div {{ page-break-inside: avoid; }} h2 {{ page-break-before: auto; }} }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>What an attacker who knows what images of this kind look like (a diffusion model, the
"prior") can recover of this image from one DP-SGD step at each privacy budget.
Privatized = what gradient inversion yields from the noisy gradient; reconstruction = what
the prior makes of it. Metrics compare each with the original (noisy / reconstruction).</p>
{current_html}
<h2>Budget ladder</h2>{sample_rows(ladder)}
<h2>Similarity and bounds against the budget</h2>{''.join(plots)}
<h2>Caveats</h2><ul>{''.join(f'<li>{esc(c)}</li>' for c in CAVEATS)}</ul>
<h2>Parameters</h2><table class="params">{''.join(f'<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>' for k, v in params.items())}</table>
</body></html>
"""
