"""Privatization: what one DP-SGD step leaks to a gradient-inversion attacker.

Threat model (Ziller et al. 2024; Schwethelm et al. 2025): one DP-SGD step on a
linear layer, batch of one image x, per-sample clipping norm C below the gradient
norm, noise multiplier z = 1 / mu. Every weight row's gradient equals x, so after
clipping, adding N(0, (zC)^2) and averaging the rows, the attacker recovers

    x_tilde = x + (||x||_2 / mu) * xi,      xi ~ N(0, I)        ([0, 1] pixel scale).

``privatize`` draws that law directly; ``privatize_dpsgd`` runs the real thing with
Opacus (per-sample clipping and noise by ``DPOptimizer``) and inverts the update.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["noise_std", "privatize", "privatize_dpsgd", "DPSGDRelease"]


def _check_mu(mu: float) -> float:
    mu = float(mu)
    if not mu > 0 or mu == float("inf"):
        raise ValueError(f"mu must be a finite number > 0, got mu={mu!r}")
    return mu


def noise_std(x: torch.Tensor, mu: float) -> torch.Tensor:
    """Per-pixel noise std s = ||x||_2 / mu of the leaked image, one value per image.

    ``x`` is (C, H, W) (returns a 0-d tensor) or (B, C, H, W) (returns shape (B,)).
    """
    mu = _check_mu(mu)
    return x.flatten(start_dim=x.ndim - 3).norm(dim=-1) / mu


def privatize(
    x: torch.Tensor,
    mu: float,
    *,
    xi: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Analytic path: x + (||x||_2 / mu) * xi, unclipped, in [0, 1] pixel scale.

    Pass ``xi`` (standard normal, same shape as x) to reuse one noise draw across
    budgets (common random numbers); otherwise it is drawn from ``generator``.
    """
    if xi is None:
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    elif xi.shape != x.shape:
        raise ValueError(f"xi has shape {tuple(xi.shape)}, expected {tuple(x.shape)}")
    s = noise_std(x, mu)
    return x + s.reshape(s.shape + (1, 1, 1)) * xi


@dataclass(frozen=True)
class DPSGDRelease:
    """The image an attacker inverts from one real Opacus DP-SGD step."""

    x_tilde: torch.Tensor  # (C, H, W), [0, 1] pixel scale, unclipped
    grad_norm: float  # per-sample gradient norm before clipping: sqrt(rows) * ||x||
    clip_norm: float
    noise_multiplier: float
    noise_std: float  # per-pixel std of x_tilde - x implied by the step

    @property
    def clipping_active(self) -> bool:
        return self.clip_norm < self.grad_norm


def privatize_dpsgd(
    x: torch.Tensor,
    mu: float,
    *,
    clip_norm: float = 1e-2,
    rows: int = 4,
    generator: torch.Generator | None = None,
    undo_clipping: bool = True,
) -> DPSGDRelease:
    """Real path: one Opacus DP-SGD step on a linear layer, then gradient inversion.

    The layer has ``rows`` output units and no bias; the loss is the sum of its outputs,
    so each weight row's per-sample gradient is the flattened image. Opacus clips the
    per-sample gradient to ``clip_norm``, adds N(0, (z C)^2) with z = 1/mu and SGD
    (lr = 1) applies it. The attacker reads the update W_before - W_after, averages the
    rows and undoes the clipping factor C / (sqrt(rows) ||x||), knowing ||x|| (the
    paper's assumption); with ``undo_clipping=False`` the attacker does not know ||x|| and
    reads the clipped image plus noise of std z C / sqrt(rows) (a public clip norm, the
    reproduction's candidate setting). Computed in float64 so the inversion adds no
    rounding noise.
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    mu = _check_mu(mu)
    if x.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got shape {tuple(x.shape)}")
    z = 1.0 / mu
    flat = x.detach().to("cpu", torch.float64).reshape(1, -1)
    norm = float(flat.norm())
    grad_norm = norm * rows**0.5
    if grad_norm == 0:  # an all-black image: the gradient is zero, nothing to invert
        return DPSGDRelease(x.detach().clone(), 0.0, clip_norm, z, 0.0)

    layer = nn.Linear(flat.shape[1], rows, bias=False).to(torch.float64)
    model = GradSampleModule(layer)
    before = layer.weight.detach().clone()
    opt = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=z,
        max_grad_norm=clip_norm,
        expected_batch_size=1,
        loss_reduction="sum",
        generator=generator,
    )
    opt.zero_grad()
    with warnings.catch_warnings():  # the input needs no gradient; Opacus hooks say so
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        model(flat).sum().backward()
    opt.step()
    update = (before - layer.weight.detach()).mean(dim=0)  # = clipped x + noise / rows
    clip_factor = min(1.0, clip_norm / grad_norm)
    scale = norm / clip_norm * rows**0.5 if clip_factor < 1 and undo_clipping else 1.0
    x_tilde = (update * scale).reshape(x.shape).to(x.dtype)
    std = z * clip_norm / rows**0.5 * scale
    return DPSGDRelease(x_tilde, grad_norm, clip_norm, z, std)
