"""Exportable artefacts of an audit: the image grid, CSV and JSON. Never imports gradio."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..audit.run import AuditResult
from ..files import atomic_write
from ..images import array_to_pil, to_uint8
from .page import figure_html, generated_at, html_page, parameter_sections, public_prior

__all__ = [
    "tile",
    "grid_image",
    "write_csv",
    "write_outputs",
    "format_table",
    "html_report",
    "CAVEATS",
    "write_report",
]

_BG, _FG = (255, 255, 255), (20, 20, 20)


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


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


def _wrap(text: str, font, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels, broken between words."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def grid_image(
    result: AuditResult, *, cell: int = 64, notes: dict[float, str] | None = None, top: int = 30
) -> Image.Image:
    """Rows: budgets (in the order given); columns: original, the first trial's privatized
    observation, every trial's reconstruction, and the spread map across trials.
    ``notes`` adds a line (e.g. a verdict) under a budget's label, wrapped to the label's
    column (a row grows to hold it: no text is cut or drawn over the pictures); ``top``
    leaves a band above the column titles for a page's label over the picture."""
    budgets = list(dict.fromkeys(s.mu for s in result.samples))
    side = _cell(result.original, cell).width
    label_w, head_h, pad, spacing = 210, 24 + top, 4, 2
    trials = result.trials
    cols = 3 + trials
    font, small = _font(13), _font(12)
    line_h = font.getbbox("Ay")[3] + spacing
    labels = []
    for mu in budgets:
        first = result.at(mu)[0]
        lines = [f"mu = {mu:.4g}", f"eps = {first.eps:.4g}", f"t* = {first.t_star}"]
        if first.beyond_range:
            lines.append("beyond prior range")
        if notes and mu in notes:
            lines += _wrap(notes[mu], font, label_w - 2 * pad)
        labels.append(lines)
    rows = [max(side, len(lines) * line_h + 4) for lines in labels]
    width = label_w + cols * (side + pad) + pad
    height = head_h + sum(r + pad for r in rows) + pad
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    titles = ["original", "privatized"] + [f"trial {k + 1}" for k in range(trials)] + ["spread"]
    for j, title in enumerate(titles):
        draw.text((label_w + pad + j * (side + pad), top + 6), title, fill=_FG, font=small)
    orig = _cell(result.original, cell)
    y = head_h
    for mu, lines, row in zip(budgets, labels, rows):
        runs = result.at(mu)[:trials]  # the first look's tries (the sequential rule may add)
        draw.multiline_text((pad, y + 2), "\n".join(lines), fill=_FG, font=font, spacing=spacing)
        cells = [orig, _cell(runs[0].privatized, cell)]
        cells += [_cell(r.reconstruction, cell) for r in runs]
        cells.append(_cell(result.spread(mu), cell))
        for j, c in enumerate(cells):
            canvas.paste(c, (label_w + pad + j * (side + pad), y))
        y += row + pad
    return canvas


COLUMNS = 11  # the ladder table's columns (the evidence row spans them)
_CSV_FIELDS = [
    "mu",
    "eps",
    "delta",
    "trial",
    "t_star",
    "sigma",
    "sigma_dm",
    "beyond_range",
    "below_range",
]


