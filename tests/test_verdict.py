"""The verdict rules: the exact and Wilson intervals against second methods, the labels and
their error rate under guessing, the exact guessing rate against simulation, and the noise
streams."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from audit_engine.attacker.attacks import correlation, guess_rate, identify
from audit_engine.audit.verdict import (
    Z95,
    AttackVerdict,
    Attribute,
    AttributeAttack,
    BudgetVerdict,
    decide,
    error_rates,
    exact_interval,
    looks,
    one_sided_bounds,
    wilson_interval,
)
from audit_engine.maths import streams


def _wilson_by_root_finding(k, n, z=Z95):
    """The Wilson interval as the set of p with |k/n - p| <= z sqrt(p (1 - p) / n)."""
    f = lambda p: (k / n - p) ** 2 - z * z * p * (1 - p) / n
    p_hat = k / n
    lo = 0.0 if k == 0 else brentq(f, 1e-15, min(p_hat, 1 - 1e-15))
    hi = 1.0 if k == n else brentq(f, max(p_hat, 1e-15), 1 - 1e-15)
    return lo, hi


@pytest.mark.parametrize(
    "k,n", [(0, 8), (1, 8), (3, 8), (4, 8), (8, 8), (7, 20), (50, 100), (1, 1)]
)
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
    # 8 tries, one look: disclosure needs the one-sided 97.5% lower end above chance
    assert decide(3, 8, chance)[0] == "undetermined"  # lower end 0.085 < 0.1
    assert decide(4, 8, chance)[0] == "partly recognisable"  # rate 1/2, not above
    assert decide(5, 8, chance)[0] == "recognisable"
    # protection needs the one-sided 95% upper end within chance + 0.10: not with 8 tries
    assert decide(0, 8, chance)[0] == "undetermined"  # upper end 0.31
    assert decide(0, 32, chance)[0] == "not recognisable"  # 0.089
    assert decide(10, 4096, chance)[0] == "not recognisable"
    # with 4 looks each look tests at a quarter of the levels: 7 of 64 passes one look, not four
    assert decide(7, 64, chance, n_looks=1)[0] == "not recognisable"
    assert decide(7, 64, chance, n_looks=4)[0] == "undetermined"
    # within the tolerance but above chance: protection (the claim the tolerance allows)
    assert decide(600, 4096, chance)[0] == "not recognisable"
    assert decide(900, 4096, chance)[0] == "partly recognisable"
    a = AttributeAttack.of("prior", 8, 8, 0.12, mu=5.0)
    assert a.level == "revealed" and a.rate == 1.0 and a.ci95[0] > 0.6
    assert AttributeAttack.of("prior", 1, 8, 0.12, mu=5.0).level == "undetermined"
    i = AttackVerdict.of("prior", 3, 8, 0.1, 10, mu=5.0)
    assert i.rate == 0.375 and i.ci95 == exact_interval(3, 8) and not i.proven
    # the DP bound alone proves protection where Phi(Phi^-1(chance) + mu) <= chance + 0.10
    assert AttackVerdict.of("prior", 3, 8, 0.1, 10, mu=0.3).level == "not recognisable"
    assert AttackVerdict.of("prior", 3, 8, 0.1, 10, mu=0.3).proven


def test_headline_is_the_worse_attacker_and_names_it():
    g = AttackVerdict.of("gallery", 2000, 4096, 0.1, 10, mu=2.0)
    p = AttackVerdict.of("prior", 1, 8, 0.1, 10, mu=2.0)
    v = BudgetVerdict.of(2.0, 10.0, 1e-5, p, g, None)
    assert v.verdict == "partly recognisable" and v.by == ("gallery",)
    assert "holds your image among 10 candidates" in v.headline()
    both = BudgetVerdict.of(
        0.2,
        1.0,
        1e-5,
        AttackVerdict.of("prior", 0, 8, 0.1, 10, mu=0.2),
        AttackVerdict.of("gallery", 420, 4096, 0.1, 10, mu=0.2),
        None,
    )
    assert both.verdict == "not recognisable" and both.by == ("prior", "gallery")
    und = BudgetVerdict.of(
        1.0,
        4.4,
        1e-5,
        AttackVerdict.of("prior", 9, 64, 0.1, 10, mu=1.0, n_looks=4),
        AttackVerdict.of("gallery", 500, 4096, 0.1, 10, mu=1.0),
        None,
    )
    assert und.verdict == "undetermined" and und.headline() == "undetermined at 64 tries"


def test_one_sided_bounds_match_their_definition():
    """The one-sided bounds are the two-sided interval's ends at twice the level."""
    for k, n in [(0, 8), (3, 8), (7, 64), (64, 64)]:
        lo, hi = one_sided_bounds(k, n, alpha_lo=0.025, alpha_hi=0.025)
        assert (lo, hi) == pytest.approx(_exact_by_bisection(k, n), abs=1e-9)


