"""Train and evaluate a prior's attribute classifier (attacker/attributes.py's AttributeCNN).

- Data: the prior's **training split only** (its labelled images); a tenth of it, drawn by
  the seed, is kept aside to fit the temperature. The held-out split is never trained on:
  it measures the classifier.
- Training: Adam with cosine decay, cross-entropy; every batch is shifted by up to a
  sixteenth of the side, and half of it gets Gaussian pixel noise of a standard deviation
  drawn up to NOISE_MAX (clean and noisy images: the classifier reads reconstructions,
  which keep some noise at small budgets).
- Calibration: one temperature (Guo et al. 2017, "On calibration of modern neural
  networks") fitted by minimising the negative log-likelihood on the validation part, so a
  confidence of 0.9 means right about 9 times in 10: the audit claims an attribute only
  when the original is read with ATTRIBUTE_CONFIDENCE. A classifier without a single error
  on the validation part keeps temperature 1 (no evidence to fit it on).
- Report (``evaluate``): held-out accuracy with its Wilson interval, the expected
  calibration error (15 equal-width bins), the share read confidently and how often those
  readings are right, and the accuracy per label.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..attacker.attributes import AttributeCNN, architecture, classify
from ..progress import Progress, silent, time_left

__all__ = [
    "train_classifier",
    "evaluate",
    "calibration_error",
    "default_steps",
    "MIN_PER_LABEL",
    "NOISE_MAX",
]

MIN_PER_LABEL = 5  # a label with fewer training images is not learnt (and not claimed)
NOISE_MAX = 0.3  # the largest pixel-noise standard deviation of the noisy training images
BINS = 15


def default_steps(n: int, batch_size: int) -> int:
    """20 epochs, at least 400 and at most 3,000 steps."""
    return int(min(3000, max(400, math.ceil(20 * n / batch_size))))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    most = max(1, x.shape[-1] // 16)
    dx, dy = torch.randint(-most, most + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the mean over equal-width confidence bins of |accuracy -
    mean confidence|, weighted by the share of images in each bin."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    if len(conf) == 0:
        return float("nan")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def _fit_temperature(model: AttributeCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    """The temperature minimising the validation NLL (a 1-D search over log T); 1 when the
    classifier makes no error there (then the NLL only falls as T goes to 0: nothing to
    calibrate against, and sharpening without evidence would only add false confidence)."""
    with torch.inference_mode():
        logits = torch.cat([model.logits(x[i : i + 512]) for i in range(0, len(x), 512)])
    if bool((logits.argmax(1) == y).all()):
        return 1.0
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 241))
    nll = [float(F.cross_entropy(logits / t, y)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def evaluate(
    model: AttributeCNN, images: np.ndarray, labels: np.ndarray, *, confident: float | None = None
) -> dict:
    """Held-out accuracy (Wilson 95% interval), calibration error, confident share and
    accuracy, per-label accuracy, of images uint8 (N, C, S, S) with labels (N,)."""
    from ..audit.verdict import ATTRIBUTE_CONFIDENCE, wilson_interval

    confident = ATTRIBUTE_CONFIDENCE if confident is None else confident
    n = len(labels)
    if n == 0:
        return {"images": 0}
    x = torch.from_numpy(np.asarray(images)).float().div(255)
    pred, conf = classify(model, x)
    pred, conf = pred.numpy(), conf.numpy()
    right = pred == np.asarray(labels)
    sure = conf >= confident
    lo, hi = wilson_interval(int(right.sum()), n)
    per = {}
    for k, name in enumerate(model.labels):
        mine = np.asarray(labels) == k
        if mine.any():
            per[name] = {"images": int(mine.sum()), "accuracy": float(right[mine].mean())}
    return {
        "images": n,
        "accuracy": float(right.mean()),
        "accuracy_ci95": [lo, hi],
        "calibration_error": calibration_error(conf, right),
        "confidence_needed": confident,
        "confident_share": float(sure.mean()),
        "confident_accuracy": float(right[sure].mean()) if sure.any() else None,
        "per_label": per,
    }


def _split_validation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices): a tenth drawn by the seed (none under 50)."""
    key = int.from_bytes(hashlib.sha256(f"validation/{seed}".encode()).digest()[:8], "big") >> 1
    perm = np.random.default_rng(key).permutation(n)
    k = n // 10 if n >= 50 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    *,
    attribute: str,
    steps: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> tuple[AttributeCNN, dict]:
    """Train the attribute classifier on training images uint8 (N, C, S, S) with label
    indices (N,) into ``names``; returns (the model on the CPU, in eval mode, what was
    done). See the module docstring."""
    say = progress or silent
    images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images, got {len(labels)} and {len(images)}")
    counts = np.bincount(labels, minlength=len(names))
    if len(names) < 2 or (counts >= MIN_PER_LABEL).sum() < 2:
        raise ValueError(
            f"an attribute classifier needs at least two labels with "
            f"{MIN_PER_LABEL} training images each, got {dict(zip(names, counts.tolist()))}"
        )
    _, channels, size, _ = images.shape
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AttributeCNN(architecture(size, channels), names, name=attribute).to(device)
    fit, val = _split_validation(len(images), seed)
    x = torch.from_numpy(images).float().div(255)
    y = torch.from_numpy(labels)
    steps = default_steps(len(fit), batch_size) if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"the classifier needs at least one training step, got {steps}")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0, step, losses = time.time(), 0, []
    model.train()
    while step < steps:
        perm = torch.from_numpy(fit)[torch.randperm(len(fit), generator=gen)]
        for i in range(0, len(perm), batch_size):
            b = perm[i : i + batch_size]
            xb = _shift(x[b], gen)
            noisy = torch.rand(len(b), generator=gen) < 0.5
            sd = torch.rand(len(b), generator=gen) * NOISE_MAX * noisy
            xb = (xb + sd.view(-1, 1, 1, 1) * torch.randn(xb.shape, generator=gen)).clamp(0, 1)
            loss = F.cross_entropy(model.logits(xb.to(device)), y[b].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % 20 == 0 or step == steps:
                say(
                    step / steps,
                    f"attribute classifier: step {step}/{steps}, loss "
                    f"{np.mean(losses[-20:]):.3f}, "
                    f"{time_left(step, steps, time.time() - t0)}",
                )
            if step >= steps:
                break
    model = model.cpu().eval().requires_grad_(False)
    if len(val):
        model.temperature = _fit_temperature(model, x[val], y[val])
    report = {
        "attribute": attribute,
        "labels": list(names),
        "architecture": model.arch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "temperature": model.temperature,
        "trained_on": "the prior's training split only",
        "training": {
            "images": int(len(fit)),
            "validation": int(len(val)),
            "per_label": dict(zip(names, counts.tolist())),
            "steps": steps,
            "batch_size": batch_size,
            "seed": seed,
            "noise_max": NOISE_MAX,
            "loss_last_50": float(np.mean(losses[-50:])),
            "seconds": time.time() - t0,
        },
    }
    return model, report
