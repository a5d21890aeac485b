"""An image's own budget and the budget an attack demonstrates (maths/budgets.py), each
against a second, independent computation: the own budget against the release's
privacy-loss distribution integrated numerically; the demonstrated budget by simulating
attacks on the release at a known budget (no diffusion model needed)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from audit_engine.audit.verdict import ALPHA_DISCLOSURE, one_sided_bounds
from audit_engine.maths import accounting
from audit_engine.maths.budgets import demonstrated_mu, own_mu


@pytest.mark.parametrize("norm,clip,mu", [(3.0, 9.27, 2.0), (12.0, 9.27, 2.0), (0.5, 1.0, 8.0)])
def test_own_budget_matches_the_release_s_privacy_loss_distribution(norm, clip, mu):
    """delta(eps) of the release of this image (clip_C(x) + (C / mu) xi against the same
    without it), integrated from its privacy-loss distribution, equals the mu_x-GDP curve."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=64)
    x *= norm / np.linalg.norm(x)
    c = x * min(1.0, clip / np.linalg.norm(x))  # clip_C(x)
    sigma = clip / mu
    # the privacy loss log p(y | with x) / p(y | without) for y ~ N(c, sigma^2 I):
    # (<y, c> - ||c||^2 / 2) / sigma^2, a Gaussian of mean m and variance 2 m
    m = float(c @ c) / (2 * sigma**2)
    for eps in (0.5, 2.0, 5.0):
        delta, _ = integrate.quad(
            lambda l: -math.expm1(eps - l) * stats.norm.pdf(l, m, math.sqrt(2 * m)),
            eps,
            m + 40 * math.sqrt(2 * m) + 50,
        )
        assert accounting.delta_from_eps_mu(eps, own_mu(mu, norm, clip)) == pytest.approx(
            delta, rel=1e-6, abs=1e-12
        )


def test_own_budget_scales_with_the_image_below_the_clipping_bound():
    assert own_mu(4.0, 4.5, 9.0) == pytest.approx(2.0)
    assert own_mu(4.0, 2.25, 9.0) == pytest.approx(1.0)  # half the image, half the budget
    assert own_mu(4.0, 20.0, 9.0) == 4.0  # clipped: the nominal budget
    with pytest.raises(ValueError, match="clipping bound"):
        own_mu(1.0, 1.0, 0.0)


def test_demonstrated_budget_formula():
    assert demonstrated_mu(0.1, 0.1) == 0.0 and demonstrated_mu(0.05, 0.1) == 0.0
    assert demonstrated_mu(stats.norm.cdf(stats.norm.ppf(0.1) + 1.5), 0.1) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="p_lo"):
        demonstrated_mu(1.5, 0.1)


def _gallery_successes(rng, x, clip, mu, n, tries):
    """The gallery attacker in simulation: the release of x among n candidates (x and n - 1
    random look-alikes of the same norm), picked by the nearest candidate in L2."""
    d = len(x)
    decoys = rng.normal(size=(tries, n - 1, d))
    decoys *= np.linalg.norm(x) / np.linalg.norm(decoys, axis=2, keepdims=True)
    cands = np.concatenate([x[None, None].repeat(tries, 0), decoys], axis=1)

    def clip_to(v):
        return v * np.minimum(1.0, clip / np.linalg.norm(v, axis=-1, keepdims=True))

    release = clip_to(x)[None] + (clip / mu) * rng.normal(size=(tries, d))
    dist = np.linalg.norm(clip_to(cands) - release[:, None], axis=2)
    return int((dist.argmin(axis=1) == 0).sum())


@pytest.mark.parametrize("n", [2, 10])
@pytest.mark.parametrize("mu", [0.5, 2.0, 6.0])
def test_demonstrated_budget_never_exceeds_the_image_s_own_in_975_of_runs(n, mu):
    """At a known budget, with the image below the clipping bound (its own budget smaller
    than the nominal), the gallery attacker's demonstrated budget stays at or below the
    image's own in at least 97.5% of runs (the lower bound's confidence; chance is 1/n,
    known exactly)."""
    rng = np.random.default_rng(int(mu * 100) + n)
    clip, d, tries, runs = 9.0, 32, 200, 400
    x = rng.normal(size=d)
    x *= 6.0 / np.linalg.norm(x)  # ||x|| = 6 < C = 9
    mu_x = own_mu(mu, 6.0, clip)
    above = 0
    for _ in range(runs):
        k = _gallery_successes(rng, x, clip, mu, n, tries)
        p_lo, _ = one_sided_bounds(k, tries, alpha_lo=ALPHA_DISCLOSURE, alpha_hi=0.05)
        above += demonstrated_mu(p_lo, 1.0 / n) > mu_x
    assert above / runs <= 0.025, (above, runs)