def _exact_by_bisection(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson from its definition: the p where P(X >= k) (lower end) or P(X <= k)
    (upper end) equals (1 - level) / 2, found by bisection on binomial sums."""
    from math import comb

    tail = (1 - level) / 2
    sf = lambda p: sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))
    cdf = lambda p: sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(0, k + 1))

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


SCHEDULES = [(8, 64), (4, 32), (8, 8), (4096, 4096)]  # embedded, 256 px, one look, gallery


@pytest.mark.parametrize("first,cap", SCHEDULES)
@pytest.mark.parametrize("chance", [0.1, 0.15, 0.23, 0.4, 0.6])
def test_both_error_rates_are_controlled(first, cap, chance):
    """Over all looks of the sequential rule, computed exactly: guessing (true rate = chance)
    is called disclosure at most 2.5% of the time, and a true rate of chance + 0.10 is
    called protected at most 5% of the time."""
    at_chance = error_rates(first, cap, chance, chance)
    at_tolerance = error_rates(first, cap, chance, min(1.0, chance + 0.10))
    assert at_chance["disclosure"] <= 0.025
    assert at_tolerance["protection"] <= 0.05
    for r in (at_chance, at_tolerance):
        assert sum(r[k] for k in ("disclosure", "protection", "undetermined")) == pytest.approx(1)


@pytest.mark.parametrize(
    "first,cap,chance,p",
    [(8, 64, 0.1, 0.1), (8, 64, 0.1, 0.2), (4, 32, 0.23, 0.5), (8, 64, 0.15, 0.05)],
)
def test_error_rates_match_a_simulation_of_the_rule(first, cap, chance, p):
    """error_rates (dynamic programming) against running the rule on simulated tries."""
    rng = np.random.default_rng(7)
    n_runs, counts = 4000, {"disclosure": 0, "protection": 0, "undetermined": 0}
    schedule = looks(first, cap)
    table = {}  # decide() once per (successes, tries)
    for _ in range(n_runs):
        outcomes = rng.random(cap) < p
        for k_total in schedule:
            key = (int(outcomes[:k_total].sum()), k_total)
            if key not in table:
                table[key] = decide(*key, chance, n_looks=len(schedule))[0]
            label = table[key]
            if label != "undetermined":
                break
        counts[
            "protection"
            if label == "not recognisable"
            else "undetermined"
            if label == "undetermined"
            else "disclosure"
        ] += 1
    exact = error_rates(first, cap, chance, p)
    for k, v in counts.items():
        assert exact[k] == pytest.approx(v / n_runs, abs=0.025)


def test_wilson_breaks_the_false_alarm_level_at_8_tries():
    """Why the rule uses exact intervals: Wilson's lower end clears chance 0.1 at 3 of 8,
    which guessing reaches 3.8% of the time (above 2.5%)."""
    from math import comb

    pmf = lambda k: comb(8, k) * 0.1**k * 0.9 ** (8 - k)
    assert sum(pmf(k) for k in range(9) if wilson_interval(k, 8)[0] > 0.1) > 0.03


def test_identify_picks_the_most_correlated_candidate():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 8, 8, generator=g)
    decoys = torch.rand(3, 9, 1, 8, 8, generator=g)
    recons = torch.stack(
        [
            target + 0.01 * torch.randn(1, 8, 8, generator=g),  # near target
            decoys[1, 4] * 2 + 0.1,  # a decoy, brighter: correlation ignores it
            torch.rand(1, 8, 8, generator=g),
        ]
    )
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


def test_the_attribute_claim_uses_the_one_rule_the_dp_bound_and_the_worse_attacker():
    """The class verdict is decide's, per attacker against its own base rate; the DP bound
    proves "not revealed" where Phi(Phi^-1(base) + mu) <= base + tolerance; the claim is the
    worse of the two attackers and names it."""
    from scipy.stats import norm

    # 0 of 8 has an upper bound near 0.42: undetermined by the tries alone ...
    assert AttributeAttack.of("prior", 0, 8, 0.12, mu=5.0).level == "undetermined"
    # ... but at mu 0.1 the DP bound proves it, computed independently here
    small = AttributeAttack.of("prior", 0, 8, 0.12, mu=0.1)
    assert small.proven and small.level == "not revealed"
    assert small.bound == pytest.approx(norm.cdf(norm.ppf(0.12) + 0.1), rel=1e-12)
    assert not AttributeAttack.of("prior", 0, 8, 0.12, mu=1.0).proven  # 0.36 > 0.22
    # the rule's disclosure: the exact lower bound above the base rate
    release = AttributeAttack.of("release", 257, 1024, 0.136, mu=0.6)
    assert release.level == "revealed" and release.lower > 0.136
    prior = AttributeAttack.of("prior", 1, 64, 0.12, mu=0.6)
    assert prior.level == "not revealed"
    claim = Attribute.of("digit class", "7", prior, release)
    assert claim.level == "revealed" and claim.by == ("release",) and claim.revealed
    assert claim.decisive is release and claim.successes == 257
    text = claim.sentence()
    assert "revealed" in text and "release itself" in text and "257 of 1024" in text
    assert (
        Attribute.of(
            "digit class", "7", prior, AttributeAttack.of("release", 100, 1024, 0.12, mu=0.6)
        ).level
        == "not revealed"
    )
    assert claim.to_dict()["release"]["ci95"] == list(release.ci95)


def test_the_release_attribute_attack_matches_a_direct_simulation():
    """release_attribute_attack's two rates against the Bayes classifier's written out here
    with numpy on the same kind of draws: equal within sampling error."""
    import numpy as np

    from audit_engine.audit.verdict import release_attribute_attack

    g = torch.Generator().manual_seed(0)
    pool = torch.rand((60, 1, 6, 6), generator=g)
    labels = np.arange(60) % 3
    x = pool[4].clone()  # class 1
    mu, c = 1.5, 3.0
    hits, blind = release_attribute_attack(
        x,
        pool,
        labels,
        clip_norm=c,
        mu=mu,
        label=1,
        tries=8192,
        generator=torch.Generator().manual_seed(1),
    )
    rng = np.random.default_rng(2)
    s = c / mu
    xc = x.numpy().ravel() * min(1.0, c / float(x.norm()))
    P = pool.numpy().reshape(60, -1)  # the pool as the attacker knows it

    def bayes(o):
        d2 = ((o[:, None, :] - P[None]) ** 2).sum(-1)
        w = -d2 / (2 * s * s)
        scores = np.stack([np.logaddexp.reduce(w[:, labels == k], axis=1) for k in range(3)], 1)
        return scores.argmax(1)

    o1 = xc[None] + s * rng.standard_normal((8000, xc.size))
    o0 = s * rng.standard_normal((8000, xc.size))
    p1, p0 = (bayes(o1) == 1).mean(), (bayes(o0) == 1).mean()
    assert abs(hits / 8192 - p1) < 0.03 and abs(blind / 8192 - p0) < 0.03  # about 4 SE
    assert hits / 8192 > blind / 8192  # the release carries the class at this budget


def test_each_verdict_shows_the_number_that_decided_it():
    """The evidence in a verdict's row agrees with its level: protection quotes a number
    within chance + tolerance (the DP bound when proven), disclosure one above chance."""
    import re

    from audit_engine.audit.verdict import PROTECTED, UNDETERMINED, AttackVerdict

    seen = set()
    for mu in (0.05, 0.5, 2.0, 20.0):
        for trials in (8, 64):
            for successes in range(0, trials + 1, max(1, trials // 8)):
                for chance in (0.1, 0.23):
                    v = AttackVerdict.of("prior", successes, trials, chance, 10, mu=mu)
                    text = v.evidence()
                    shown = [float(n) / 100 for n in re.findall(r"(\d+)%", text)]
                    seen.add((v.level, v.proven))
                    if v.level == PROTECTED:
                        assert len(shown) == 1 and shown[0] <= chance + v.tolerance + 0.005, text
                        assert ("DP guarantee" in text) == v.proven
                    elif v.level == UNDETERMINED:
                        assert len(shown) == 2 and shown[0] <= shown[1], text
                    else:
                        assert text.startswith("at least") and shown[0] > chance - 0.005, text
    assert {(PROTECTED, True), (PROTECTED, False), (UNDETERMINED, False)} <= seen
    assert any(level not in (PROTECTED, UNDETERMINED) for level, _ in seen)


def test_the_schedule_doubles_the_tries_up_to_the_cap():
    from audit_engine.audit.verdict import looks

    assert looks(8, 64) == [8, 16, 32, 64]
    assert looks(3, 10) == [3, 6, 10]
    assert looks(4, 4) == [4]


def test_the_dp_bound_proves_protection_exactly_within_the_tolerance():
    """dp_bound: Phi(Phi^-1(chance) + mu) against chance + tolerance, checked against the
    budget mu at which the bound reaches chance + tolerance (found by root-finding)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    from audit_engine.audit.verdict import dp_bound

    for chance in (0.1, 0.227, 0.5):
        edge = brentq(lambda m: norm.cdf(norm.ppf(chance) + m) - (chance + 0.1), 0, 10)
        assert dp_bound(edge * 0.99, chance, 0.1)[1] and not dp_bound(edge * 1.01, chance, 0.1)[1]
        bound, _ = dp_bound(0.3, chance, 0.1)
        assert bound == pytest.approx(norm.cdf(norm.ppf(chance) + 0.3))
