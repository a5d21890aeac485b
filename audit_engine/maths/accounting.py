"""Privacy accounting: exact mu-GDP <-> (eps, delta)-DP conversions and DP-SGD budgets.

The mathematics lives in pure functions with keyword-only options; every public
conversion validates its inputs first and names the offending value.

mu-GDP -> (eps, delta)-DP (Dong, Roth & Su 2022, Corollary 2.13), exact:

    delta(eps; mu) = Phi(-eps/mu + mu/2) - exp(eps) * Phi(-eps/mu - mu/2)

It is evaluated in log space (``log_ndtr`` and ``log(-expm1(.))``) so that it neither
overflows for eps in the tens of thousands nor loses the small difference of two
nearly equal terms, and it is inverted with a bracket that widens until it contains
the root (as google/dp_accounting does; a fixed bracket fails near mu = 32).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

__all__ = [
    "validate_delta",
    "log_delta_for_mu",
    "delta_from_eps_mu",
    "eps_from_mu",
    "mu_from_eps",
    "noise_multiplier_from_mu",
    "mu_from_noise_multiplier",
    "DPSGDBudget",
    "dpsgd_budget",
]

_MAX_WIDEN = 2000  # bracket doublings/halvings: enough to span every float
_LOG_FLOOR = -1e6  # log delta below this is 0 for every purpose; keeps brentq finite
_RTOL = 4 * np.finfo(float).eps


# --------------------------------------------------------------------------- validation
def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return value


def _check_nonnegative(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    return value


def validate_delta(delta: float) -> float:
    """delta as a float, or ValueError naming it unless 0 < delta < 1."""
    delta = float(delta)
    if not math.isfinite(delta) or not 0 < delta < 1:
        raise ValueError(
            f"delta must lie strictly between 0 and 1, got delta={delta!r} "
            "(delta = 0 would need eps = infinity; delta >= 1 promises nothing)"
        )
    return delta


# --------------------------------------------------------------------------- mu <-> eps
def log_delta_for_mu(eps: float, mu: float) -> float:
    """log delta(eps; mu) of the mu-GDP trade-off curve (Dong et al. 2022, Cor. 2.13).

    Returns -inf where delta underflows to 0. Inputs are not validated (hot path).
    """
    a = special.log_ndtr(-eps / mu + mu / 2)
    b = special.log_ndtr(-eps / mu - mu / 2)
    # delta = e^a - e^(eps + b) = e^a * (1 - e^(eps + b - a)); eps + b - a < 0 always.
    r = eps + b - a
    if r >= 0:  # only by rounding, when the two terms are equal to machine precision
        return -math.inf
    return float(a + math.log(-math.expm1(r)))


def delta_from_eps_mu(eps: float, mu: float) -> float:
    """delta such that a mu-GDP mechanism is (eps, delta)-DP, exactly."""
    eps = _check_nonnegative("eps", eps)
    mu = _check_positive("mu", mu)
    return math.exp(log_delta_for_mu(eps, mu))


def _log_delta_finite(eps: float, mu: float) -> float:
    """log_delta_for_mu with -inf (delta underflowed to 0) replaced by a finite floor."""
    return max(log_delta_for_mu(eps, mu), _LOG_FLOOR)


def eps_from_mu(mu: float, delta: float) -> float:
    """Smallest eps >= 0 such that mu-GDP implies (eps, delta)-DP (exact, not the CLT)."""
    mu = _check_positive("mu", mu)
    delta = validate_delta(delta)
    log_target = math.log(delta)
    f = lambda e: _log_delta_finite(e, mu) - log_target  # decreasing in eps
    if f(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, max(1.0, mu * mu)
    for _ in range(_MAX_WIDEN):  # widen until the bracket holds the root
        if f(hi) < 0:
            break
        lo, hi = hi, 2 * hi
    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=_RTOL, maxiter=500))


def mu_from_eps(eps: float, delta: float) -> float:
    """The mu whose mu-GDP guarantee is exactly (eps, delta)-DP (inverse of eps_from_mu)."""
    eps = _check_nonnegative("eps", eps)
    delta = validate_delta(delta)
    if eps == 0:  # delta(0; mu) = 2 Phi(mu/2) - 1, in closed form
        return float(2 * special.ndtri((1 + delta) / 2))
    log_target = math.log(delta)
    f = lambda m: _log_delta_finite(eps, m) - log_target  # increasing in mu
    lo, hi = 0.5, 1.0
    for _ in range(_MAX_WIDEN):
        if f(hi) > 0:
            break
        lo, hi = hi, 2 * hi
    for _ in range(_MAX_WIDEN):
        if f(lo) < 0:
            break
        lo, hi = lo / 2, lo
    return float(optimize.brentq(f, lo, hi, xtol=1e-300, rtol=_RTOL, maxiter=500))


def noise_multiplier_from_mu(mu: float) -> float:
    """One Gaussian release with noise multiplier z = sigma / C is (1/z)-GDP."""
    return 1.0 / _check_positive("mu", mu)


def mu_from_noise_multiplier(noise_multiplier: float) -> float:
    """mu of one Gaussian release with noise multiplier z: mu = 1 / z."""
    return 1.0 / _check_positive("noise_multiplier", noise_multiplier)


# --------------------------------------------------------------------------- DP-SGD
@dataclass(frozen=True)
class DPSGDBudget:
    """The privacy of T DP-SGD steps with noise multiplier z and sample rate q."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    mu: float
    mu_method: str  # "exact (full batch: sqrt(T)/z)" or "CLT approximation (...)"
    mu_is_approximation: bool
    eps_exact: float | None  # eps_from_mu(mu) when mu is exact (q = 1)
    eps_rdp: float
    eps_prv: float | None  # None when Opacus's PRV accountant fails for these settings
    prv_error: str | None = None

    @property
    def eps_best(self) -> float:
        """The tightest trustworthy eps: exact when q = 1, else PRV (else RDP)."""
        if self.eps_exact is not None:
            return self.eps_exact
        return self.eps_prv if self.eps_prv is not None else self.eps_rdp


