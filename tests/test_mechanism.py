"""The analytic Gaussian path against a real Opacus DP-SGD step with gradient inversion."""
import numpy as np
import pytest
import torch
from scipy import stats

from audit_engine.mechanism import noise_std, privatize, privatize_dpsgd


@pytest.fixture()
def image():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 128, 128, generator=g)  # 16,384 pixels


def test_noise_std_is_norm_over_mu(image):
    assert float(noise_std(image, 4.0)) == pytest.approx(float(image.norm()) / 4.0, rel=1e-6)
    batch = torch.stack([image, image * 0.5])
    assert noise_std(batch, 2.0).shape == (2,)


def test_analytic_law(image):
    mu = 8.0
    s = float(image.norm()) / mu
    res = (privatize(image, mu, generator=torch.Generator().manual_seed(0)) - image) / s
    assert stats.kstest(res.flatten().numpy(), "norm").pvalue > 1e-3
    assert float((res**2).mean()) == pytest.approx(1.0, rel=0.05)


def test_common_random_numbers(image):
    xi = torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    a, b = privatize(image, 2.0, xi=xi), privatize(image, 20.0, xi=xi)
    torch.testing.assert_close((a - image) * 2.0, (b - image) * 20.0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mu", [0.5, 5.0, 50.0])
def test_opacus_step_matches_analytic_law(image, mu):
    s = float(image.norm()) / mu
    release = privatize_dpsgd(image, mu, generator=torch.Generator().manual_seed(7))
    assert release.clipping_active
    assert release.noise_std == pytest.approx(s, rel=1e-6)  # float64 vs float32 norm
    real = ((release.x_tilde - image) / s).flatten().double().numpy()
    analytic = ((privatize(image, mu, generator=torch.Generator().manual_seed(8)) - image) / s)
    analytic = analytic.flatten().double().numpy()
    assert real.size >= 10_000
    # same law: two-sample KS test, and each against N(0, 1)
    assert stats.ks_2samp(real, analytic).pvalue > 1e-3
    assert stats.kstest(real, "norm").pvalue > 1e-3
    # mean squared residual within 5% of (||x|| / mu)^2, in pixel units
    assert np.mean((real * s) ** 2) == pytest.approx(s**2, rel=0.05)


def test_opacus_step_is_seeded(image):
    a = privatize_dpsgd(image, 3.0, generator=torch.Generator().manual_seed(5)).x_tilde
    b = privatize_dpsgd(image, 3.0, generator=torch.Generator().manual_seed(5)).x_tilde
    torch.testing.assert_close(a, b)


def test_inactive_clipping_is_reported_and_inverted(image):
    small = image * 1e-4  # gradient norm below the clip norm
    r = privatize_dpsgd(small, 2.0, clip_norm=10.0, generator=torch.Generator().manual_seed(0))
    assert not r.clipping_active
    resid = (r.x_tilde - small).flatten()
    assert float(resid.std()) == pytest.approx(r.noise_std, rel=0.05)


def test_bad_mu_rejected(image):
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="mu"):
            privatize(image, bad)
