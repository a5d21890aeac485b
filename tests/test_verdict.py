"""The verdict rules: the exact and Wilson intervals against second methods, the labels and
their error rate under guessing, the exact guessing rate against simulation, and the noise
streams."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from audit_engine import streams
from audit_engine.attacks import correlation, guess_rate, identify
from audit_engine.verdict import (Z95, Attribute, Identification, attribute_revealed,
                                  identification_label, wilson_interval, exact_interval)


def _wilson_by_root_finding(k, n, z=Z95):
    """The Wilson interval as the set of p with |k/n - p| <= z sqrt(p (1 - p) / n)."""
    f = lambda p: (k / n - p) ** 2 - z * z * p * (1 - p) / n
    p_hat = k / n
    lo = 0.0 if k == 0 else brentq(f, 1e-15, min(p_hat, 1 - 1e-15))
    hi = 1.0 if k == n else brentq(f, max(p_hat, 1e-15), 1 - 1e-15)
    return lo, hi


@pytest.mark.parametrize("k,n", [(0, 8), (1, 8), (3, 8), (4, 8), (8, 8), (7, 20), (50, 100), (1, 1)])
def test_wilson_matches_root_finding(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson_by_root_finding(k, n), abs=1e-9)


def test_wilson_known_value():
    # statsmodels proportion_confint(3, 8, method="wilson") = (0.13684, 0.69425)
    assert wilson_interval(3, 8) == pytest.approx((0.136847, 0.694252), abs=1e-5)


def test_wilson_rejects_bad_counts():
    for k, n in [(-1, 8), (9, 8), (0, 0)]:
        with pytest.raises(ValueError):
            wilson_interval(k, n)


def test_labels_follow_the_rule():
    chance = 0.1
    assert identification_label(0, 8, chance) == "not recognisable"
    assert identification_label(3, 8, chance) == "not recognisable"  # exact lower end 0.085 < 0.1
    assert identification_label(4, 8, chance) == "partly recognisable"  # 0.157; rate 1/2, not above
    assert identification_label(5, 8, chance) == "recognisable"
    # a high chance level (the image resembles many of its kind) needs more successes
    assert identification_label(5, 8, 0.4) == "not recognisable"
    assert attribute_revealed(4, 8, 0.1) and not attribute_revealed(4, 8, 0.3)
    a = Attribute.of("digit class", 8, 8, 0.12)
    assert a.revealed and a.rate == 1.0 and a.ci95[0] > 0.6
    i = Identification.of(3, 8, 0.1, 10)
    assert i.rate == 0.375 and i.ci95 == exact_interval(3, 8)


def _exact_by_bisection(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson from its definition: the p where P(X >= k) (lower end) or P(X <= k)
    (upper end) equals (1 - level) / 2, found by bisection on binomial sums."""
    from math import comb

    tail = (1 - level) / 2
    sf = lambda p: sum(comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
    cdf = lambda p: sum(comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(0, k + 1))

    def solve(f, increasing):
        lo, hi = 0.0, 1.0
        for _ in range(80):
            mid = (lo + hi) / 2
            if (f(mid) < tail) == increasing:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    return (0.0 if k == 0 else solve(sf, True), 1.0 if k == n else solve(cdf, False))


@pytest.mark.parametrize("k,n", [(0, 8), (3, 8), (4, 8), (8, 8), (1, 4), (7, 32), (20, 32)])
def test_exact_interval_matches_its_definition(k, n):
    assert exact_interval(k, n) == pytest.approx(_exact_by_bisection(k, n), abs=1e-9)


@pytest.mark.parametrize("trials", [4, 8, 16, 32])
@pytest.mark.parametrize("chance", [0.1, 0.15, 0.23, 0.4])
def test_guessing_alone_is_called_disclosure_at_most_2_5_percent_of_the_time(trials, chance):
    """When the attack does no better than chance, the probability (an exact binomial sum)
    that a budget is called recognisable, or the attribute revealed, is at most 2.5%: the
    one-sided error the 95% interval promises. Wilson's interval breaks it at 8 tries."""
    from math import comb

    pmf = lambda k: comb(trials, k) * chance ** k * (1 - chance) ** (trials - k)
    claimed = sum(pmf(k) for k in range(trials + 1)
                  if identification_label(k, trials, chance) != "not recognisable")
    assert claimed <= 0.025
    assert sum(pmf(k) for k in range(trials + 1) if attribute_revealed(k, trials, chance)) <= 0.025
    if (trials, chance) == (8, 0.1):  # what the Wilson rule claimed: 3 of 8 and more
        assert sum(pmf(k) for k in range(trials + 1) if wilson_interval(k, trials)[0] > chance) > 0.03


def test_identify_picks_the_most_correlated_candidate():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 8, 8, generator=g)
    decoys = torch.rand(3, 9, 1, 8, 8, generator=g)
    recons = torch.stack([target + 0.01 * torch.randn(1, 8, 8, generator=g),  # near target
                          decoys[1, 4] * 2 + 0.1,  # a decoy, brighter: correlation ignores it
                          torch.rand(1, 8, 8, generator=g)])
    hits = identify(recons, target, decoys)
    assert hits[0] and not hits[1]
    c = correlation(recons, target[None])
    assert c.shape == (3, 1) and float(c[0, 0]) > 0.99
    # a flat target correlates 0 with everything: a reconstruction anti-correlated with
    # every decoy must not count as identifying it
    flat = torch.zeros(1, 8, 8)
    anti = -decoys[0].mean(0, keepdim=True)
    assert float(correlation(anti, decoys[0]).max()) < 0
    assert not identify(anti, flat, decoys[:1]).any()