def write_csv(result: AuditResult, fh: io.TextIOBase) -> None:
    metric_fields = [
        f"{who}_{m}" for who in ("noisy", "recon") for m in ("mse", "psnr", "ssim", "lpips")
    ]
    attr_fields = (
        ["attribute_original", "attribute_noisy", "attribute_recon"] if result.attribute else []
    )
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
    """A short plain-text table of the audit for the terminal: per budget, the gallery
    attacker (holds the image among 10: rate, upper bound, chance), the prior attacker
    (reconstructs: tries, upper bound, chance), the attribute and the headline."""
    head = (
        f"{'mu':>8} {'eps':>9} {'t*':>4} {'SSIM rec':>8}  {'gallery':>6} {'<=':>5} "
        f"{'chance':>6}  {'prior':>6} {'<=':>5} {'chance':>6}  {'attr':>6}  verdict"
    )
    lines = [head, "-" * len(head)]
    why = result.no_verdict_reason()
    for mu in result.budgets():
        runs = result.at(mu)
        v = result.verdict_at(mu) if why is None else None
        if v is None:
            cells = f"{'':>6} {'':>5} {'':>6}  {'':>6} {'':>5} {'':>6}  {'':>6}"
            label = f"no verdict: {why}"
        else:
            g, i, a = v.gallery, v.identification, v.attribute
            attr = (
                "n/a"
                if a is None
                else (
                    f"{a.successes}/{a.trials}"
                    f"{'*' if a.revealed else '-' if a.level == 'not revealed' else '?'}"
                )
            )
            cells = (
                f"{g.rate:6.3f} {g.upper:5.2f} {g.chance:6.2f}  "
                f"{f'{i.successes}/{i.trials}':>6} {i.upper:5.2f} {i.chance:6.2f}  {attr:>6}"
            )
            label = v.headline()
        flag = " (beyond prior range)" if runs[0].beyond_range else ""
        lines.append(
            f"{mu:8.4g} {runs[0].eps:9.4g} {runs[0].t_star:4d} "
            f"{np.mean([r.recon['ssim'] for r in runs]):8.3f}  {cells}  {label}{flag}"
        )
    lines.append(
        f"release: clip_C(x) + (C / mu) xi, C = {result.clip_norm:.4g} "
        f"({result.clip_source}); protection: upper bound <= chance + "
        f"{result.tolerance:.0%}; tries {' -> '.join(map(str, result.looks))} "
        "(sequential)"
    )
    return "\n".join(lines)


