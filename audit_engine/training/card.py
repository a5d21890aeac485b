"""The model card of a trained prior (``PRIOR/README.md``), written from its training.json:
the Hugging Face model-card front matter (its ``summary`` is the one line the dashboard
lists), what it was trained on, the loss curve, samples, the fitness checks and the command
that reproduces it. Every number comes from training.json (``render`` is a pure function of
it; the pictures are drawn from the saved weights).

The embedded prior's card, trained in stages before train-prior existed, has its training
section written here too (``fill_training_section``, scripts/model_card.py): one writer of
model cards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import docblocks
from ..files import atomic_write
from .digits import recipe_markdown

__all__ = [
    "render",
    "write_card",
    "summary_line",
    "stages",
    "training_section",
    "fill_training_section",
    "block_name",
]


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


# --- the embedded prior's training section (its stages ran before train-prior existed)


def stages(info: dict) -> list[dict]:
    """The training stages in order, the shipped one last."""
    return info.get("previous_stages", []) + [
        {k: v for k, v in info.items() if k != "previous_stages"}
    ]


def command(k: int, stage: dict, before: float = 0.0) -> str:
    """Stage k's command of the retired train_prior.py; ``before``: the dropout of the weights it starts
    from (train_prior.py keeps the --init prior's dropout unless --dropout is given)."""
    args = [f"--out work/prior-stage{k}"]
    if k > 1:
        args.insert(0, f"--init work/prior-stage{k - 1}")
    args += [
        f"--epochs {stage['epochs']}",
        f"--lr {stage['lr']:g}",
        f"--warmup {stage['warmup']}",
        f"--ema-decay {stage['ema_decay']:g}",
        f"--seed {stage['seed']}",
        f"--threads {stage['threads']}",
        f"--checkpoint work/stage{k}.ckpt",
    ]
    if stage.get("dropout", 0.0) != before:
        args.append(f"--dropout {stage.get('dropout', 0.0):g}")
    return ".venv/bin/python scripts/train_prior.py " + " ".join(args)


def training_section(info: dict, *, candidate: bool = False, block: str = "") -> str:
    """The training section; ``candidate``: the last commands build a candidate folder and
    compare it with the shipped prior (README) instead of replacing the shipped weights."""
    st = stages(info)
    last = f"work/prior-stage{len(st)}"
    lines = [
        "## Training",
        "",
        "| stage | epochs | steps | peak lr | warm-up steps | EMA decay | seed | CPU threads "
        "| dropout | minutes | final loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, s in enumerate(st, 1):
        lines.append(
            f"| {k} | {s['epochs']} | {s['steps']:,} | {s['lr']:g} | {s['warmup']} | "
            f"{s['ema_decay']:g} | {s['seed']} | {s['threads']} | {s.get('dropout', 0.0):g} | "
            f"{s['training_minutes']:.1f} | {s['final_loss_avg_last_200']:.4f} |"
        )
    minutes = sum(s["training_minutes"] for s in st)
    lines += [
        "",
        f"{len(st)} stages, {sum(s['epochs'] for s in st)} epochs, "
        f"{minutes:.0f} minutes ({minutes / 60:.1f} h) of training in all on this kind of "
        f"machine (torch {st[-1]['torch']}). Each stage starts from the previous one's EMA "
        "weights. Common to all: batch "
        f"{st[-1]['batch_size']}, AdamW (weight decay 1e-4), linear warm-up then cosine "
        "decay to 0, gradient clipping 1.0, bfloat16 autocast, the EMA weights shipped. "
        "Dropout: in the UNet's residual blocks, while training only. "
        "Final loss: mean epsilon-MSE of the stage's last 200 steps (with dropout on, "
        "where the stage has it); it is not a "
        "measure of the samples (docs/PRIOR.md is).",
        "",
        "## How it was trained",
        "",
        "The stages ran `scripts/train_prior.py`, retired when `privacy-audit "
        "train-prior` replaced it (`git log -- scripts/train_prior.py` finds it); its "
        "commands, as they ran:",
        "",
    ]
    lines += [
        f"    {command(k, s, st[k - 2].get('dropout', 0.0) if k > 1 else 0.0)}"
        for k, s in enumerate(st, 1)
    ]
    lines += [""]
    if not candidate:
        lines += [
            "## How to rebuild it",
            "",
            recipe_markdown(),
            "",
            "The rebuilt prior holds out its own digits, so it is a prior of its own "
            "(`--prior priors/digits`; the dashboard lists every folder under priors/), "
            "not a drop-in for these weights, whose held-out digits and their labels "
            "serve the classifier, the reference set and the reproduction. When these "
            "weights are replaced, everything that depends on them is regenerated:",
            "",
        ]
    if candidate:
        lines += ["The candidate was then compared with the shipped prior:", ""]
        folder, out = (
            ("work/candidate", "research/data/prior-comparison.json")
            if not block
            else (f"work/candidate-{block}", f"research/data/prior-comparison-{block}.json")
        )
        lines += [
            f"    cp -r audit_engine/assets/prior-mnist32 {folder}",
            f"    cp -r {last}/unet {last}/training.json {folder}/",
            f"    .venv/bin/python scripts/build_reference.py {folder}",
            f"    .venv/bin/python -m research.compare_priors --b {folder} --seeds 0 1 "
            f"--out {out} --doc research/PRIOR-COMPARISON.md"
            + (f" --block {block}" if block else ""),
        ]
    else:
        lines += [
            "    .venv/bin/python scripts/train_classifier.py --retrain work/classifier "
            "&& cp work/classifier/classifier.* audit_engine/assets/prior-mnist32/",
            "    .venv/bin/python scripts/train_classifier.py",
            "    .venv/bin/python scripts/compute_baseline.py --prior audit_engine/assets/prior-mnist32",
            "    .venv/bin/python scripts/build_reference.py",
            "    .venv/bin/python scripts/model_card.py",
            "    .venv/bin/python scripts/evaluate_prior.py",
            "    .venv/bin/python scripts/evaluate_domain.py",
        ]
    lines += [
        "",
        "Training is seeded; bit-identical weights need the same torch build and thread count.",
    ]
    return "\n".join(lines)


def block_name(block: str = "") -> str:
    """The generated block of a training section: ``training``, or ``training-BLOCK`` (a
    second candidate in the same doc)."""
    return f"training-{block}" if block else "training"


def fill_training_section(
    card: str, info: dict, *, candidate: bool = False, block: str = ""
) -> str:
    name = block_name(block)
    if name not in docblocks.names(card):
        raise ValueError(f"the doc has no generated block {name!r}")
    return docblocks.fill(
        card, {name: training_section(info, candidate=candidate, block=block)}, every=False
    )
