"""Train or fine-tune a prior on a folder of images: ``privacy-audit train-prior DIR --out PRIOR``.

A diffusers ``UNet2DModel`` (architectures.py's table, or the ``--init`` prior's own) with
a ``DDPMScheduler``, the DDPM loss (Ho et al. 2020: the model's prediction against the
noise, or the init prior's own target), AdamW with a linear warm-up and cosine decay,
gradient clipping at 1, EMA weights (diffusers' ``EMAModel``) saved. Everything runs
through Hugging Face ``accelerate``: one process on the CPU or a GPU here, mixed precision
on a GPU (bfloat16 where supported, else float16), several GPUs or machines with
``accelerate launch -m audit_engine train-prior ...`` (accelerate's data-parallel engine).

Determinism and resuming: the order of the images in epoch e is a permutation drawn from
(seed, e), and the noise and timesteps of step s from (seed, s, process), so no random state
has to survive an interruption. Every ``checkpoint_every`` steps accelerate's state (model,
optimizer, learning-rate schedule, EMA) and the loss curve are written to a temporary
folder ``PRIOR/checkpoints/step-N``, and only then does the pointer
``PRIOR/checkpoints/latest`` (written atomically) name it: a run killed at any point leaves a
complete checkpoint. ``resume=True`` continues from it and ends with the same weights as an
uninterrupted run with the same seed: bit for bit on the CPU (tests/test_training.py); on
a GPU up to the non-determinism of its kernels (cuDNN, atomics), so closely but not bit for
bit unless PyTorch's deterministic algorithms are enabled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..files import atomic_write, package_versions
from ..progress import Progress, silent, time_left
from .architectures import build_scheduler, build_unet, unet_config
from .data import LABELS_CSV, ImageFolder, read_folder, write_errors
from .fitness import MIN_HELDOUT

__all__ = ["TrainConfig", "train_prior", "TrainingInterrupted", "DEFAULT_STEPS"]

DEFAULT_STEPS = 1000  # about 15 minutes at 32 pixels on a 2-core CPU (docs/PERFORMANCE.md)
PACKAGES = ("torch", "diffusers", "accelerate", "numpy", "safetensors")
CHECKPOINTS = "checkpoints"  # PRIOR/checkpoints/step-N and the pointer PRIOR/checkpoints/latest


class TrainingInterrupted(RuntimeError):
    """Raised by ``stop_after`` (tests: a run killed at a chosen step)."""


@dataclass
class TrainConfig:
    size: int = 32
    channels: int | None = None  # None: from the images (1 when all are grayscale)
    init: str | None = None  # fine-tune this prior (registry key, local folder or Hub id)
    steps: int | None = None  # None: --epochs, else DEFAULT_STEPS
    epochs: float | None = None
    batch_size: int = 64
    lr: float | None = None  # None: 5e-4 from scratch, 1e-4 when fine-tuning
    ema_decay: float = 0.999
    holdout: float = 0.1
    seed: int = 0
    warmup: int = 100
    checkpoint_every: int = 200
    mixed_precision: str = "auto"  # "auto": bf16/fp16 on a GPU, none on a CPU
    dropout: float = 0.0
    cpu: bool = False  # train on the CPU even where a GPU is present
    attribute: str | None = None  # the labels' name ("diagnosis"); None: "class" if labelled
    labels: str = "auto"  # where the labels are: auto, none, subfolders, or a CSV file
    attribute_steps: int | None = None  # the classifier's steps; None: classifier.default_steps
    extra: dict = field(default_factory=dict)  # recorded as given (e.g. the command line)

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.init else 5e-4)


def _mixed_precision(choice: str, cpu: bool = False) -> str:
    """accelerate's mixed_precision for ``--mixed-precision``: "auto" is bf16 (or fp16) on a
    GPU and none on the CPU."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and not cpu:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def _init_model(init: str):
    """(UNet to train, scheduler, size, channels) of an existing prior, at its own resolution."""
    from diffusers import DDPMScheduler, UNet2DModel

    from ..attacker.priors import find_configs, load_prior

    prior = load_prior(init, device="cpu", dtype=torch.float32)  # resolves the folder
    unet_dir, _ = find_configs(prior.folder)
    unet = UNet2DModel.from_pretrained(unet_dir, local_files_only=True, torch_dtype=torch.float32)
    sched = DDPMScheduler.from_config(prior.scheduler_config)
    return unet, sched, prior.sample_size, prior.channels


