"""The analytic Gaussian path against a real Opacus DP-SGD step with gradient inversion: both
release clip_C(x) + (C / mu) xi with a public clipping bound C."""

import numpy as np
import pytest
import torch
from scipy import stats

from audit_engine.maths.mechanism import clip_to, noise_std, privatize, privatize_dpsgd


@pytest.fixture()
def image():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 128, 128, generator=g)  # 16,384 pixels


def test_noise_std_is_clip_over_mu(image):
    assert noise_std(4.0, 2.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="clipping bound"):
        noise_std(4.0, float("nan"))


@pytest.mark.parametrize("factor", [0.3, 3.0])  # clipping active, inactive
def test_analytic_law(image, factor):
    mu, c = 8.0, factor * float(image.norm())
    s = c / mu
    xc = clip_to(image[None], c)[0]
    assert float(xc.norm()) == pytest.approx(min(c, float(image.norm())), rel=1e-5)
    res = (privatize(image, mu, clip_norm=c, generator=torch.Generator().manual_seed(0)) - xc) / s
    assert stats.kstest(res.flatten().numpy(), "norm").pvalue > 1e-3
    assert float((res**2).mean()) == pytest.approx(1.0, rel=0.05)


def test_common_random_numbers(image):
    xi = torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    c = 10.0
    a, b = privatize(image, 2.0, clip_norm=c, xi=xi), privatize(image, 20.0, clip_norm=c, xi=xi)
    xc = clip_to(image[None], c)[0]
    torch.testing.assert_close((a - xc) * 2.0, (b - xc) * 20.0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mu", [0.5, 5.0, 50.0])
@pytest.mark.parametrize("factor", [0.3, 3.0])
def test_opacus_step_matches_analytic_law(image, mu, factor):
    c = factor * float(image.norm())
    s = c / mu
    release = privatize_dpsgd(image, mu, clip_norm=c, generator=torch.Generator().manual_seed(7))
    assert release.clipping_active == (factor < 1)
    assert release.noise_std == pytest.approx(s, rel=1e-6)
    xc = clip_to(image[None].double(), c)[0].float()
    real = ((release.x_tilde - xc) / s).flatten().double().numpy()
    analytic = (
        privatize(image, mu, clip_norm=c, generator=torch.Generator().manual_seed(8)) - xc
    ) / s
    analytic = analytic.flatten().double().numpy()
    assert real.size >= 10_000
    # same law: two-sample KS test, and each against N(0, 1)
    assert stats.ks_2samp(real, analytic).pvalue > 1e-3
    assert stats.kstest(real, "norm").pvalue > 1e-3
    # mean squared residual within 5% of (C / mu)^2, in pixel units
    assert np.mean((real * s) ** 2) == pytest.approx(s**2, rel=0.05)


def test_opacus_step_is_seeded(image):
    a = privatize_dpsgd(
        image, 3.0, clip_norm=5.0, generator=torch.Generator().manual_seed(5)
    ).x_tilde
    b = privatize_dpsgd(
        image, 3.0, clip_norm=5.0, generator=torch.Generator().manual_seed(5)
    ).x_tilde
    torch.testing.assert_close(a, b)


def test_bad_mu_rejected(image):
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="mu"):
            privatize(image, bad, clip_norm=1.0)
