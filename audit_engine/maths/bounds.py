"""Theoretical reconstruction bounds as functions of the budget (NumPy/SciPy only).

- ReRo (reconstruction robustness; Balle, Cherubin & Hayes 2022) for mu-GDP, tight for
  the Gaussian mechanism (Kaissis et al. 2023): P[success] <= Phi(Phi^-1(kappa) + mu),
  where kappa is the attacker's baseline success probability without the release.
- ReRo for (eps, delta)-DP (Balle et al. 2022): P[success] <= e^eps kappa + delta.
- The noisy-observation attack's error law (Ziller et al. 2024): for x~ = x + s xi with
  d pixels, MSE = s^2 chi^2_d / d ~ Gamma(shape d/2, scale 2 s^2 / d), so
  P[MSE <= eta] = P(d/2, d eta / (2 s^2)) (regularised lower incomplete gamma), and
  P[PSNR >= p] = P[MSE <= R^2 10^(-p/10)].
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["rero_bound_gdp", "rero_bound_dp", "mse_cdf", "psnr_sf", "expected_mse"]


def _check_kappa(kappa) -> np.ndarray:
    k = np.asarray(kappa, dtype=np.float64)
    if np.any(~np.isfinite(k)) or np.any(k <= 0) or np.any(k >= 1):
        raise ValueError(f"kappa must lie strictly between 0 and 1, got kappa={kappa!r}")
    return k


def rero_bound_gdp(mu, kappa):
    """Phi(Phi^-1(kappa) + mu): the largest success probability under mu-GDP."""
    mu = np.asarray(mu, dtype=np.float64)
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError(f"mu must be finite and >= 0, got mu={mu!r}")
    return special.ndtr(special.ndtri(_check_kappa(kappa)) + mu)


def rero_bound_dp(eps, delta, kappa):
    """min(1, e^eps kappa + delta): the success bound under (eps, delta)-DP."""
    eps = np.asarray(eps, dtype=np.float64)
    if np.any(np.isnan(eps)) or np.any(eps < 0):
        raise ValueError(f"eps must be >= 0, got eps={eps!r}")
    with np.errstate(over="ignore"):
        return np.minimum(1.0, np.exp(eps) * _check_kappa(kappa) + delta)


def expected_mse(s):
    """E[MSE] of the unclipped noisy observation: s^2."""
    return np.asarray(s, dtype=np.float64) ** 2


def mse_cdf(eta, *, s, d: int):
    """P[MSE <= eta] for the unclipped noisy observation with per-pixel std s, d pixels."""
    s = np.asarray(s, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64)
    if np.any(s <= 0) or d < 1:
        raise ValueError(f"need s > 0 and d >= 1, got s={s!r}, d={d!r}")
    return special.gammainc(d / 2.0, d * eta / (2.0 * s**2))


def psnr_sf(p, *, s, d: int, data_range: float = 1.0):
    """P[PSNR >= p dB] for the unclipped noisy observation."""
    eta = data_range**2 * 10.0 ** (-np.asarray(p, dtype=np.float64) / 10.0)
    return mse_cdf(eta, s=s, d=d)
