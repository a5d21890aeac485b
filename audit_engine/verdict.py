"""Verdicts a privacy officer can trust: rates over repeated trials against chance.

One reconstruction is one guess by the attacker. A claim of disclosure is therefore a
rate over K trials (each a fresh privatization draw and, for DDPM, fresh reverse-process
noise), with its exact (Clopper-Pearson 1934) 95% interval, compared with what the same
attack achieves without information (the chance level). The interval is exact, not Wilson's
approximation, because the decision rests on its lower end: with K = 8 tries and chance
1/10, Wilson's lower end clears chance at 3 of 8, which guessing alone reaches 3.8% of the
time (above the 2.5% a one-sided 95% bound promises); the exact one needs 4 of 8 (0.5%).
``exact_interval``'s lower end exceeds chance with probability at most 2.5% when the true
rate is chance (tests/test_verdict.py computes it for every K and chance level used).
Wilson's interval remains for fractions over many images (batch summaries).

- identification (Hayes, Mahloujifar & Balle 2023, the source paper's success measure):
  in each trial the attacker picks, among n candidates (the target and n - 1 images of
  the prior's reference set), the one most similar to its reconstruction.
  *recognisable*: the rate exceeds 1/2 and the interval's lower end exceeds chance;
  *partly recognisable*: only the lower end exceeds chance; *not recognisable* otherwise;
- attribute disclosure: the rate at which the reconstruction's class equals the original's;
  *revealed* only when the interval's lower end exceeds chance;
- domain: an image whose typicality under the prior (reference.typicality) falls in either
  tail of the reference images' scores is outside the prior's domain, and no attribute
  claim is made for it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["Z95", "wilson_interval", "exact_interval", "identification_label", "attribute_revealed",
           "DOMAIN_PERCENTILE", "DOMAIN_FACTOR", "domain_threshold", "in_domain", "CANDIDATES", "Identification", "Attribute",
           "BudgetVerdict", "LABELS"]

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
CANDIDATES = 10  # n: the target and 9 look-alikes; chance 1/n
# an image whose typicality distance exceeds DOMAIN_FACTOR times this percentile of the
# reference images' own distances is outside the domain (rates measured in docs/DOMAIN.md:
# the margin keeps digits written a little differently, shifted or rotated, inside)
DOMAIN_PERCENTILE = 99.0
DOMAIN_FACTOR = 1.5
LABELS = ("recognisable", "partly recognisable", "not recognisable")


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval: the p for which k successes in n trials are not in either
    (1 - level) / 2 tail; its ends are beta quantiles."""
    from scipy.stats import beta

    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    a = (1 - level) / 2
    lo = 0.0 if successes == 0 else float(beta.ppf(a, successes, trials - successes + 1))
    hi = 1.0 if successes == trials else float(beta.ppf(1 - a, successes + 1, trials - successes))
    return lo, hi


def identification_label(successes: int, trials: int, chance: float) -> str:
    lo, _ = exact_interval(successes, trials)
    if lo <= chance:
        return "not recognisable"
    return "recognisable" if successes / trials > 0.5 else "partly recognisable"


def attribute_revealed(successes: int, trials: int, chance: float) -> bool:
    return exact_interval(successes, trials)[0] > chance


def domain_threshold(reference_distances) -> float:
    """The largest typicality distance still inside the domain."""
    import numpy as np

    return DOMAIN_FACTOR * float(np.percentile(reference_distances, DOMAIN_PERCENTILE))


def in_domain(distance: float, threshold: float) -> bool:
    return distance <= threshold


@dataclass(frozen=True)
class Identification:
    successes: int
    trials: int
    rate: float
    ci95: tuple[float, float]
    chance: float  # max(1/n, what the prior's own samples achieve on this image)
    candidates: int

    @classmethod
    def of(cls, successes: int, trials: int, chance: float, candidates: int) -> "Identification":
        return cls(successes, trials, successes / trials, exact_interval(successes, trials),
                   chance, candidates)


@dataclass(frozen=True)
class Attribute:
    name: str
    successes: int
    trials: int
    rate: float
    ci95: tuple[float, float]
    chance: float  # frequency of the original's class among the prior's own samples
    revealed: bool
    # tries in which a noise-aware classifier reading the privatized image itself (no
    # diffusion model; attacks.noise_aware_labels) gets the class: what the release
    # reveals without a generative prior
    without_prior: int | None = None

    @classmethod
    def of(cls, name: str, successes: int, trials: int, chance: float, *,
           without_prior: int | None = None) -> "Attribute":
        return cls(name, successes, trials, successes / trials,
                   exact_interval(successes, trials), chance,
                   attribute_revealed(successes, trials, chance), without_prior)


@dataclass(frozen=True)
class BudgetVerdict:
    mu: float
    eps: float
    delta: float
    trials: int
    identification: Identification
    attribute: Attribute | None
    verdict: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["identification"]["ci95"] = list(self.identification.ci95)
        if self.attribute is not None:
            d["attribute"]["ci95"] = list(self.attribute.ci95)
        return d

    def sentence(self) -> str:
        """The identification result in words."""
        i = self.identification
        if math.isclose(i.chance, 1 / i.candidates):
            chance = f"chance: 1 in {i.candidates}"
        elif i.chance > 1.5 / i.candidates:
            chance = f"guessing alone: {i.chance:.0%}, as this image resembles many of its kind"
        else:
            chance = f"guessing alone: {i.chance:.0%}"
        return (f"The attacker picks your image out of {i.candidates} images of this kind in "
                f"{i.successes} of {i.trials} tries ({chance}; 95% interval "
                f"{i.ci95[0]:.0%} to {i.ci95[1]:.0%}).")