def mu_clt_poisson(*, noise_multiplier: float, sample_rate: float, steps: int) -> float:
    """CLT mu of Poisson-subsampled DP-SGD (Bu et al. 2020): q sqrt(T (e^(1/z^2) - 1))."""
    z, q = noise_multiplier, sample_rate
    return float(q * math.sqrt(steps * math.expm1(1.0 / (z * z))))


def dpsgd_budget(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> DPSGDBudget:
    """eps (Opacus RDP and PRV accountants) and mu of DP-SGD training.

    mu is exact, sqrt(T) / z, for full-batch training (q = 1): T compositions of a
    (1/z)-GDP release. For q < 1 it is the central-limit approximation and labelled so.
    Opacus's GDP accountant is deliberately not used: its CLT formula is far off for
    few steps (one step, q = 1, z = 0.5: 7.3 instead of 2.0).
    """
    z = _check_positive("noise_multiplier", noise_multiplier)
    q = float(sample_rate)
    if not math.isfinite(q) or not 0 < q <= 1:
        raise ValueError(f"sample_rate must lie in (0, 1], got sample_rate={sample_rate!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got steps={steps!r}")
    steps = int(steps)
    delta = validate_delta(delta)

    if q == 1.0:
        mu = math.sqrt(steps) / z
        method, approx = "exact (full batch: mu = sqrt(T) / z)", False
        eps_exact = eps_from_mu(mu, delta)
    else:
        mu = mu_clt_poisson(noise_multiplier=z, sample_rate=q, steps=steps)
        method = "CLT approximation (Bu et al. 2020: mu = q sqrt(T (exp(1/z^2) - 1)))"
        approx, eps_exact = True, None

    from opacus.accountants import PRVAccountant, RDPAccountant

    rdp = RDPAccountant()
    rdp.history = [(z, q, steps)]
    eps_rdp = float(rdp.get_epsilon(delta))
    eps_prv, prv_error = None, None
    try:
        prv = PRVAccountant()
        prv.history = [(z, q, steps)]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            eps_prv = float(prv.get_epsilon(delta))
        if not math.isfinite(eps_prv):
            eps_prv, prv_error = None, "PRV accountant returned a non-finite value"
    except Exception as exc:  # Opacus raises various errors outside its domain
        prv_error = f"PRV accountant failed: {exc}"
    return DPSGDBudget(
        noise_multiplier=z,
        sample_rate=q,
        steps=steps,
        delta=delta,
        mu=mu,
        mu_method=method,
        mu_is_approximation=approx,
        eps_exact=eps_exact,
        eps_rdp=eps_rdp,
        eps_prv=eps_prv,
        prv_error=prv_error,
    )
