"""Privatization: what one DP-SGD step leaks to a gradient-inversion attacker.

Threat model (Ziller et al. 2024; Schwethelm et al. 2025): one DP-SGD step on a linear
layer, batch of one image x, per-sample clipping norm C (public: the training run's
clipping bound, in the image's own units), noise multiplier z = 1 / mu. Every weight row's
gradient equals x, so after clipping, adding N(0, (zC)^2) and averaging the rows, the
attacker recovers

    x_tilde = clip_C(x) + (C / mu) * xi,    clip_C(x) = x min(1, C / ||x||_2),   xi ~ N(0, I)

in [0, 1] pixel scale. Whatever x, ||clip_C(x)|| <= C, so this release is mu-GDP with
respect to adding or removing the image (Dong, Roth & Su 2022): the ReRo bound
Phi(Phi^-1(kappa) + mu) holds for every candidate set. Noise scaled by the image's own
norm (||x|| / mu, the clipping most favourable to the attacker) would leak that norm and
is not such a mechanism; the engine never releases it.

``privatize`` draws that law directly; ``privatize_dpsgd`` runs the real thing with Opacus
(per-sample clipping and noise by ``DPOptimizer``) and inverts the update.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "noise_std",
    "check_clip_norm",
    "clip_to",
    "privatize",
    "privatize_dpsgd",
    "DPSGDRelease",
    "attacker_scale",
]


def _check_mu(mu: float) -> float:
    mu = float(mu)
    if not mu > 0 or mu == float("inf"):
        raise ValueError(f"mu must be a finite number > 0, got mu={mu!r}")
    return mu


def check_clip_norm(clip_norm: float) -> float:
    c = float(clip_norm)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"the clipping bound must be a finite number > 0, got {clip_norm!r}")
    return c


def noise_std(mu: float, clip_norm: float) -> float:
    """Per-pixel noise std of the release, C / mu ([0, 1] pixel scale): public."""
    return check_clip_norm(clip_norm) / _check_mu(mu)


def clip_to(x: torch.Tensor, c: float) -> torch.Tensor:
    """clip_C(x) = x min(1, C / ||x||) for each image of (N, C, H, W)."""
    norms = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    return x * torch.clamp(c / norms, max=1.0).view(-1, *([1] * (x.ndim - 1)))


def attacker_scale(clip_norm: float, typical_norm: float) -> float:
    """The attacker's public rescaling of a release before reconstructing it: a clipped
    image reaches it with norm C, so it multiplies by typical / C when the typical image of
    the domain (a public statistic) is larger than C, else leaves it (1)."""
    return max(1.0, float(typical_norm) / check_clip_norm(clip_norm))


def privatize(
    x: torch.Tensor,
    mu: float,
    *,
    clip_norm: float,
    xi: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Analytic path: clip_C(x) + (C / mu) * xi, unclipped, in [0, 1] pixel scale, for one
    image (C, H, W) or a batch (N, C, H, W).

    Pass ``xi`` (standard normal, same shape as x) to reuse one noise draw across
    budgets (common random numbers); otherwise it is drawn from ``generator``.
    """
    s = noise_std(mu, clip_norm)
    if xi is None:
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    elif xi.shape != x.shape:
        raise ValueError(f"xi has shape {tuple(xi.shape)}, expected {tuple(x.shape)}")
    xc = clip_to(x if x.ndim == 4 else x[None], clip_norm)
    return (xc if x.ndim == 4 else xc[0]) + s * xi


@dataclass(frozen=True)
class DPSGDRelease:
    """The image an attacker inverts from one real Opacus DP-SGD step."""

    x_tilde: torch.Tensor  # (C, H, W), [0, 1] pixel scale, unclipped
    grad_norm: float  # per-sample gradient norm before clipping: sqrt(rows) * ||x||
    clip_norm: float  # the optimizer's clipping norm, sqrt(rows) * C
    noise_multiplier: float
    noise_std: float  # per-pixel std of x_tilde - clip_C(x): C / mu

    @property
    def clipping_active(self) -> bool:
        return self.clip_norm < self.grad_norm


def privatize_dpsgd(
    x: torch.Tensor,
    mu: float,
    *,
    clip_norm: float,
    rows: int = 4,
    generator: torch.Generator | None = None,
) -> DPSGDRelease:
    """Real path: one Opacus DP-SGD step on a linear layer, then gradient inversion.

    The layer has ``rows`` output units and no bias; the loss is the sum of its outputs,
    so the per-sample gradient is ``rows`` copies of the flattened image, of norm
    sqrt(rows) ||x||. Opacus clips it to sqrt(rows) C (``clip_norm`` is C in the image's
    units, so each row is clip_C(x)), adds N(0, (z sqrt(rows) C)^2) with z = 1/mu, and SGD
    (lr = 1) applies it. The attacker reads the update W_before - W_after and averages the
    rows: clip_C(x) + (C / mu) xi, the law of ``privatize``. It never undoes the clipping
    (that would need the private ||x||). Computed in float64 so the inversion adds no
    rounding noise.
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    mu = _check_mu(mu)
    c = check_clip_norm(clip_norm)
    if x.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got shape {tuple(x.shape)}")
    z = 1.0 / mu
    flat = x.detach().to("cpu", torch.float64).reshape(1, -1)
    grad_norm = float(flat.norm()) * rows**0.5
    layer = nn.Linear(flat.shape[1], rows, bias=False).to(torch.float64)
    model = GradSampleModule(layer)
    before = layer.weight.detach().clone()
    opt = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=z,
        max_grad_norm=c * rows**0.5,
        expected_batch_size=1,
        loss_reduction="sum",
        generator=generator,
    )
    opt.zero_grad()
    with warnings.catch_warnings():  # the input needs no gradient; Opacus hooks say so
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        model(flat).sum().backward()
    opt.step()
    update = (before - layer.weight.detach()).mean(dim=0)  # = clip_C(x) + noise / rows
    x_tilde = update.reshape(x.shape).to(x.dtype)
    return DPSGDRelease(x_tilde, grad_norm, c * rows**0.5, z, z * c)
