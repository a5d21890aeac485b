"""Comparison attacks and the unrelated-image baseline (the source paper's Figure 2).

- Noisy-observation attack (Ziller et al. 2024): output the observation, clipped to [0, 1].
- Prior-aware candidate attack (Hayes, Mahloujifar & Balle 2023): the attacker knows the
  target is one of n candidates and outputs argmin_i ||x_tilde - x_i||; success is exact
  identification; the baseline success probability is kappa = 1/n.
- Unrelated-image baseline: a metric averaged over pairs of distinct images from the
  prior's data set: the similarity at which a reconstruction says nothing about the target.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .metrics import LPIPSMetric, mean_metrics, similarity

__all__ = ["noisy_observation_attack", "candidate_attack", "unrelated_baseline",
           "load_baseline"]


def noisy_observation_attack(observation: torch.Tensor) -> torch.Tensor:
    """The attack without a prior: the observation itself, clipped to [0, 1]."""
    return observation.clamp(0, 1)


def candidate_attack(observation: torch.Tensor, candidates: torch.Tensor) -> int:
    """Index of the candidate (N, C, H, W) closest in L2 to the observation (C, H, W)."""
    d = (candidates.flatten(1).double() - observation.flatten().double()).pow(2).sum(dim=1)
    return int(torch.argmin(d))


def unrelated_baseline(
    images: torch.Tensor,
    *,
    n_pairs: int = 1000,
    seed: int = 0,
    lpips_metric: LPIPSMetric | None = None,
) -> dict[str, float | None]:
    """Mean MSE / PSNR / SSIM / LPIPS over random pairs of distinct images (N, C, H, W)."""
    n = len(images)
    if n < 2:
        raise ValueError(f"need at least 2 images for the unrelated-image baseline, got {n}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # j != i
    rows = [similarity(images[a], images[b][None], lpips_metric=lpips_metric)[0]
            for a, b in zip(i, j)]
    out: dict = mean_metrics(rows)
    out["n_pairs"] = n_pairs
    return out


def load_baseline(prior_folder: str | Path) -> dict | None:
    """The baseline stored with a shipped prior (``baseline.json``), or None."""
    path = Path(prior_folder) / "baseline.json"
    return json.loads(path.read_text()) if path.is_file() else None
