"""Train the digit classifier used to evaluate the embedded prior and for attribute disclosure.

Trained on the prior's training split only (the held-out split is never seen), with
small random shifts as augmentation. Seeded.

    python scripts/train_classifier.py --prior audit_engine/assets/prior-mnist32
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from audit_engine.attacker.attributes import DigitCNN, classify
from audit_engine.training.digits import load_digits, split_indices


def shift(x: torch.Tensor, gen: torch.Generator, max_px: int = 2) -> torch.Tensor:
    dx, dy = torch.randint(-max_px, max_px + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", type=Path, default=Path("audit_engine/assets/prior-mnist32"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    digits, labels = load_digits()
    train_idx, test_idx = split_indices(labels)
    split = json.loads((args.prior / "split.json").read_text())
    assert split["test_indices"] == test_idx.tolist(), "split differs from the prior's"
    x = torch.from_numpy(digits).float().div(255).unsqueeze(1)
    y = torch.from_numpy(labels)
    xtr, ytr, xte, yte = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    model = DigitCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(model(shift(xtr[b], gen)), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        pred, _ = classify(model, xte)
        print(f"epoch {epoch + 1}: held-out accuracy {(pred == yte).float().mean():.4f}", flush=True)
    from safetensors.torch import save_file

    save_file(model.state_dict(), args.prior / "classifier.safetensors")
    acc = float((classify(model, xte)[0] == yte).float().mean())
    (args.prior / "classifier.json").write_text(json.dumps({
        "architecture": "audit_engine.attacker.attributes.DigitCNN", "trained_on": "training split only",
        "epochs": args.epochs, "seed": args.seed, "heldout_accuracy": acc,
        "training_seconds": time.time() - t0}, indent=2))
    print(f"held-out accuracy {acc:.4f}; saved to {args.prior / 'classifier.safetensors'}")


if __name__ == "__main__":
    main()
