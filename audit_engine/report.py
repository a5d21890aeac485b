"""Exportable artefacts of an audit: the image grid, CSV and JSON. Never imports gradio."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from .audit import AuditResult
from .images import array_to_pil, to_uint8

__all__ = ["grid_image", "write_csv", "write_outputs", "format_table"]

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


def grid_image(result: AuditResult, *, cell: int = 96) -> Image.Image:
    """Rows: budgets; columns: original, then privatized and reconstruction for each seed."""
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
    w = csv.DictWriter(fh, fieldnames=_CSV_FIELDS + metric_fields)
    w.writeheader()
    for rec in result.records():
        row = {k: rec[k] for k in _CSV_FIELDS}
        for who in ("noisy", "recon"):
            for m, v in rec[who].items():
                row[f"{who}_{m}"] = "" if v is None else v
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