def test_the_likelihood_attacker_demonstrates_the_whole_budget_as_tries_grow():
    """On two candidates (the image in the training set or not), the likelihood-ratio test
    that fires with probability kappa when the image is absent succeeds with probability
    Phi(Phi^-1(kappa) + mu_x) when present: the bound itself, so its demonstrated budget
    approaches mu_x as the tries grow, and never passes it."""
    rng = np.random.default_rng(1)
    mu_x, kappa = 1.5, 0.1
    threshold = stats.norm.ppf(1 - kappa)  # on the statistic <y, c> / (||c|| sigma)
    shown = []
    for tries in (100, 10_000, 1_000_000):
        statistic = mu_x + rng.normal(size=tries)  # the image is present
        k = int((statistic > threshold).sum())
        p_lo, _ = one_sided_bounds(k, tries, alpha_lo=ALPHA_DISCLOSURE, alpha_hi=0.05)
        shown.append(demonstrated_mu(p_lo, kappa))
    assert shown[0] < shown[1] < shown[2] <= mu_x
    assert shown[2] == pytest.approx(mu_x, rel=0.01)


def test_an_audit_states_the_image_s_own_and_demonstrated_budgets(tiny_prior, digit_image):
    """An image below the clipping bound gets its own budget in proportion to its norm; the
    demonstrated budgets never exceed it; verdicts.json, the sentence and the verdicts
    agree."""
    from audit_engine import run_audit

    norm = float(digit_image.norm())
    own = {}
    for factor in (2.0, 4.0):  # C = 2 ||x||, then 4 ||x||: the own budget halves
        res = run_audit(
            digit_image,
            mus=[2.0],
            prior=tiny_prior,
            steps=2,
            lpips=None,
            trials=2,
            clip_norm=factor * norm,
        )
        if not res.verdicts:
            pytest.skip("the tiny prior judged this image outside its domain")
        v = res.verdicts[0]
        own[factor] = v.own_mu
        assert v.own_mu == pytest.approx(2.0 / factor)
        assert (
            v.gallery.demonstrated_mu <= v.own_mu and v.identification.demonstrated_mu <= v.own_mu
        )
        b = res.verdicts_json()["budgets"][0]
        assert b["own_mu"] == v.own_mu and b["own_eps"] == pytest.approx(
            accounting.eps_from_mu(v.own_mu, res.delta)
        )
        assert f"own budget, eps {b['own_eps']:.3g}: below the nominal one" in v.budgets_sentence()
    assert own[4.0] == pytest.approx(own[2.0] / 2)


def test_the_budgets_plot_and_its_numbers_agree_with_the_verdicts(tiny_prior, digit_image):
    from audit_engine import run_audit
    from audit_engine.outputs.plots import budgets_figure, budgets_table

    res = run_audit(
        digit_image,
        mus=[0.5, 5.0, 50.0],
        prior=tiny_prior,
        steps=2,
        lpips=None,
        trials=2,
        clip_norm=2 * float(digit_image.norm()),
    )
    if not res.verdicts:
        pytest.skip("the tiny prior judged this image outside its domain")
    fig, table = budgets_figure(res, current_mu=5.0), budgets_table(res)
    own = next(t for t in fig.data if t.name.startswith("this image's own"))
    budgets = res.verdicts_json()["budgets"]
    assert list(own.y) == pytest.approx([b["own_eps"] for b in budgets])
    for b in budgets:
        assert f"| {b['eps']:.3g} | {b['own_eps']:.3g} |" in table
    in_mu = budgets_table(res, mode="mu")
    assert "nominal mu" in in_mu and "| 5 | 2.5 |" in in_mu  # own mu = mu / 2 (C = 2 ||x||)


def test_the_validity_rate_matches_a_simulation_of_the_rule():
    """verdict.demonstrated_validity (exact, by dynamic programming over the looks) against
    the sequential rule simulated at the DP bound, and at least 97.5% wherever it is used."""
    from audit_engine.audit.verdict import decide, demonstrated_validity, looks

    rng = np.random.default_rng(3)
    first, cap, chance, mu = 4, 32, 0.2, 0.5
    p = stats.norm.cdf(stats.norm.ppf(chance) + mu)
    schedule = looks(first, cap)
    invalid, runs = 0, 20_000
    draws = rng.random((runs, cap)) < p
    for row in draws:
        for j, k_total in enumerate(schedule):
            label, lo, _ = decide(int(row[:k_total].sum()), k_total, chance, n_looks=len(schedule))
            if label != "undetermined" or j == len(schedule) - 1:
                invalid += demonstrated_mu(lo, chance) > mu
                break
    exact = demonstrated_validity(first, cap, chance, mu)
    assert exact >= 0.975
    assert 1 - invalid / runs == pytest.approx(exact, abs=0.003)


def test_a_base_rate_measured_as_zero_gives_a_finite_demonstrated_budget():
    """The prior may never name a label by itself (a base rate of 0 in its samples): the
    demonstrated budget stays finite, as the DP bound does (chance kept inside (0, 1))."""
    from audit_engine.audit.verdict import AttributeAttack

    a = AttributeAttack.of("prior", 30, 32, 0.0, mu=5.0)
    assert 0 < a.demonstrated_mu < 20 and math.isfinite(a.demonstrated_mu)
