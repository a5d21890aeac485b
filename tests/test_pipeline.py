"""The pipeline's two steps (observe, attack), checked against the formulas computed a
second, independent way, and the seeded streams."""

import numpy as np
import pytest
import torch

from audit_engine.attacker import pipeline
from audit_engine.maths import streams
from audit_engine.maths.mechanism import privatize_dpsgd


def _oracle_t_star(abar: np.ndarray, pixel_std: float) -> int:
    """By brute force: the step whose noise-to-signal ratio (1 - abar) / abar is nearest the
    observation's variance in the model's [-1, 1] scale, (2 s)^2."""
    return int(np.argmin(np.abs((1 - abar) / abar - (2 * pixel_std) ** 2)))


@pytest.mark.parametrize("scale", [1.0, 1.7])
def test_analytic_release_and_its_timestep(tiny_prior, digit_image, scale):
    """Released with noise C / mu; the timestep matched to what the attacker reconstructs,
    the release rescaled by its public factor (noise scale C / mu)."""
    n, mus = 3, [0.5, 4.0, 60.0]
    x = digit_image.expand(n, *digit_image.shape)
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    norm = float(np.sqrt((digit_image.double().numpy() ** 2).sum()))
    c = 2 * norm  # clipping inactive
    obs = pipeline.observe(tiny_prior, x, mus, xi=xi, clip_norm=c, scale=scale)
    abar = tiny_prior.alphas_cumprod.double().numpy()
    for i, mu in enumerate(mus):
        assert obs.noise_std[i] == pytest.approx(c / mu, rel=1e-6)
        np.testing.assert_allclose(
            obs.images[i].numpy(), (x[i] + c / mu * xi[i]).numpy(), atol=1e-5
        )
        assert obs.matches[i].t_star == _oracle_t_star(abar, scale * c / mu)
        assert obs.matches[i].sigma_dm == pytest.approx(2 * scale * c / mu, rel=1e-6)
    assert len(obs) == n and obs.clip_norm == c and obs.scale == scale


def test_public_clip_norm_release(tiny_prior, digit_image):
    """With a public clip norm C the release is clip_C(x) + C / mu * xi, whatever ||x||."""
    c, mu = 0.5, 2.0
    x = torch.stack([digit_image, 0.1 * digit_image])
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    obs = pipeline.observe(tiny_prior, x, mu, xi=xi, clip_norm=c)
    for i in range(2):
        norm = float(x[i].norm())
        clipped = x[i] * min(1.0, c / norm)
        np.testing.assert_allclose(
            obs.images[i].numpy(), (clipped + c / mu * xi[i]).numpy(), atol=1e-6
        )
        assert obs.noise_std[i] == pytest.approx(c / mu)


def test_dpsgd_release_matches_the_mechanism(tiny_prior, digit_image):
    mu = 3.0
    obs = pipeline.observe(
        tiny_prior,
        digit_image[None],
        mu,
        mechanism="dpsgd",
        clip_norm=1.5,
        generators=[streams.keyed(7, 1)],
    )
    ref = privatize_dpsgd(digit_image, mu, clip_norm=1.5, generator=streams.keyed(7, 1))
    torch.testing.assert_close(obs.images[0], ref.x_tilde)
    assert obs.noise_std == [pytest.approx(ref.noise_std)]


def test_observe_refuses_what_it_cannot_release(tiny_prior, digit_image):
    x = digit_image[None]
    with pytest.raises(ValueError, match="standard-normal draw"):
        pipeline.observe(tiny_prior, x, 1.0, clip_norm=1.0)
    with pytest.raises(ValueError, match="one generator per image"):
        pipeline.observe(tiny_prior, x, 1.0, clip_norm=1.0, mechanism="dpsgd")
    with pytest.raises(ValueError, match="2 budgets for 1 images"):
        pipeline.observe(tiny_prior, x, [1.0, 2.0], clip_norm=1.0, xi=torch.zeros_like(x))
    with pytest.raises(ValueError, match="mechanism"):
        pipeline.observe(
            tiny_prior, x, 1.0, clip_norm=1.0, xi=torch.zeros_like(x), mechanism="laplace"
        )
    with pytest.raises(ValueError, match="clipping bound"):
        pipeline.observe(tiny_prior, x, 1.0, clip_norm=0.0, xi=torch.zeros_like(x))


def test_attack_starts_where_observe_matched(tiny_prior, digit_image):
    """attack is the reverse process from the matched timestep: with almost no noise the
    reconstruction is the image itself."""
    x = digit_image[None]
    obs = pipeline.observe(
        tiny_prior,
        x,
        1e5,
        clip_norm=float(x.norm()),
        xi=torch.randn(x.shape, generator=torch.Generator().manual_seed(3)),
    )
    assert obs.matches[0].t_star == 0
    rec = pipeline.attack(tiny_prior, obs, steps=1)
    assert float((rec - x).abs().max()) < 0.05


def test_keyed_streams_are_reproducible_and_distinct():
    a = torch.randn(8, generator=streams.keyed(1, 2))
    torch.testing.assert_close(a, torch.randn(8, generator=streams.keyed(1, 2)))
    for other in ((2, 1), (1, 3), (1, 2, 1), (2,)):
        assert not torch.equal(a, torch.randn(8, generator=streams.keyed(*other)))
    with pytest.raises(ValueError, match=">= 0"):
        streams.keyed(-1, 2)
    with pytest.raises(ValueError, match="purpose"):  # (1, 2, 0) would be the stream (1, 2)
        streams.keyed(1, 2, 0)


def test_observe_at_own_norm_is_the_old_per_image_law(tiny_prior, digit_image):
    """The evaluation scripts' release: each image with noise ||x|| / mu, unclipped."""
    x = torch.stack([digit_image, 0.5 * digit_image])
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    obs = pipeline.observe_at_own_norm(tiny_prior, x, [2.0, 8.0], xi=xi)
    for i, mu in enumerate([2.0, 8.0]):
        s = float(x[i].norm()) / mu
        assert obs.noise_std[i] == pytest.approx(s, rel=1e-6)
        torch.testing.assert_close(obs.images[i], x[i] + s * xi[i], rtol=1e-5, atol=1e-5)
