"""The model card of a trained prior (``PRIOR/README.md``), written from its training.json:
the Hugging Face model-card front matter (its ``summary`` is the one line the dashboard
lists), what it was trained on, the loss curve, samples, the fitness checks and the command
that reproduces it. Every number comes from training.json (``render`` is a pure function of
it; the pictures are drawn from the saved weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write

__all__ = ["render", "write_card", "summary_line"]


def summary_line(info: dict) -> str:
    """One line: the data, the size, and fit or not."""
    d, f = info["data"], info.get("fitness") or {}
    fit = (
        "fit to audit with"
        if f.get("fit")
        else "NOT fit to audit with"
        if f
        else "fitness not checked"
    )
    return (
        f"{d['size']}x{d['size']} {'grayscale' if d['channels'] == 1 else 'colour'} prior "
        f"trained on {d['train']} images of {Path(d['folder']).name}; {fit}"
    )


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def render(info: dict, name: str) -> str:
    d, p, f = info["data"], info["parameters"], info.get("fitness") or {}
    hw, t = info["hardware"], info["time"]
    lines = [
        "---",
        "library_name: diffusers",
        "pipeline_tag: unconditional-image-generation",
        "tags:",
        "- privacy-audit",
        "- ddpm",
        f"summary: {json.dumps(summary_line(info))}",
        "---",
        "",
        f"# {name}",
        "",
        f"A diffusion prior trained by `privacy-audit train-prior` for auditing images of "
        f"this kind: {summary_line(info)}.",
        "",
    ]
    if f:
        lines += [f"**{f['sentence']}**", ""]
    lines += [
        "## Data",
        "",
        f"- folder: `{Path(d['folder']).name}`: {d['files']} files, {d['images']} "
        f"distinct images read ({d['unreadable']} unreadable, listed in errors.csv; "
        f"{d['duplicates']} duplicates kept once)",
        f"- fitted to {d['size']}x{d['size']}, {d['channels']} channel(s), by the "
        "audit's own rule for uploads (centre crop, Lanczos)",
        f"- {d['train']} trained on; {d['heldout']} held out (chosen by a hash of each "
        f"file's content, never trained on: split.json), which make the reference set",
        "",
        "## Training",
        "",
        f"- {'fine-tuned from `' + p['init'] + '`' if p.get('init') else 'from scratch'}: "
        f"a diffusers UNet2DModel of {info['architecture']['parameters'] / 1e6:.2f} M "
        f"parameters (blocks {info['architecture']['block_out_channels']}), DDPM loss "
        f"({info['architecture']['prediction_type']} prediction), EMA weights "
        f"(decay {p['ema_decay']}) saved",
        f"- {p['steps']} steps of batch {p['batch_size']} ({p['images_seen']:,} images, "
        f"{p['epochs_seen']:.1f} epochs), AdamW at {p['lr']:g} with {p['warmup']} warm-up steps and cosine decay, "
        f"seed {p['seed']}",
        f"- {t['training_s'] / 60:.1f} minutes on {hw['device']} "
        f"({hw.get('gpu', hw['cpu'])}; {hw['processes']} process(es), mixed precision "
        f"{hw['mixed_precision']}): {t['images_per_s']:.1f} images/s",
        f"- loss: {info['loss']['first_100']:.4f} over the first 100 steps, "
        f"{info['loss']['last_100']:.4f} over the last 100",
        "",
        "![loss curve](loss.png)",
        "",
        "## Samples",
        "",
        "![samples](samples.png)",
        "",
    ]
    if f:
        lines += [
            "## Fitness to audit with",
            "",
            "| check | result |",
            "|---|---|",
            f"| held-out images inside its domain (two-fold) | {_pct(f['heldout_in_domain'])} |",
            f"| flat images outside its domain | {_pct(f['flat_flagged'])} |",
            f"| photographs outside its domain | {_pct(f['photos_flagged'])} |",
            f"| samples that are near-copies of a training image | {_pct(f['near_copies'])} |",
            f"| held-out images that are near-copies of a training image (control) | "
            f"{_pct(f.get('heldout_near_copies'))} |",
            "| median distance to the nearest training image: samples / held-out images "
            f"(data-copying test p) | {_num(f.get('median_nearest_distance'))} / "
            + (
                "n/a"
                if f.get("data_copying_p") is None
                else f"{f['heldout_median_nearest_distance']:.2f} (p = {f['data_copying_p']:.2g})"
            )
            + " |",
            f"| denoising error: training / held-out images | {f['train_loss']:.4f} / "
            + ("n/a" if f["heldout_loss"] is None else f"{f['heldout_loss']:.4f}")
            + " |",
            f"| loss: first / tenth before last / last tenth | {f['loss_first_tenth']:.4f} / "
            f"{f['loss_tenth_before']:.4f} / {f['loss_last_tenth']:.4f} |",
            "",
            f"Reference set: {f['reference']}.",
            "",
            "The rules and why each matters: `audit_engine/training/fitness.py`.",
            "",
        ]
    lines += _attribute_section(info.get("attribute"))
    lines += [
        "## Reproduce",
        "",
        "    " + (info.get("command") or "privacy-audit train-prior DIR --out PRIOR"),
        "",
        "Seeded: the same images, seed and steps give the same weights on the same torch "
        "build and thread count (CPU); a run stopped part-way continues with `--resume`.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _attribute_section(a: dict | None) -> list[str]:
    """What the audit can say the attacker learns: the attribute classifier, measured."""
    if not a:
        return []
    lines = ["## Attribute audited", ""]
    if not a.get("trained"):
        return lines + [f"None: {a['why']}. The audit judges recognisability only.", ""]
    t, h = a["training"], a["heldout"]
    lines += [
        f"The audit also says whether an attacker learns the image's **{a['attribute']}** "
        f"({len(a['labels'])} labels from {a['labels_from']}: "
        f"{', '.join(a['labels'])}), read by a classifier trained on this prior's "
        f"training split only ({t['images']} images, {t['validation']} more to fit its "
        f"temperature, {a['temperature']:.2f}; clean and noisy images; {t['steps']} "
        f"steps) and shipped beside the weights (classifier.safetensors, "
        f"classifier.json), with {a.get('attack_pool', 0)} labelled training images "
        "(attack-pool.npz) for the attacker who reads the label off the release.",
        "",
    ]
    if a.get("dropped_labels"):
        lines += [
            f"Labels with too few training images, not learnt: {', '.join(a['dropped_labels'])}.",
            "",
        ]
    if not h.get("images"):
        return lines + ["No labelled held-out image to measure it on: its accuracy is unknown.", ""]
    lo, hi = h["accuracy_ci95"]
    lines += [
        "| held-out measure | value |",
        "|---|---|",
        f"| accuracy ({h['images']} images) | {h['accuracy']:.1%} ({lo:.1%} to {hi:.1%}) |",
        f"| expected calibration error | {h['calibration_error']:.3f} |",
        f"| read confidently (at least {h['confidence_needed']:.2f}): claims made | "
        f"{h['confident_share']:.0%} |",
        "| accuracy of the confident readings | "
        + ("n/a" if h["confident_accuracy"] is None else f"{h['confident_accuracy']:.1%}")
        + " |",
    ]
    lines += [
        f'| accuracy on "{k}" ({v["images"]} images) | {v["accuracy"]:.0%} |'
        for k, v in h["per_label"].items()
    ]
    return lines + [
        "",
        "An image the classifier does not read with the confidence above gets no attribute claim.",
        "",
    ]


def _loss_png(info: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = info["loss"]["curve"]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.plot(np.arange(len(curve)) * info["loss"]["every"], curve, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("training loss")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_card(folder: Path, info: dict, *, samples: int = 16) -> Path:
    """README.md, samples.png (DDIM samples of the saved weights) and loss.png."""
    from ..attacker.priors import load_prior
    from ..attacker.reconstruct import sample
    from ..outputs.report import tile

    folder = Path(folder)
    prior = load_prior(str(folder), device="cpu", dtype=torch.float32)
    grid = sample(prior, samples, sampler="ddpm", steps=250, seed=1)
    atomic_write(
        folder / "samples.png",
        lambda p: tile(grid, cols=8, scale=max(1, 96 // prior.sample_size)).save(p, format="PNG"),
    )
    atomic_write(folder / "loss.png", lambda p: _loss_png(info, p))
    card = folder / "README.md"
    atomic_write(card, lambda p: p.write_text(render(info, folder.name)))
    return card