def write_outputs(result: AuditResult, out: Path, *, save_samples: bool = False) -> dict[str, Path]:
    """grid.png, metrics.json, metrics.csv and verdicts.json under ``out`` (created); with
    ``save_samples``, samples.npz: float32 arrays in [0, 1], ``original`` (C, H, W),
    ``observations`` and ``reconstructions`` (B, K, C, H, W) and ``mu`` (B,)."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "grid": out / "grid.png",
        "json": out / "metrics.json",
        "csv": out / "metrics.csv",
        "verdicts": out / "verdicts.json",
    }
    notes = {v.mu: v.verdict for v in result.verdicts} if result.no_verdict_reason() is None else {}
    atomic_write(paths["grid"], lambda p: grid_image(result, notes=notes).save(p, format="PNG"))
    atomic_write(paths["json"], lambda p: p.write_text(result.to_json() + "\n"))

    def csv_to(p):
        with p.open("w", newline="") as fh:
            write_csv(result, fh)

    atomic_write(paths["csv"], csv_to)
    atomic_write(
        paths["verdicts"],
        lambda p: p.write_text(json.dumps(result.verdicts_json(), indent=2) + "\n"),
    )
    if save_samples:
        paths["samples"] = out / "samples.npz"
        atomic_write(paths["samples"], lambda p: _write_samples(result, p))
    return paths


def write_report(
    result: AuditResult, out: Path, *, mode: str = "eps", baseline: dict | None = None
) -> Path:
    """OUT/report.html: the dashboard's report of this audit (every budget, its verdicts,
    the similarity and bound plots), self-contained."""
    from .plots import audit_figures

    path = Path(out) / "report.html"
    text = html_report(
        result,
        mode=mode,
        baseline=baseline,
        figures=audit_figures(result, mode=mode, baseline=baseline),
    )
    atomic_write(path, lambda p: p.write_text(text))
    return path


def _write_samples(result: AuditResult, path: Path) -> None:
    """samples.npz: every try exactly as the attacker receives it, so anyone can run their
    own attack. float32 arrays, one row per (budget, try): ``releases`` (N, C, H, W) in pixel
    scale, unclipped; ``reconstructions`` (N, C, H, W) in [0, 1]; ``mu``, ``sigma`` (the
    release's noise std C / mu), ``trial``; ``lookalikes`` (N, n - 1, C, H, W), the other
    candidates of each try (absent when no verdict was made); and scalars ``original``
    (C, H, W), ``clip_norm`` (C: the release is clip_C(x) + sigma xi), ``attacker_scale``."""
    rows = [smp for m in result.budgets() for smp in result.at(m)]
    arrays = dict(
        original=result.original.float().numpy(),
        releases=torch.stack([s.observation for s in rows]).float().numpy(),
        reconstructions=torch.stack([s.reconstruction for s in rows]).float().numpy(),
        mu=np.asarray([s.mu for s in rows], dtype=np.float64),
        sigma=np.asarray([s.sigma for s in rows], dtype=np.float64),
        trial=np.asarray([s.trial for s in rows], dtype=np.int64),
        clip_norm=np.float64(result.clip_norm),
        attacker_scale=np.float64(result.attacker_scale),
    )
    if result.reference_images is not None and all(s.decoys is not None for s in rows):
        arrays["lookalikes"] = (
            torch.stack([result.reference_images[s.decoys] for s in rows]).float().numpy()
        )
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


# --------------------------------------------------------------------------- HTML report
def _data_uri(x: torch.Tensor, cell: int = 128) -> str:
    import base64

    buf = io.BytesIO()
    _cell(x, cell).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


CAVEATS = [
    "Two attackers are measured: one who already holds your image among 10 candidates "
    "(the optimal test on the release) and one who reconstructs it with this prior. A prior "
    "closer to your data may recover more; 'not recognisable' means shown within chance + "
    "the tolerance for these two, at 95% confidence.",
    "A prior that does not match the image (for example a face audited with a digit "
    "prior) understates the risk: the reconstruction then pulls the image towards the "
    "wrong kind of picture.",
    "The threat model is one DP-SGD step: the attacker sees the gradient of this single "
    "image, clipped to the public bound C and noised, and knows C and mu but not the "
    "image's norm.",
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
    search: str = "",
) -> str:
    """One self-contained HTML file: images embedded, interactive plots (plotly.js inline),
    every parameter, prior, trials, package versions and date, and the search's answer
    (``search``) when there is one. Opens offline; prints."""
    import html

    esc = html.escape
    verdicts = verdicts or {}

    def fmt(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    def tile_uri(images: torch.Tensor) -> str:
        import base64

        buf = io.BytesIO()
        tile(images, cols=min(4, len(images)), scale=2).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    def sample_rows(result: AuditResult) -> str:
        rows = []
        outside = result.domain is not None and not result.domain.in_domain
        for mu in dict.fromkeys(s.mu for s in result.samples):
            runs = result.at(mu)
            first = runs[0]
            v = result.verdict_at(mu) if result.no_verdict_reason() is None else None
            mean = lambda who, key: _mean([getattr(r, who)[key] for r in runs])
            if v is None:
                said = []
            else:  # the evidence, one paragraph per claim, below the pictures (full width)
                a = v.attribute
                said = [av.sentence().replace("**", "") for av in (v.gallery, v.identification)]
                said.append(
                    a.sentence().replace("**", "")
                    if a is not None
                    else result.attribute_note() or "No attribute claim."
                )
                said.append(v.budgets_sentence())
            label = verdicts.get(mu, v.headline() if v else "no verdict")
            runs = runs[: result.trials]  # the pictures: the first look's tries
            alt = f"{len(runs)} reconstructions at eps {first.eps:.4g}: {label}"
            rows.append(
                f"<tr><td>{first.eps:.4g}</td><td>{mu:.4g}</td><td>{first.t_star}"
                f"{' (beyond range)' if first.beyond_range else ''}</td>"
                f"<td><img src='{_data_uri(result.original)}' alt='original'></td>"
                f"<td><img src='{_data_uri(first.privatized)}' alt='privatized observation, trial 1'></td>"
                f"<td><img class='tile' src='{tile_uri(torch.stack([r.reconstruction for r in runs]))}' alt='{esc(alt)}'></td>"
                f"<td><img src='{_data_uri(result.spread(mu))}' alt='spread map across trials'></td>"
                f"<td>{fmt(mean('noisy', 'ssim'))} / <b>{fmt(mean('recon', 'ssim'))}</b></td>"
                f"<td>{fmt(mean('noisy', 'psnr'), '.2f')} / <b>{fmt(mean('recon', 'psnr'), '.2f')}</b></td>"
                f"<td>{fmt(mean('noisy', 'lpips'))} / <b>{fmt(mean('recon', 'lpips'))}</b></td>"
                f"<td class='verdict'><b>{esc(label)}</b></td></tr>"
                + (
                    f"<tr class='evidence'><td colspan='{COLUMNS}' class='left'>"
                    + "".join(f"<p>{esc(t)}</p>" for t in said)
                    + "</td></tr>"
                    if said
                    else ""
                )
            )
        head = (
            "<tr><th scope='col'>eps</th><th scope='col'>mu</th><th scope='col'>t*</th>"
            "<th scope='col'>original</th><th scope='col'>privatized</th>"
            "<th scope='col'>reconstructions (one per trial)</th><th scope='col'>spread</th>"
            "<th scope='col'>SSIM noisy / recon</th><th scope='col'>PSNR noisy / recon</th>"
            "<th scope='col'>LPIPS noisy / recon</th><th scope='col'>verdict (the evidence "
            "below)</th></tr>"
        )
        warn = (
            "<p class='warn'><b>This image is outside what the prior knows</b>: the "
            "reconstructions show what the prior would guess, not a leak of this image; no "
            "verdict or attribute claim is made.</p>"
            if outside
            else ""
        )
        return f"{warn}<table>{head}{''.join(rows)}</table>"

    params = {
        "date (UTC)": generated_at(),
        "prior": public_prior(ladder.prior_name, ladder.prior_source),
        "privatization": (
            f"{ladder.mechanism}: clip_C(x) + (C / mu) xi, one DP-SGD step on one "
            f"image; public clipping bound C = {ladder.clip_norm:.4g} "
            f"({ladder.clip_source}); mu-GDP for adding or removing the image"
        ),
        "verdict rule": (
            f"protected when the success rate's 95% upper bound is within chance + "
            f"{ladder.tolerance:.0%}; disclosure when its lower bound exceeds "
            f"chance; else undetermined; prior attacker's tries "
            f"{' -> '.join(map(str, ladder.looks))} (sequential)"
        ),
        "reverse process": f"{ladder.sampler.upper()}, {ladder.steps or 'all'} steps from t*",
        "trials per budget": f"{ladder.trials} (noise streams keyed by seed {ladder.seed} and the image)",
        "reference set": ladder.reference or "none",
        "domain check": "n/a" if ladder.domain is None else ladder.domain.summary(),
        "delta": f"{ladder.delta:g}",
        "budget shown as": "eps at delta" if mode == "eps" else "mu (Gaussian DP)",
        "LPIPS": ladder.lpips_note,
        "unrelated-image baseline": (
            ", ".join(
                f"{k} {v:.3f}"
                for k, v in baseline.items()
                if k in ("ssim", "psnr", "lpips", "mse") and v is not None
            )
            if baseline
            else "not available for this prior"
        ),
    }
    current_html = "" if current is None else f"<h2>The chosen budget</h2>{sample_rows(current)}"
    return html_page(
        title,
        [
            "<p>What an attacker who knows what images of this kind look like (a diffusion model, "
            'the "prior") can recover of this image from one DP-SGD step at each privacy '
            "budget. Privatized = what gradient inversion yields from the noisy gradient; "
            "reconstruction = what the prior makes of it. Metrics compare each with the original "
            "(noisy / reconstruction).</p>",
            current_html,
            (
                f"<h2>The largest safe budget</h2><p>{esc(search.replace('**', ''))}</p>"
                if search
                else ""
            ),
            f"<h2>Budget ladder</h2>{sample_rows(ladder)}",
            f"<h2>Similarity and bounds against the budget</h2>{figure_html(figures)}",
            f"<h2>Caveats</h2><ul>{''.join(f'<li>{esc(c)}</li>' for c in CAVEATS)}</ul>",
            parameter_sections(params),
        ],
    )
