"""An image's own budget and the budget an attack demonstrates (docs/METHOD.md, "Three
budgets").

The release ``clip_C(x) + (C / mu) xi`` (xi standard normal) of a training set with the
image against the same set without it is a shift of ``||clip_C(x)||`` under noise of std
``C / mu``: a Gaussian mechanism at

    mu_x = mu * min(1, ||x|| / C)                                         (own budget)

for this image (individual accounting: Feldman & Zrnic 2021; Koskela, Tobaben & Honkela
2023 for Gaussian DP). An image smaller than the clipping bound is better protected than
the nominal mu says.

Any attack on a mu_x-GDP release whose success without information is kappa succeeds with
probability at most Phi(Phi^-1(kappa) + mu_x) (Hayes, Mahloujifar & Balle 2023, the ReRo
bound for Gaussian DP). A measured success rate whose one-sided lower bound is p_lo, against
a chance whose upper bound is kappa_hi, therefore shows

    mu_demo = max(0, Phi^-1(p_lo) - Phi^-1(kappa_hi))                     (demonstrated)

with the confidence of both bounds together: when both hold, p_lo <= p <= Phi(Phi^-1(kappa)
+ mu_x) <= Phi(Phi^-1(kappa_hi) + mu_x), so mu_demo <= mu_x. It is an empirical lower bound
on the privacy the attack actually uses.
"""

from __future__ import annotations

import math

from scipy import special

__all__ = ["own_mu", "demonstrated_mu"]


def own_mu(mu: float, norm: float, clip_norm: float) -> float:
    """mu_x = mu min(1, ||x|| / C): the image's own budget in a release of nominal ``mu``
    with clipping bound ``clip_norm`` (C), for an image of L2 norm ``norm``."""
    if not (math.isfinite(mu) and mu >= 0):
        raise ValueError(f"mu must be finite and >= 0, got mu={mu!r}")
    if not (math.isfinite(norm) and norm >= 0):
        raise ValueError(f"the image's norm must be finite and >= 0, got {norm!r}")
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"the clipping bound must be finite and > 0, got {clip_norm!r}")
    return float(mu) * min(1.0, float(norm) / float(clip_norm))


def demonstrated_mu(p_lo: float, chance_hi: float) -> float:
    """mu_demo = max(0, Phi^-1(p_lo) - Phi^-1(chance_hi)): the budget a success rate with
    lower bound ``p_lo`` proves against a chance level with upper bound ``chance_hi``
    (0 when the rate is not shown above chance)."""
    for name, v in (("p_lo", p_lo), ("chance_hi", chance_hi)):
        if not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"{name} must lie in [0, 1], got {name}={v!r}")
    if p_lo <= chance_hi or p_lo <= 0:
        return 0.0
    if chance_hi <= 0:
        return math.inf
    return float(special.ndtri(min(p_lo, 1 - 1e-16)) - special.ndtri(chance_hi))
