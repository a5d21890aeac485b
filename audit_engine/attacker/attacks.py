"""Comparison attacks and the unrelated-image baseline (the source paper's Figure 2).

- Noisy-observation attack (Ziller et al. 2024): output the observation, clipped to [0, 1].
- Prior-aware candidate attack (Hayes, Mahloujifar & Balle 2023): the attacker knows the
  target is one of n candidates and outputs argmin_i ||x_tilde - x_i||; success is exact
  identification; the baseline success probability is kappa = 1/n.
- Unrelated-image baseline: a metric averaged over pairs of distinct images from the
  prior's data set: the similarity at which a reconstruction says nothing about the target.
- Noise-aware attribute baseline: the Bayes class of the privatized image itself, given
  the noise level and labelled images of the domain (no diffusion model): what a release
  reveals about the class without a generative prior.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .metrics import LPIPSMetric, mean_metrics, similarity

__all__ = [
    "noisy_observation_attack",
    "candidate_attack",
    "unrelated_baseline",
    "load_baseline",
    "noise_aware_labels",
    "correlation",
    "identify",
    "eligible_decoys",
    "guess_rate",
    "gallery_attack",
    "GalleryResult",
]


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
    rows = [
        similarity(images[a], images[b][None], lpips_metric=lpips_metric)[0] for a, b in zip(i, j)
    ]
    out: dict = mean_metrics(rows)
    out["n_pairs"] = n_pairs
    return out


def load_baseline(prior_folder: str | Path) -> dict | None:
    """The baseline stored with a shipped prior (``baseline.json``), or None."""
    path = Path(prior_folder) / "baseline.json"
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- identification
def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every image in a (N, ...) with every image in b (M, ...): (N, M).
    The identification's similarity: insensitive to brightness and contrast, so a faint
    image is not "close to everything" as it is in L2 (a flat image correlates 0)."""

    def unit(x):
        x = x.flatten(1).double()
        x = x - x.mean(dim=1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)

    return unit(a) @ unit(b).T


def identify(
    reconstructions: torch.Tensor, target: torch.Tensor, decoys: torch.Tensor
) -> torch.Tensor:
    """Per trial, whether the candidate most correlated with the reconstruction is the target.

    reconstructions (K, C, H, W); target (C, H, W); decoys (K, n - 1, C, H, W), the other
    candidates of each trial. A tie with a decoy counts as a miss, and a flat target (no
    variation: it correlates 0 with everything) is never identified: it would otherwise win
    whenever the reconstruction happens to anti-correlate with every decoy."""
    if float(target.double().std()) < 1e-6:
        return torch.zeros(len(reconstructions), dtype=torch.bool)
    to_target = correlation(reconstructions, target[None])[:, 0]
    to_decoys = torch.stack([correlation(r[None], d)[0] for r, d in zip(reconstructions, decoys)])
    return to_target > to_decoys.max(dim=1).values