def test_guess_rate_exact_formula_matches_simulation():
    """The exact average over decoy draws equals a Monte Carlo of the identification rule."""
    g = torch.Generator().manual_seed(1)
    reference = torch.rand(60, 1, 6, 6, generator=g)
    target = torch.rand(1, 6, 6, generator=g)
    samples = torch.rand(40, 1, 6, 6, generator=g) * 0.5 + target * 0.5  # biased towards it
    exact = guess_rate(target, samples, reference, candidates=10)
    rng = np.random.default_rng(0)
    n = 20000  # draws of (a sample, 9 distinct decoys), all judged in one call
    j = rng.integers(len(samples), size=n)
    idx = rng.random((n, len(reference))).argsort(axis=1)[:, :9]
    hits = int(identify(samples[j], target, reference[idx]).sum())
    assert exact == pytest.approx(hits / n, abs=0.015)
    assert exact > 0.2  # samples that resemble the target beat 1/10: the chance level rises


def test_guess_rate_excludes_the_target_and_self_matches():
    g = torch.Generator().manual_seed(2)
    reference = torch.rand(30, 1, 5, 5, generator=g)
    target = reference[7].clone()  # the target is one of the reference images
    rate = guess_rate(target, reference, reference, candidates=10, samples_are_reference=True)
    assert 0 <= rate <= 1 and math.isfinite(rate)
    # a sample equal to the target is not its own decoy: it always picks the target
    assert guess_rate(target, target[None], reference, candidates=10) == pytest.approx(1.0)


def test_noise_streams_are_keyed_by_image_seed_and_trial():
    a, b = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    da, db = streams.image_digest(a), streams.image_digest(b)
    assert da != db
    s = lambda d, seed=0, trial=0, p=streams.PRIVATIZE: streams.stream_seed(seed, d, trial, p)
    assert s(da) == s(da) and s(da) != s(db)
    assert len({s(da, trial=k) for k in range(8)}) == 8
    assert s(da, seed=1) != s(da) and s(da, p=streams.REVERSE) != s(da)
    x1 = torch.randn(3, generator=streams.generator(0, da, 0, streams.PRIVATIZE))
    x2 = torch.randn(3, generator=streams.generator(0, da, 0, streams.PRIVATIZE))
    assert torch.equal(x1, x2)
