"""Conversions tested by inversion, against an independent mpmath computation (50 digits),
against Opacus where Opacus works, and against independent reference values."""

import math

import mpmath as mp
import pytest

from audit_engine.maths import accounting as acc

mp.mp.dps = 50


def mp_delta(eps, mu):
    eps, mu = mp.mpf(eps), mp.mpf(mu)
    return mp.ncdf(-eps / mu + mu / 2) - mp.exp(eps) * mp.ncdf(-eps / mu - mu / 2)


def mp_eps_from_mu(mu, delta):
    # bisection in 50-digit arithmetic, bracket [0, mu^2 + 20 mu + 50]: independent of brentq/log space
    lo, hi = mp.mpf(0), mp.mpf(mu) ** 2 + 20 * mp.mpf(mu) + 50
    if mp_delta(0, mu) <= delta:
        return 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if mp_delta(mid, mu) > delta:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)


@pytest.mark.parametrize(
    "mu,eps,half_ulp",
    [
        (0.5, 1.99, 0.005),
        (1, 4.38, 0.005),
        (2, 10.0, 0.05),
        (3, 16.7, 0.05),
        (5, 33.1, 0.05),
        (10, 91.8, 0.05),
    ],
)
def test_reference_values(mu, eps, half_ulp):
    # reference values of eps at delta 1e-5, to 3 significant figures, computed independently
    # of this code when the project was designed; docs/REPRODUCTION.md uses these budgets
    assert acc.eps_from_mu(mu, 1e-5) == pytest.approx(eps, abs=half_ulp)


@pytest.mark.parametrize("mu", [0.05, 0.5, 1, 2, 5, 10, 32, 50, 100])
@pytest.mark.parametrize("delta", [1e-12, 1e-6, 1e-5, 1e-3, 0.1])
def test_eps_from_mu_matches_high_precision(mu, delta):
    expected = mp_eps_from_mu(mu, delta)
    got = acc.eps_from_mu(mu, delta)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if got > 0:  # the delta we land on is the delta asked for
        assert float(mp_delta(got, mu)) == pytest.approx(delta, rel=1e-6)


@pytest.mark.parametrize("mu", [0.01, 0.1, 0.7, 1.3, 4, 17, 60, 150, 200])
@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-5, 0.01, 0.3, 0.5])
def test_round_trip_and_finiteness(mu, delta):
    eps = acc.eps_from_mu(mu, delta)
    assert math.isfinite(eps) and eps >= 0
    if eps > 0:
        assert acc.mu_from_eps(eps, delta) == pytest.approx(mu, rel=1e-9)
        assert acc.delta_from_eps_mu(eps, mu) == pytest.approx(delta, rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.01, 1, 8, 100, 1000, 20000])
@pytest.mark.parametrize("delta", [1e-12, 1e-5, 0.5])
def test_mu_from_eps_inverts(eps, delta):
    mu = acc.mu_from_eps(eps, delta)
    assert math.isfinite(mu) and mu > 0
    assert float(mp_delta(eps, mu)) == pytest.approx(delta, rel=1e-6)


def test_eps_zero_closed_form():
    # delta(0; mu) = 2 Phi(mu/2) - 1
    mu = acc.mu_from_eps(0.0, 0.2)
    assert float(2 * mp.ncdf(mu / 2) - 1) == pytest.approx(0.2, rel=1e-12)


def test_monotone():
    es = [acc.eps_from_mu(m, 1e-5) for m in (0.5, 1, 2, 4, 8, 16, 32, 64, 128)]
    assert all(a < b for a, b in zip(es, es[1:]))


@pytest.mark.parametrize("mu", [0.3, 1, 2, 5, 10])
def test_matches_opacus_where_it_works(mu):
    from opacus.accountants.analysis.gdp import eps_from_mu as opacus_eps

    assert acc.eps_from_mu(mu, 1e-5) == pytest.approx(opacus_eps(mu=mu, delta=1e-5), rel=1e-6)


@pytest.mark.parametrize(
    "call,bad",
    [
        (lambda: acc.eps_from_mu(-1, 1e-5), "mu=-1"),
        (lambda: acc.eps_from_mu(float("nan"), 1e-5), "mu=nan"),
        (lambda: acc.eps_from_mu(1, 0), "delta=0"),
        (lambda: acc.eps_from_mu(1, 1.5), "delta=1.5"),
        (lambda: acc.mu_from_eps(-2, 1e-5), "eps=-2"),
        (lambda: acc.mu_from_eps(float("inf"), 1e-5), "eps=inf"),
        (
            lambda: acc.dpsgd_budget(noise_multiplier=0, sample_rate=1, steps=1, delta=1e-5),
            "noise_multiplier=0",
        ),
        (
            lambda: acc.dpsgd_budget(noise_multiplier=1, sample_rate=1.5, steps=1, delta=1e-5),
            "sample_rate=1.5",
        ),
        (
            lambda: acc.dpsgd_budget(noise_multiplier=1, sample_rate=1, steps=0, delta=1e-5),
            "steps=0",
        ),
    ],
)
def test_validation_names_the_value(call, bad):
    with pytest.raises(ValueError, match=bad.replace("(", r"\(")):
        call()


def test_dpsgd_full_batch_is_exact():
    b = acc.dpsgd_budget(noise_multiplier=0.5, sample_rate=1.0, steps=1, delta=1e-5)
    assert b.mu == 2.0 and not b.mu_is_approximation and "exact" in b.mu_method
    assert b.eps_exact == pytest.approx(9.997, abs=1e-3)
    assert b.eps_prv == pytest.approx(b.eps_exact, rel=0.01)  # PRV is tight
    assert b.eps_rdp > b.eps_exact  # RDP is an upper bound, looser
    b4 = acc.dpsgd_budget(noise_multiplier=2.0, sample_rate=1.0, steps=4, delta=1e-5)
    assert b4.mu == pytest.approx(1.0) and b4.eps_best == pytest.approx(acc.eps_from_mu(1.0, 1e-5))


def test_dpsgd_subsampled_is_labelled_approximation():
    b = acc.dpsgd_budget(noise_multiplier=1.0, sample_rate=0.01, steps=1000, delta=1e-5)
    assert b.mu_is_approximation and "approximation" in b.mu_method
    assert b.mu == pytest.approx(0.01 * math.sqrt(1000 * math.expm1(1.0)))
    assert b.eps_exact is None and b.eps_prv is not None
    assert 0 < b.eps_prv <= b.eps_rdp * 1.05
    assert b.eps_best == b.eps_prv
