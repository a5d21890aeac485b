"""Bounds against closed forms and Monte Carlo on the real mechanism."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from audit_engine.maths import bounds
from audit_engine.maths.mechanism import privatize


def test_rero_gdp_closed_form_and_limits():
    assert bounds.rero_bound_gdp(0.0, 0.1) == pytest.approx(0.1)
    assert bounds.rero_bound_gdp(1.0, 0.5) == pytest.approx(stats.norm.cdf(1.0))
    k = 0.01
    assert bounds.rero_bound_gdp(2.0, k) == pytest.approx(stats.norm.cdf(stats.norm.ppf(k) + 2))
    assert bounds.rero_bound_gdp(50.0, k) == pytest.approx(1.0)
    vals = bounds.rero_bound_gdp(np.array([0.1, 1, 3]), k)
    assert np.all(np.diff(vals) > 0)


def test_rero_dp_closed_form():
    assert bounds.rero_bound_dp(1.0, 1e-5, 0.01) == pytest.approx(math.e * 0.01 + 1e-5)
    assert bounds.rero_bound_dp(1000.0, 1e-5, 0.01) == 1.0


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, float("nan")])
def test_kappa_validated(bad):
    with pytest.raises(ValueError, match="kappa"):
        bounds.rero_bound_gdp(1.0, bad)


def test_mse_law_matches_the_real_mechanism_by_monte_carlo():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 8, 8, generator=g)
    d, mu = x.numel(), 3.0
    c = 2 * float(x.norm())  # clipping inactive: the release is x + (C / mu) xi
    s = c / mu
    draws = privatize(x.expand(4000, *x.shape), mu, clip_norm=c, generator=g)  # 4000 in one call
    mses = (draws - x).flatten(1).pow(2).mean(1).double().numpy()
    law = stats.gamma(a=d / 2, scale=2 * s**2 / d)
    assert stats.kstest(mses, law.cdf).pvalue > 1e-3
    assert mses.mean() == pytest.approx(bounds.expected_mse(s), rel=0.03)
    for eta in np.quantile(mses, [0.1, 0.5, 0.9]):
        assert bounds.mse_cdf(eta, s=s, d=d) == pytest.approx((mses <= eta).mean(), abs=0.03)
    p = 10 * math.log10(1 / np.median(mses))
    assert bounds.psnr_sf(p, s=s, d=d) == pytest.approx(0.5, abs=0.03)