def _latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint of an unfinished run in ``out``, or None."""
    pointer = Path(out) / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if (folder / "progress.json").is_file() else None


def _attribute_plan(data: ImageFolder, cfg: TrainConfig) -> dict:
    """The labels the attribute classifier will learn ({"name", "keep", "dropped"}), or
    {"why"} when there is none; an explicit ``--attribute`` the folder cannot serve fails
    here, before any training."""
    from .classifier import MIN_PER_LABEL

    name = cfg.attribute or "class"
    if not data.labelled:
        why = (
            f"{data.root.name} has no labels (no {LABELS_CSV} and no class subfolders), "
            "so its prior has no attribute classifier"
        )
        if cfg.attribute:
            raise ValueError(
                f"--attribute {cfg.attribute} needs labels: put each label's "
                f"images in a subfolder named after it (DIR/LABEL/IMAGE), or list "
                f"them in DIR/{LABELS_CSV} as file,label rows"
            )
        return {"why": why}
    counts = np.bincount(data.train_labels[data.train_labels >= 0], minlength=len(data.label_names))
    keep = [k for k, c in enumerate(counts) if c >= MIN_PER_LABEL]
    dropped = [data.label_names[k] for k, c in enumerate(counts) if c < MIN_PER_LABEL]
    if len(keep) < 2:
        why = (
            f"fewer than two of its labels have {MIN_PER_LABEL} training images "
            f"({dict(zip(data.label_names, counts.tolist()))}), too few to learn the "
            f"{name} from"
        )
        if cfg.attribute:
            raise ValueError(f"--attribute {cfg.attribute}: {why}")
        return {"why": why}
    return {"name": name, "keep": keep, "dropped": dropped}


def _train_attribute(
    out: Path, data: ImageFolder, cfg: TrainConfig, plan: dict, device, say: Progress
) -> dict:
    """Train, measure and save the attribute classifier beside the prior (classifier.py);
    returns what training.json records under "attribute"."""
    from safetensors.torch import save_file

    from ..attacker.attributes import SPEC, WEIGHTS, save_pool
    from .classifier import evaluate, train_classifier

    if "why" in plan:
        return {"trained": False, "why": plan["why"]}
    keep = plan["keep"]
    remap = np.full(len(data.label_names), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    names = [data.label_names[k] for k in keep]
    mine = lambda lab: np.flatnonzero((lab >= 0) & (remap[np.maximum(lab, 0)] >= 0))  # noqa: E731
    tr, ho = mine(data.train_labels), mine(data.heldout_labels)
    model, report = train_classifier(
        data.train[tr],
        remap[data.train_labels[tr]],
        names,
        attribute=plan["name"],
        steps=cfg.attribute_steps,
        seed=cfg.seed,
        device=device,
        progress=lambda f, m: say(1.0, m),
    )
    report["heldout"] = evaluate(model, data.heldout[ho], remap[data.heldout_labels[ho]])
    report["labels_from"] = data.label_source
    report["dropped_labels"] = plan["dropped"]
    report["trained"] = True
    save_file(model.state_dict(), out / WEIGHTS)
    report["attack_pool"] = save_pool(
        out,
        data.train,
        np.where(data.train_labels >= 0, remap[np.maximum(data.train_labels, 0)], -1),
        seed=cfg.seed,
    )
    atomic_write(out / SPEC, lambda p: p.write_text(json.dumps(report, indent=1)))
    h = report["heldout"]
    if h["images"]:
        say(
            1.0,
            f"attribute classifier ({plan['name']}): held-out accuracy "
            f"{h['accuracy']:.1%} on {h['images']} images, calibration error "
            f"{h['calibration_error']:.3f}",
        )
    return report


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    key = hashlib.sha256(f"{seed}/{step}/{rank}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(key[:8], "big") >> 1)


class _EpochSampler(torch.utils.data.Sampler):
    """The images of epoch e in a permutation drawn from (seed, e); accelerate calls
    set_epoch and shards the batches between processes."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def _hardware(accelerator) -> dict:
    dev = accelerator.device
    info = {
        "device": str(dev),
        "processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "cpu_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info


def train_prior(
    folder: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    stop_after: int | None = None,
    fitness: bool = True,
) -> dict:
    """Train (or fine-tune) a prior on ``folder`` and write it to ``out`` (module docstring);
    then the reference set of its held-out images, the fitness report and the model card.
    Returns training.json's content. ``stop_after``: raise TrainingInterrupted once that
    many steps are done (what a killed run leaves behind, for tests)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMPipeline, UNet2DModel
    from diffusers.training_utils import EMAModel

    cfg = cfg or TrainConfig()
    say = progress or silent
    out = Path(out)
    accelerator = Accelerator(
        cpu=cfg.cpu, mixed_precision=_mixed_precision(cfg.mixed_precision, cfg.cpu)
    )
    main = accelerator.is_main_process
    set_seed(cfg.seed)  # the new UNet's initial weights (and dropout) follow the seed

    if cfg.init:
        unet, scheduler, size, channels = _init_model(cfg.init)
        if cfg.channels and cfg.channels != channels:
            raise ValueError(
                f"--init {cfg.init} has {channels} channels; --channels "
                f"{cfg.channels} cannot change them"
            )
    else:
        size, channels = cfg.size, cfg.channels
    if not cfg.init:
        unet_config(cfg.size, cfg.channels or 1)  # an unknown size fails before any work
    if not 0 < cfg.ema_decay < 1:
        raise ValueError(f"--ema-decay must lie strictly between 0 and 1, got {cfg.ema_decay}")
    if not resume and _latest_checkpoint(out) is not None:
        raise ValueError(
            f"{out} holds the checkpoint of an unfinished run: add --resume to "
            "continue it, or delete its checkpoints folder to start again"
        )
    if (out / "training.json").is_file() and _latest_checkpoint(out) is None:
        raise ValueError(
            f"{out} already holds a trained prior (training.json): choose another "
            "--out, or delete it first"
        )
    say(0.0, "reading the images")
    data: ImageFolder = read_folder(
        folder, size=size, channels=channels, holdout=cfg.holdout, labels=cfg.labels
    )
    channels = data.channels
    if len(data.train) == 0:
        raise ValueError(
            f"no readable image in {folder} to train on ({len(data.errors)} "
            "unreadable files, see errors.csv)"
        )
    attribute_plan = _attribute_plan(data, cfg)
    if not cfg.init:
        unet, scheduler = build_unet(size, channels, cfg.dropout), build_scheduler()
    n = len(data.train)
    if cfg.steps is None and cfg.epochs is None:
        total = DEFAULT_STEPS
    else:
        total = (
            cfg.steps
            if cfg.steps is not None
            else max(
                1,
                math.ceil(cfg.epochs * math.ceil(n / (cfg.batch_size * accelerator.num_processes))),
            )
        )
    if total < 1:
        raise ValueError(f"--steps must be at least 1, got {total}")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_errors(out / "errors.csv", data.errors)

    images = torch.from_numpy(data.train)
    loader = torch.utils.data.DataLoader(
        images, batch_size=cfg.batch_size, sampler=_EpochSampler(n, cfg.seed), drop_last=False
    )
    lr = cfg.learning_rate()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    # accelerate steps a prepared schedule once per process: count in process-steps
    span = total * accelerator.num_processes
    warm = max(1, cfg.warmup) * accelerator.num_processes
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, span) / span)),
    )
    unet, optimizer, loader, schedule = accelerator.prepare(unet, optimizer, loader, schedule)
    ema = EMAModel(
        accelerator.unwrap_model(unet).parameters(),
        decay=cfg.ema_decay,
        model_cls=UNet2DModel,
        model_config=accelerator.unwrap_model(unet).config,
    )
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    abar = scheduler.alphas_cumprod.to(accelerator.device)
    target_kind = scheduler.config.get("prediction_type", "epsilon")

    settings = {k: v for k, v in asdict(cfg).items() if k not in ("extra", "checkpoint_every")}
    step, losses, elapsed_before, seen = 0, [], 0.0, 0
    latest = _latest_checkpoint(out) if resume else None
    if latest is not None:
        state = json.loads((latest / "progress.json").read_text())
        if state["settings"] != settings:
            changed = sorted(k for k in settings if state["settings"].get(k) != settings[k])
            raise ValueError(
                f"the checkpoint in {out} was made with other settings "
                f"({', '.join(changed)}): resume with the same ones"
            )
        accelerator.load_state(str(latest))
        step, losses, elapsed_before = state["step"], state["losses"], state["elapsed_s"]
        seen = state["images_seen"]
        say(step / total, f"resumed at step {step} of {total}")
    elif resume:
        say(0.0, f"no checkpoint in {out}: starting from the first step")

    def save_checkpoint() -> None:
        """checkpoints/step-N (accelerate's state, then progress.json), then the pointer
        checkpoints/latest, written atomically: a kill at any point leaves a complete one."""
        folder = out / CHECKPOINTS / f"step-{step:08d}"
        accelerator.wait_for_everyone()
        accelerator.save_state(str(folder))
        if main:
            (folder / "progress.json").write_text(
                json.dumps(
                    {
                        "step": step,
                        "losses": losses,
                        "images_seen": seen,
                        "settings": settings,
                        "elapsed_s": elapsed_before + time.time() - t0,
                    }
                )
            )
            atomic_write(out / CHECKPOINTS / "latest", lambda p: p.write_text(folder.name))
            for old in (out / CHECKPOINTS).glob("step-*"):
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    per_epoch = len(loader)
    t0 = time.time()
    unet.train()
    while step < total:
        epoch, skip = divmod(step, per_epoch)
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch in batches:
            g = _step_generator(cfg.seed, step, accelerator.process_index)
            x0 = batch.float().div(127.5).sub(1.0)
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
            t = torch.randint(0, len(abar), (len(x0),), generator=g).to(x0.device)
            a = abar[t].view(-1, 1, 1, 1).to(x0.dtype)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
            target = {
                "epsilon": noise,
                "sample": x0,
                "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * x0,
            }[target_kind]
            with accelerator.autocast():
                pred = unet(x_t, t).sample
            loss = F.mse_loss(pred.float()[:, : x0.shape[1]], target.float())
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            ema.step(accelerator.unwrap_model(unet).parameters())
            losses.append(float(accelerator.gather(loss.detach()).mean()))
            seen += len(x0) * accelerator.num_processes
            step += 1
            if step % 10 == 0 or step == total:
                el = elapsed_before + time.time() - t0
                say(
                    step / total,
                    f"step {step}/{total}, loss {np.mean(losses[-50:]):.4f}, "
                    f"{time_left(step, total, el)}",
                )
            if step % cfg.checkpoint_every == 0 and step < total:
                save_checkpoint()
            if stop_after is not None and step >= stop_after:
                raise TrainingInterrupted(f"stopped after step {step}")
            if step >= total:
                break
    elapsed = elapsed_before + time.time() - t0
    accelerator.wait_for_everyone()
    if not main:
        return {}

    say(1.0, "saving the EMA weights")
    final = UNet2DModel.from_config(accelerator.unwrap_model(unet).config)
    ema.copy_to(final.parameters())
    DDPMPipeline(unet=final, scheduler=scheduler).save_pretrained(out, safe_serialization=True)
    info_attribute = _train_attribute(out, data, cfg, attribute_plan, accelerator.device, say)
    if len(data.heldout) >= MIN_HELDOUT:  # enough to be the reference set (fitness.py)
        np.savez_compressed(out / "heldout.npz", images=data.heldout)
    atomic_write(
        out / "split.json",
        lambda p: p.write_text(
            json.dumps(
                {
                    "rule": f"held out when the SHA-256 of the file's bytes, read as a number in [0, 1), "
                    f"is below {cfg.holdout}",
                    "heldout": data.heldout_files,
                    "train": data.train_files,
                },
                indent=1,
            )
        ),
    )
    every = max(1, len(losses) // 500)
    info = {
        "data": data.summary(),
        "parameters": {
            **{k: v for k, v in asdict(cfg).items() if k != "extra"},
            "lr": lr,
            "size": size,
            "channels": channels,
            "steps": total,
            "images_seen": seen,
            "epochs_seen": seen / n,
        },
        "command": cfg.extra.get("command"),
        "architecture": {
            "parameters": sum(p.numel() for p in final.parameters()),
            "block_out_channels": list(final.config.block_out_channels),
            "prediction_type": target_kind,
        },
        "loss": {
            "every": every,
            "curve": [float(np.mean(losses[i : i + every])) for i in range(0, len(losses), every)],
            "first_100": float(np.mean(losses[:100])),
            "last_100": float(np.mean(losses[-100:])),
        },
        "time": {"training_s": elapsed, "images_per_s": seen / max(elapsed, 1e-9)},
        "hardware": _hardware(accelerator),
        "versions": package_versions(PACKAGES),
        "resumed": bool(resume and elapsed_before > 0),
        "attribute": info_attribute,
    }
    atomic_write(out / "training.json", lambda p: p.write_text(json.dumps(info, indent=1)))
    if fitness:
        from .card import write_card
        from .fitness import check_fitness

        report = check_fitness(out, data, info, progress=say)
        info["fitness"] = report
        atomic_write(out / "training.json", lambda p: p.write_text(json.dumps(info, indent=1)))
        write_card(out, info)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    say(1.0, f"wrote {out}")
    return info