def eligible_decoys(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Indices of reference images that are not the target itself (to 1.5 grey levels)."""
    diff = (reference - target[None]).abs().flatten(1).amax(dim=1)
    return torch.nonzero(diff > 1.5 / 255).flatten()


def guess_rate(
    target: torch.Tensor,
    samples: torch.Tensor,
    reference: torch.Tensor,
    *,
    candidates: int,
    samples_are_reference: bool = False,
) -> float:
    """What the identification achieves with no information: the probability that the
    prior's own sample (its output when the observation carries nothing) picks the target
    among it and candidates - 1 decoys drawn at random from the reference images.
    Exact over the decoy draw: a sample that correlates with the target more than with m of
    the N eligible reference images picks it with probability C(m, n-1) / C(N, n-1);
    averaged over the samples."""
    keep = eligible_decoys(target, reference)
    n_eligible, k = len(keep), candidates - 1
    if n_eligible < k:
        raise ValueError(
            f"the reference set has {n_eligible} images besides the target; "
            f"{k} look-alikes are needed"
        )
    c_t = correlation(samples, target[None])[:, 0]
    c_r = correlation(samples, reference[keep])
    below = c_r < c_t[:, None]
    # sample i is reference image i when they are one set: it is not its own look-alike
    others = (
        keep[None, :] != torch.arange(len(samples))[:, None]
        if samples_are_reference
        else torch.ones_like(below)
    )
    below = below & others
    totals = others.sum(dim=1)
    m = below.sum(dim=1)
    from scipy.special import gammaln

    m_np, n_np = m.numpy().astype(float), totals.numpy().astype(float)
    log_p = np.where(
        m_np >= k,
        gammaln(m_np + 1) - gammaln(m_np - k + 1) - (gammaln(n_np + 1) - gammaln(n_np - k + 1)),
        -np.inf,
    )
    return float(np.mean(np.exp(log_p)))


@dataclass(frozen=True)
class GalleryResult:
    """The gallery attack at several budgets, from one set of tries shared by all of them."""

    mus: tuple[float, ...]
    tries: int
    successes: tuple[int, ...]  # per budget: tries in which the target was the nearest candidate
    no_info: tuple[int, ...]  # per budget: the same attack on a release without the image
    candidates: int


@torch.inference_mode()
def gallery_attack(
    target: torch.Tensor,
    reference: torch.Tensor,
    *,
    clip_norm: float,
    mus,
    tries: int,
    generator: torch.Generator,
    candidates: int = 10,
    chunk: int | None = None,
) -> GalleryResult:
    """The likelihood test of an attacker who holds the target among ``candidates`` images
    (the target and look-alikes drawn from the reference images), on the release
    clip_C(x) + (C / mu) xi: the candidate nearest to the release in L2 (the Bayes test for
    Gaussian noise of the known, public scale C / mu, each candidate clipped as released).

    With D_j = clip_C(x) - clip_C(c_j), the target is nearer than candidate j exactly when
    ||D_j||^2 + 2 (C / mu) <D_j, xi> > 0 (a tie counts as a miss), so one draw of xi and of
    the look-alikes per try serves every budget (common random numbers). ``no_info`` counts
    the same test on the release (C / mu) xi that holds no image (add/remove adjacency):
    target nearer than c_j when ||c_j||^2 - ||x||^2 + 2 (C / mu) <D_j, xi> > 0; it is this
    attack's chance on this image at that budget."""
    from .pipeline import clip_to

    keep = eligible_decoys(target, reference)
    k = candidates - 1
    if len(keep) < k:
        raise ValueError(
            f"the reference set has {len(keep)} images besides the target; "
            f"{k} look-alikes are needed"
        )
    dtype = torch.float64 if target.numel() <= 4096 else torch.float32
    chunk = chunk or max(16, min(512, 2**24 // target.numel()))
    x = clip_to(target[None].to(dtype), clip_norm).flatten(1)  # (1, d)
    c = clip_to(reference[keep].to(dtype), clip_norm).flatten(1)  # (N, d)
    diff = x - c  # D_j
    d2 = diff.pow(2).sum(1)  # ||D_j||^2
    offset = c.pow(2).sum(1) - x.pow(2).sum()  # ||c_j||^2 - ||x||^2
    sigmas = torch.tensor([clip_norm / float(m) for m in mus], dtype=dtype)
    hits = torch.zeros(len(mus), dtype=torch.long)
    blind = torch.zeros(len(mus), dtype=torch.long)
    d = x.shape[1]
    for start in range(0, tries, chunk):
        m = min(chunk, tries - start)
        pick = torch.rand((m, len(keep)), generator=generator).argsort(dim=1)[:, :k]  # (m, k)
        xi = torch.randn((m, d), generator=generator, dtype=dtype)
        inner = torch.gather(xi @ diff.T, 1, pick)  # <D_j, xi> of each try's look-alikes
        margin = 2 * sigmas[:, None, None] * inner[None]  # (B, m, k)
        hits += ((d2[pick][None] + margin) > 0).all(dim=2).sum(dim=1)
        blind += ((offset[pick][None] + margin) > 0).all(dim=2).sum(dim=1)
    return GalleryResult(
        tuple(float(v) for v in mus),
        int(tries),
        tuple(hits.tolist()),
        tuple(blind.tolist()),
        candidates,
    )


def noise_aware_labels(
    obs: torch.Tensor,
    s: float,
    pool: torch.Tensor,
    pool_labels: np.ndarray,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """The Bayes class of each observation (N, C, H, W) when x_tilde = x + s xi and x is drawn
    from the pool's images (M, C, H, W) with their labels: argmax over classes of
    log sum_{j in class} exp(-||x_tilde - x_j||^2 / (2 s^2)). ``exclude[i]``: a pool index
    left out for observation i (its own image)."""
    o = obs.flatten(1).double()
    p = pool.flatten(1).double()
    d2 = o.pow(2).sum(1)[:, None] - 2 * o @ p.T + p.pow(2).sum(1)[None, :]  # (N, M)
    logw = -d2 / (2 * s * s)
    if exclude is not None:
        logw[torch.arange(len(o)), torch.from_numpy(exclude)] = -math.inf
    classes = np.unique(pool_labels)
    scores = torch.stack(
        [torch.logsumexp(logw[:, torch.from_numpy(pool_labels == c)], dim=1) for c in classes],
        dim=1,
    )
    return classes[scores.argmax(1).numpy()]
