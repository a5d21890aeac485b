"""Write the training section of the embedded prior's model card
(audit_engine/assets/prior-mnist32/README.md) from its training.json: every stage's settings, times and
loss, and the commands that retrain it. tests/test_docs.py checks the card against the file.

    python scripts/model_card.py [--prior audit_engine/assets/prior-mnist32]
    python scripts/model_card.py --training research/data/prior-candidate-training.json \
        --card research/PRIOR-COMPARISON.md --candidate   # a candidate's stages, in another doc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audit_engine import docblocks
from audit_engine.docblocks import names
from audit_engine.training.digits import recipe_markdown

ROOT = Path(__file__).resolve().parent.parent


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


def render(info: dict, *, candidate: bool = False, block: str = "") -> str:
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


def fill(card: str, info: dict, *, candidate: bool = False, block: str = "") -> str:
    name = block_name(block)
    if name not in names(card):
        raise ValueError(f"the doc has no generated block {name!r}")
    return docblocks.fill(card, {name: render(info, candidate=candidate, block=block)}, every=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--prior", type=Path, default=ROOT / "audit_engine" / "assets" / "prior-mnist32"
    )
    ap.add_argument("--training", type=Path, default=None, help="default: PRIOR/training.json")
    ap.add_argument("--card", type=Path, default=None, help="default: PRIOR/README.md")
    ap.add_argument(
        "--candidate",
        action="store_true",
        help="a candidate's stages: end with comparing it, not with shipping it",
    )
    ap.add_argument(
        "--block",
        default="",
        help="write the generated block training-BLOCK (a second candidate in the same doc)",
    )
    args = ap.parse_args()
    card = args.card or args.prior / "README.md"
    info = json.loads((args.training or args.prior / "training.json").read_text())
    card.write_text(fill(card.read_text(), info, candidate=args.candidate, block=args.block))
    print(f"wrote the training section of {card}")


if __name__ == "__main__":
    main()
