"""Verdicts a privacy officer can act on: rates over repeated tries against chance, for two
attackers, with evidence in both directions.

One reconstruction is one guess by the attacker. A claim is therefore a rate over K tries
(each a fresh privatization draw, fresh look-alikes and, for DDPM, fresh reverse-process
noise) with an exact (Clopper-Pearson 1934) interval, compared with what the same attack
achieves without information about the image (its *chance*).

Two threat models, named on every claim:

- **gallery** ("an attacker who already holds your image among n candidates"; Hayes,
  Mahloujifar & Balle 2023): the optimal test on the privatized image itself, the candidate
  nearest to it in L2 (attacks.gallery_attack). It needs no prior and is the setting of the
  ReRo bound; it costs microseconds a try, so it is measured with GALLERY_TRIES tries.
- **prior** ("an attacker who only knows what such images look like"; the source paper's
  attack): the diffusion reconstruction, and whether it is recognisable among look-alikes
  (attacks.identify). Each try costs a reverse process, so its tries are added
  sequentially (below).

The rule (``decide``), the same for both attackers and for the attribute:

- *protected* ("not recognisable", "ATTRIBUTE not revealed"): the upper end of the success
  rate's one-sided interval is within ``tolerance`` of chance (default TOLERANCE, chance +
  0.10), or the DP bound itself keeps the attack there (``proven``: Phi(Phi^-1(chance) + mu),
  Kaissis et al. 2023, for the release's mu);
- *disclosure* ("recognisable" when the rate also exceeds 1/2, else "partly recognisable";
  "class revealed"): the lower end of the one-sided interval exceeds chance;
- *undetermined at K tries* otherwise: the product adds tries before it says anything.

Sequential tries (the prior attack): K, 2K, 4K, ... up to a cap, stopping at the first look
that decides. With L looks fixed in advance, every look tests at ALPHA_DISCLOSURE / L and
ALPHA_PROTECTION / L (Bonferroni), so over all looks guessing is called disclosure with
probability at most 2.5%, and a true rate of chance + tolerance is called protected with
probability at most 5%, whatever the chance level. docs/VERDICTS.md gives both error rates
computed exactly for the schedules the product uses (scripts/verdict_error_rates.py).

Domain (``domain_check``): an image whose typicality profile under the prior
(reference.typicality) lies farther from the reference images' than DOMAIN_FACTOR times
their DOMAIN_PERCENTILE-th percentile is outside the prior's domain: no verdict at all.
Attributes are claimed only for originals the prior's classifier reads with confidence at
least ATTRIBUTE_CONFIDENCE.

``Judge`` applies all of it to one audit, in this order: the domain, the chance levels from
the reference set, the gallery attack, the attribute's chance, each budget's verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..attacker.attacks import (
    eligible_decoys,
    gallery_attack,
    guess_rate,
    identify,
    noise_aware_labels,
)
from ..attacker.attributes import attack_pool
from ..attacker.priors import Prior
from ..maths import accounting, streams
from ..maths.bounds import rero_bound_gdp
from ..maths.budgets import demonstrated_mu as _demonstrated
from ..maths.budgets import own_mu as _own_mu
from ..maths.mechanism import clip_to
from .reference import IMAGE_STATISTICS, Reference, typicality

if TYPE_CHECKING:  # the audit's result, which the judge reads and returns judged
    from .run import AuditResult

__all__ = [
    "Z95",
    "wilson_interval",
    "exact_interval",
    "one_sided_bounds",
    "decide",
    "looks",
    "TOLERANCE",
    "ALPHA_DISCLOSURE",
    "ALPHA_PROTECTION",
    "GALLERY_TRIES",
    "ATTRIBUTE_CONFIDENCE",
    "DOMAIN_PERCENTILE",
    "DOMAIN_FACTOR",
    "domain_threshold",
    "in_domain",
    "outside_domain",
    "domain_check",
    "DomainCheck",
    "Judge",
    "CANDIDATES",
    "LABELS",
    "PROTECTED",
    "UNDETERMINED",
    "SEVERITY",
    "ATTACKERS",
    "AttackVerdict",
    "Attribute",
    "AttributeAttack",
    "ATTRIBUTE_ATTACKERS",
    "RELEASE_TRIES",
    "release_attribute_attack",
    "NEAR_DOMAIN_CAVEAT",
    "BudgetVerdict",
    "worst",
    "error_rates",
    "demonstrated_validity",
]

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
CANDIDATES = 10  # n: the target and 9 look-alikes; chance 1/n
TOLERANCE = 0.10  # protection: the rate's upper bound within chance + this
ALPHA_DISCLOSURE = 0.025  # P[disclosure called | the true rate is chance], all looks together
ALPHA_PROTECTION = 0.05  # P[protection called | the true rate is chance + tolerance]
GALLERY_TRIES = 4096  # tries of the gallery attack per budget (one look)
RELEASE_TRIES = 1024  # tries of the prior-free attribute attack per budget (one look)
ATTRIBUTE_CONFIDENCE = 0.9  # the classifier's confidence on the original for an attribute claim
# said on every digit-class claim: letters drawn like digits pass the domain check and are
# read as digits confidently, and no check tried separates them well enough to refuse the
# claim for them (scripts/evaluate_letters.py, docs/DOMAIN.md)
NEAR_DOMAIN_CAVEAT = (
    "This reading assumes your image is a digit: the classifier also reads "
    "letters drawn like digits as digits, and no check here tells them apart "
    "reliably (docs/DOMAIN.md)."
)
# an image whose typicality distance exceeds DOMAIN_FACTOR times this percentile of the
# reference images' own distances is outside the domain (rates measured in docs/DOMAIN.md:
# the margin keeps digits written a little differently, shifted or rotated, inside)
DOMAIN_PERCENTILE = 99.0
DOMAIN_FACTOR = 1.5
PROTECTED, UNDETERMINED = "not recognisable", "undetermined"
LABELS = ("recognisable", "partly recognisable", UNDETERMINED, PROTECTED)
SEVERITY = {label: len(LABELS) - 1 - i for i, label in enumerate(LABELS)}  # higher = worse
ATTACKERS = {
    "gallery": "an attacker who already holds your image among {n} candidates",
    "prior": "an attacker who only knows what such images look like",
}


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def one_sided_bounds(
    successes: int, trials: int, *, alpha_lo: float, alpha_hi: float
) -> tuple[float, float]:
    """Exact (Clopper-Pearson) one-sided bounds: the lower end at level 1 - alpha_lo and the
    upper end at level 1 - alpha_hi; each is a beta quantile."""
    from scipy.stats import beta

    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha_lo, successes, trials - successes + 1))
    hi = (
        1.0
        if successes == trials
        else float(beta.ppf(1 - alpha_hi, successes + 1, trials - successes))
    )
    return lo, hi


def exact_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval: the p for which k successes in n trials are not in either
    (1 - level) / 2 tail; its ends are beta quantiles."""
    a = (1 - level) / 2
    return one_sided_bounds(successes, trials, alpha_lo=a, alpha_hi=a)


def looks(first: int, cap: int) -> list[int]:
    """The sequential rule's tries after each look: first, 2 first, 4 first, ..., cap."""
    if not 1 <= first <= cap:
        raise ValueError(f"need 1 <= first tries <= cap, got {first} and {cap}")
    out = [int(first)]
    while out[-1] < cap:
        out.append(min(2 * out[-1], int(cap)))
    return out


def decide(
    successes: int, trials: int, chance: float, *, n_looks: int = 1, tolerance: float = TOLERANCE
) -> tuple[str, float, float]:
    """(label, lower, upper) of one look of the rule (module docstring); ``n_looks``: the
    looks the sequential rule may take, which divides both error levels."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must lie strictly between 0 and 1, got {tolerance!r}")
    lo, hi = one_sided_bounds(
        successes, trials, alpha_lo=ALPHA_DISCLOSURE / n_looks, alpha_hi=ALPHA_PROTECTION / n_looks
    )
    if hi <= chance + tolerance:
        return PROTECTED, lo, hi
    if lo > chance:
        return ("recognisable" if successes / trials > 0.5 else "partly recognisable"), lo, hi
    return UNDETERMINED, lo, hi


def _inside(chance: float) -> float:
    """A chance level kept inside (0, 1) for Phi^-1: a base rate measured as 0 or 1 is a
    finite sample's, not a true 0 or 1."""
    return min(max(float(chance), 1e-9), 1 - 1e-9)


def demonstrated(lower: float, chance: float) -> float:
    """The budget a rate with lower bound ``lower`` demonstrates against ``chance``
    (maths/budgets.py), with chance kept inside (0, 1) as in dp_bound: a base rate measured
    as 0 (the prior never names a label by itself) is a finite sample's, not a true 0."""
    return _demonstrated(lower, _inside(chance))


def dp_bound(mu: float, chance: float, tolerance: float = TOLERANCE) -> tuple[float, bool]:
    """(the DP bound on the attack's success, Phi(Phi^-1(chance) + mu), and whether it alone
    proves protection: the bound within chance + tolerance), for either claim."""
    bound = float(rero_bound_gdp(mu, _inside(chance)))
    return bound, bound <= chance + tolerance


def domain_threshold(reference_distances) -> float:
    """The largest typicality distance still inside the domain."""
    return DOMAIN_FACTOR * float(np.percentile(reference_distances, DOMAIN_PERCENTILE))


def in_domain(distance: float, threshold: float) -> bool:
    return distance <= threshold


def outside_domain(calibration: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Which typicality profiles a domain check calibrated on the profiles ``calibration``
    (the reference images') puts outside the domain (the evaluations' two-fold rule: one
    half calibrates, the other is judged)."""
    ref = Reference(
        images=torch.zeros(1), samples=torch.zeros(1), profiles=calibration, source="calibration"
    )
    return ~in_domain(ref.distance(profiles), domain_threshold(ref.distances))


DOMAIN_METHOD = (
    "Mahalanobis distance of the prior's denoising-error profile (log MSE at fixed "
    "timesteps and noise) and the image's mean grey level and contrast from its "
    "{n} reference images'; beyond {factor:g} x their {percentile:g}th percentile = "
    "outside the domain"
)


@dataclass(frozen=True)
class DomainCheck:
    """Whether an image is inside the prior's domain, and the evidence: the typicality
    distance (``score``), its percentile among the reference images' distances, the
    threshold, the ``tail`` ("simpler" or "more complex" than the reference on average, by
    the mean log denoising error) and the method in words. Outside the domain no verdict is
    made; ``warning`` is the one sentence every output says then."""

    in_domain: bool
    score: float
    percentile: float
    threshold: float
    tail: str
    method: str = ""

    def warning(self) -> str:
        """What a reader is told about an image outside the domain ("" inside)."""
        if self.in_domain:
            return ""
        return (
            "This image is outside what the prior knows: the attacker's prior was trained "
            f"on other kinds of images (typicality distance {self.score:.1f}; images of its "
            f"kind stay below {self.threshold:.1f}). The reconstructions show what the "
            "prior would guess, not a leak of this image, and no verdict or attribute claim "
            "is made. Pick a prior trained on images like yours."
        )

    def summary(self) -> str:
        """The check in one line, for the report's parameters."""
        return (
            f"{'inside' if self.in_domain else 'OUTSIDE'} the prior's domain (distance "
            f"{self.score:.2f}, threshold {self.threshold:.2f}; {self.method})"
        )

    def to_dict(self) -> dict:
        """As verdicts.json writes it."""
        return asdict(self)


def domain_check(ref: Reference, profile: np.ndarray) -> DomainCheck:
    """The domain check of one typicality profile against the reference set."""
    dist = float(ref.distance(profile)[0])
    threshold = domain_threshold(ref.distances)
    k = len(IMAGE_STATISTICS)
    errors = np.atleast_2d(profile)[0, :-k]
    return DomainCheck(
        in_domain=bool(in_domain(dist, threshold)),
        score=dist,
        percentile=100.0 * float(np.mean(ref.distances < dist)),
        threshold=threshold,
        tail="simpler" if float(np.mean(errors - ref.mean_profile[:-k])) < 0 else "more complex",
        method=DOMAIN_METHOD.format(
            n=len(ref.distances), factor=DOMAIN_FACTOR, percentile=DOMAIN_PERCENTILE
        ),
    )


@dataclass(frozen=True)
class AttackVerdict:
    """One attacker's result at one budget, with the rule's decision."""

    attacker: str  # "gallery" or "prior" (ATTACKERS)
    successes: int
    trials: int
    rate: float
    ci95: tuple[float, float]  # two-sided exact 95% interval, for display
    lower: float  # the rule's lower bound (disclosure when above chance)
    upper: float  # the rule's upper bound (protection when within chance + tolerance)
    chance: float  # what this attack achieves without information about the image
    candidates: int
    tolerance: float
    bound: float  # the DP bound on this attack's success: Phi(Phi^-1(chance) + mu)
    level: str  # one of LABELS
    proven: bool = False  # protected by the DP bound alone, whatever the tries show
    n_looks: int = 1
    # the budget this attack demonstrably uses: Phi^-1(lower) - Phi^-1(chance), 0 when not
    # shown above chance (maths/budgets.py)
    demonstrated_mu: float = 0.0

    @classmethod
    def of(
        cls,
        attacker: str,
        successes: int,
        trials: int,
        chance: float,
        candidates: int,
        *,
        mu: float,
        tolerance: float = TOLERANCE,
        n_looks: int = 1,
    ) -> "AttackVerdict":
        level, lo, hi = decide(successes, trials, chance, n_looks=n_looks, tolerance=tolerance)
        bound, proven = dp_bound(mu, chance, tolerance)
        if proven:
            level = PROTECTED
        return cls(
            attacker,
            int(successes),
            int(trials),
            successes / trials,
            exact_interval(successes, trials),
            lo,
            hi,
            float(chance),
            int(candidates),
            float(tolerance),
            bound,
            level,
            proven,
            int(n_looks),
            demonstrated(lo, chance),
        )

    @property
    def who(self) -> str:
        return ATTACKERS[self.attacker].format(n=self.candidates)

    def evidence(self) -> str:
        """The number that decided this attacker's level, in a few words: the DP bound when
        it proves protection, the upper bound for protection, the lower bound for
        disclosure, both while undetermined."""
        if self.proven:
            return f"at most {self.bound:.0%} by the DP guarantee (proven)"
        if self.level == PROTECTED:
            return f"at most {self.upper:.0%}"
        if self.level == UNDETERMINED:
            return f"between {self.lower:.0%} and {self.upper:.0%}"
        return f"at least {self.lower:.0%}"

    def sentence(self) -> str:
        """This attacker's result in words."""
        if self.attacker == "gallery":
            head = f"An attacker who holds your image among {self.candidates} candidates picks it"
        else:
            head = (
                "An attacker who knows only what such images look like picks your image "
                f"out of {self.candidates} from its reconstruction"
            )
        rate = f"{self.successes} of {self.trials} tries ({self.rate:.1%}; chance {self.chance:.1%}"
        limit = f"chance + {self.tolerance:.0%}"
        if self.proven:
            tail = (
                f"). The DP guarantee alone keeps it below {self.bound:.1%}, within {limit}: "
                f"**{self.level}** (proven)."
            )
        elif self.level == PROTECTED:
            tail = f"; at most {self.upper:.1%}, within {limit}): **{self.level}**."
        elif self.level == UNDETERMINED:
            tail = (
                f"; between {self.lower:.1%} and {self.upper:.1%}): **undetermined at "
                f"{self.trials} tries**."
            )
        else:
            tail = f"; at least {self.lower:.1%}): **{self.level}**."
        return f"{head} in {rate}{tail}"


ATTRIBUTE_LEVELS = {PROTECTED: "not revealed", UNDETERMINED: UNDETERMINED}
ATTRIBUTE_SEVERITY = {"not revealed": 0, UNDETERMINED: 1, "revealed": 2}
ATTRIBUTE_ATTACKERS = {
    "prior": "an attacker who reads it off its reconstruction (with the prior)",
    "release": "an attacker who reads it off the release itself (a noise-aware classifier, no "
    "generative model)",
}


@dataclass(frozen=True)
class AttributeAttack:
    """One attribute attacker's result at one budget: how often it names the original's
    label, against its own base rate (its success on releases without the image), by the
    rule of ``decide``; protection is also proven by the DP bound Phi(Phi^-1(base) + mu)
    (the hypothesis-testing view of mu-GDP holds for any fixed attack)."""

    attacker: str  # "prior" (a classifier reading the reconstruction) or "release"
    successes: int
    trials: int
    rate: float
    ci95: tuple[float, float]
    lower: float
    upper: float
    chance: float  # the base rate: this attack's success on releases without the image
    tolerance: float
    bound: float  # Phi(Phi^-1(chance) + mu)
    level: str  # "revealed", "not revealed" or "undetermined"
    proven: bool = False
    n_looks: int = 1
    demonstrated_mu: float = 0.0  # as AttackVerdict's

    @classmethod
    def of(
        cls,
        attacker: str,
        successes: int,
        trials: int,
        chance: float,
        *,
        mu: float,
        tolerance: float = TOLERANCE,
        n_looks: int = 1,
    ) -> "AttributeAttack":
        label, lo, hi = decide(successes, trials, chance, n_looks=n_looks, tolerance=tolerance)
        level = ATTRIBUTE_LEVELS.get(label, "revealed")
        bound, proven = dp_bound(mu, chance, tolerance)
        if proven:
            level = "not revealed"
        return cls(
            attacker,
            int(successes),
            int(trials),
            successes / trials,
            exact_interval(successes, trials),
            lo,
            hi,
            float(chance),
            float(tolerance),
            bound,
            level,
            proven,
            int(n_looks),
            demonstrated(lo, chance),
        )

    @property
    def who(self) -> str:
        return ATTRIBUTE_ATTACKERS[self.attacker]

    def evidence(self) -> str:
        """The number that decided, in words."""
        limit = f"base rate + {self.tolerance:.0%}"
        if self.proven:
            return f"the DP guarantee keeps it below {self.bound:.1%}, within {limit} (proven)"
        if self.level == "not revealed":
            return f"at most {self.upper:.1%}, within {limit}"
        if self.level == "revealed":
            return f"at least {self.lower:.1%}, above the base rate"
        return f"between {self.lower:.1%} and {self.upper:.1%}"


@dataclass(frozen=True)
class Attribute:
    """What an attacker learns about the image: its label (the digit's class, a diagnosis)
    as read by the prior's attribute classifier, judged for two attackers; the claim is the
    worse of the two and says whose."""

    name: str
    original: str  # the label the classifier reads on the original
    prior: AttributeAttack  # a classifier reading the reconstruction
    release: AttributeAttack | None  # a noise-aware classifier reading the release
    level: str  # the worse of the two attackers' levels
    by: tuple[str, ...] = ()
    caveat: str = ""  # what the reading of the original assumes (NEAR_DOMAIN_CAVEAT)

    @classmethod
    def of(
        cls,
        name: str,
        original: str,
        prior: AttributeAttack,
        release: AttributeAttack | None = None,
        caveat: str = "",
    ) -> "Attribute":
        both = [a for a in (prior, release) if a is not None]
        top = max(ATTRIBUTE_SEVERITY[a.level] for a in both)
        level = next(k for k, v in ATTRIBUTE_SEVERITY.items() if v == top)
        return cls(
            name,
            str(original),
            prior,
            release,
            level,
            tuple(a.attacker for a in both if a.level == level),
            caveat,
        )

    @property
    def revealed(self) -> bool:
        return self.level == "revealed"

    @property
    def decisive(self) -> AttributeAttack:
        """The attacker the claim comes from (the prior attacker when both agree)."""
        return self.prior if self.by[0] == "prior" else self.release

    # the deciding attacker's numbers, where one number is asked for
    successes = property(lambda self: self.decisive.successes)
    trials = property(lambda self: self.decisive.trials)
    upper = property(lambda self: self.decisive.upper)

    @property
    def without_prior(self) -> int | None:
        """Tries in which the release alone gives the label away (the prior-free attacker)."""
        return None if self.release is None else self.release.successes

    def needs_tries(self) -> bool:
        """Whether more tries of the prior attacker could decide the claim."""
        return self.level == UNDETERMINED and self.prior.level == UNDETERMINED

    def sentence(self) -> str:
        """The claim in words, with the evidence that decided it, for each attacker."""
        head = {
            "revealed": f"**The {self.name} is revealed**",
            "not revealed": f"**The {self.name} is not revealed**",
            UNDETERMINED: f"**The {self.name} is undetermined**",
        }[self.level]
        whose = (
            "both attackers"
            if len(self.by) > 1
            else "the attacker " + ATTRIBUTE_ATTACKERS[self.by[0]].split(" who ", 1)[1]
        )
        parts = []
        for a in (self.prior, self.release):
            if a is not None:
                how = ATTRIBUTE_ATTACKERS[a.attacker].split(" who ", 1)[1]
                parts.append(
                    f"One who {how}: {a.successes} of {a.trials} tries name "
                    f'"{self.original}" ({a.rate:.1%}; base rate {a.chance:.1%}; '
                    f"{a.evidence()}): {a.level}."
                )
        tail = f" {self.caveat}" if self.caveat else ""
        return (
            f"{head} (by {whose}). The classifier reads your image as: {self.original}. "
            + " ".join(parts)
            + tail
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["by"] = list(self.by)
        for k in ("prior", "release"):
            if d[k] is not None:
                d[k]["ci95"] = list(d[k]["ci95"])
        d["revealed"] = self.revealed
        return d


def release_attribute_attack(
    x: torch.Tensor,
    pool: torch.Tensor,
    pool_labels: np.ndarray,
    *,
    clip_norm: float,
    mu: float,
    label,
    tries: int,
    generator: torch.Generator,
    chunk: int = 256,
) -> tuple[int, int]:
    """The prior-free attribute attack (a noise-aware Bayes classifier over the pool of the
    prior's images, attacks.noise_aware_labels) on ``tries`` fresh releases clip_C(x) +
    (C / mu) xi of the image, and on as many releases without it ((C / mu) xi: add/remove
    adjacency): (tries naming ``label``, releases without the image naming it)."""
    s = clip_norm / mu
    xc = clip_to(x[None], clip_norm)[0]
    hits = blind = 0
    for i in range(0, tries, chunk):
        n = min(chunk, tries - i)
        with_x = xc + s * torch.randn((n, *x.shape), generator=generator)
        without = s * torch.randn((n, *x.shape), generator=generator)
        hits += int((noise_aware_labels(with_x, s, pool, pool_labels) == label).sum())
        blind += int((noise_aware_labels(without, s, pool, pool_labels) == label).sum())
    return hits, blind


def worst(*verdicts: AttackVerdict) -> tuple[str, list[str]]:
    """(the worse label, the attackers that reach it)."""
    top = max(SEVERITY[v.level] for v in verdicts)
    label = next(lab for lab, s in SEVERITY.items() if s == top)
    return label, [v.attacker for v in verdicts if SEVERITY[v.level] == top]


@dataclass(frozen=True)
class BudgetVerdict:
    mu: float
    eps: float
    delta: float
    trials: int  # the prior attacker's tries at this budget (for either claim)
    identification: AttackVerdict  # the prior attacker (diffusion reconstruction)
    gallery: AttackVerdict  # the gallery attacker (likelihood test on the release)
    attribute: Attribute | None
    verdict: str  # the headline: the worse of the two attackers (LABELS)
    by: tuple[str, ...] = ()  # which attacker(s) the headline comes from
    # this image's own budget, mu min(1, ||x|| / C) (maths/budgets.py); None when unknown
    own_mu: float | None = None

    @classmethod
    def of(
        cls,
        mu: float,
        eps: float,
        delta: float,
        prior: AttackVerdict,
        gallery: AttackVerdict,
        attribute: Attribute | None,
        own_mu: float | None = None,
    ) -> "BudgetVerdict":
        label, by = worst(prior, gallery)
        tries = max(prior.trials, attribute.prior.trials if attribute is not None else 0)
        return cls(mu, eps, delta, tries, prior, gallery, attribute, label, tuple(by), own_mu)

    def eps_of(self, mu: float | None) -> float | None:
        """eps at this budget's delta of a budget mu (0 for 0)."""
        if mu is None:
            return None
        return 0.0 if mu <= 0 else float(accounting.eps_from_mu(mu, self.delta))

    def budgets_sentence(self) -> str:
        """The three budgets in one plain sentence: what each attacker is shown to use of
        this image (lower bounds, maths/budgets.py), and the image's own budget."""
        g, i = self.gallery.demonstrated_mu, self.identification.demonstrated_mu
        text = (
            f"At eps {self.eps:.3g}, an attacker who holds your image among "
            f"{self.gallery.candidates} candidates "
            + (
                f"is shown to use at least eps {self.eps_of(g):.3g} of it"
                if g > 0
                else "is not shown to use any of it"
            )
            + "; one who only knows what such images look like, "
            + (f"at least eps {self.eps_of(i):.3g}" if i > 0 else "none shown")
            + " (lower bounds that hold with the verdicts' confidence)"
        )
        if self.own_mu is None:
            return text + "."
        own = self.eps_of(self.own_mu)
        why = (
            "the nominal one, as the image reaches the clipping bound"
            if self.own_mu >= self.mu * (1 - 1e-12)
            else "below the nominal one, as the image is smaller than the clipping bound"
        )
        return (
            text + f". No attacker can use more than this image's own budget, eps {own:.3g}: {why}."
        )

    def attack(self, attacker: str) -> AttackVerdict:
        """One attacker's verdict by its name in ATTACKERS ("gallery" or "prior")."""
        return self.gallery if attacker == "gallery" else self.identification

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("identification", "gallery"):
            d[k]["ci95"] = list(d[k]["ci95"])
            d[k]["demonstrated_eps"] = self.eps_of(d[k]["demonstrated_mu"])
        d["by"] = list(self.by)
        d["own_eps"] = self.eps_of(self.own_mu)
        if self.attribute is not None:
            d["attribute"] = self.attribute.to_dict()
        return d

    def headline(self) -> str:
        """The verdict and whose it is, in a few words."""
        if self.verdict == UNDETERMINED:
            return f"undetermined at {self.trials} tries"
        who = " and ".join(ATTACKERS[a].format(n=self.gallery.candidates) for a in self.by)
        return f"{self.verdict} (by {who})"

    def sentence(self) -> str:
        """Both attackers' results in words, the one that decides the headline first."""
        order = sorted((self.identification, self.gallery), key=lambda v: -SEVERITY[v.level])
        return " ".join(v.sentence() for v in order)


class Judge:
    """The verdicts of one audit, top to bottom: the domain check (outside: no verdict at
    all), both attackers' chance levels against the prior's reference set, the gallery
    attack at every budget, the attribute's chance, then each budget's verdict by ``decide``,
    made again when the sequential rule adds tries. Reads the audit and the reference set
    and changes neither: ``apply`` returns the judged result as a new value."""

    def __init__(self, result: AuditResult, prior: Prior, ref: Reference, digest: bytes, clf):
        self.ref, self.digest, self.seed = ref, digest, result.seed
        x = result.original
        self.domain = domain_check(ref, typicality(prior, x[None]))
        self.in_domain = bool(self.domain.in_domain)
        if not self.in_domain:
            return
        self.keep = eligible_decoys(x, ref.images)
        self.n = n = min(CANDIDATES, len(self.keep) + 1)
        self.chance = max(
            1.0 / n,
            guess_rate(
                x,
                ref.samples,
                ref.images,
                candidates=n,
                samples_are_reference=ref.samples_are_images,
            ),
        )
        mus = result.budgets()
        g = gallery_attack(
            x,
            ref.images,
            clip_norm=result.clip_norm,
            mus=mus,
            tries=GALLERY_TRIES,
            candidates=n,
            generator=streams.generator(result.seed, digest, 0, streams.GALLERY),
        )
        self.gallery = {}
        for m, hits, blind in zip(mus, g.successes, g.no_info):
            chance = max(1.0 / n, blind / g.tries)
            self.gallery[m] = AttackVerdict.of(
                "gallery", hits, g.tries, chance, n, mu=m, tolerance=result.tolerance
            )
        self.chance_attr = None
        self.caveat = getattr(clf, "caveat", "")
        a = result.attribute
        if (
            clf is not None
            and a is not None
            and a["confidence"] >= ATTRIBUTE_CONFIDENCE
            and ref.sample_classes is not None
        ):
            sample_classes, image_classes = ref.sample_classes, ref.image_classes
            # the prior attacker's base rate: how often its output names the label when the
            # release carries nothing (the prior's own samples: the attack from pure noise)
            self.chance_attr = float((sample_classes == a["index"]).double().mean())
            # the prior-free attacker's pool: the held-out images (as the classifier reads
            # them) and, where the prior ships it, its labelled training images (an attacker
            # holding the prior's training data); never the image itself
            pool, labels = ref.images[self.keep], image_classes[self.keep].numpy()
            extra = attack_pool(prior)
            if extra is not None:
                other = eligible_decoys(x, extra[0])
                pool = torch.cat([pool, extra[0][other]])
                labels = np.concatenate([labels, extra[1][other.numpy()]])
            self.pool = clip_to(pool, result.clip_norm)  # as released
            self.pool_labels = labels
            self.release_attr = {}
            for m in mus:
                hits, blind = release_attribute_attack(
                    x,
                    self.pool,
                    self.pool_labels,
                    clip_norm=result.clip_norm,
                    mu=m,
                    label=a["index"],
                    tries=RELEASE_TRIES,
                    generator=streams.generator(result.seed, digest, 0, streams.RELEASE_CLASS),
                )
                self.release_attr[m] = AttributeAttack.of(
                    "release",
                    hits,
                    RELEASE_TRIES,
                    blind / RELEASE_TRIES,
                    mu=m,
                    tolerance=result.tolerance,
                )

    def _decoys(self, k: int) -> torch.Tensor:
        g = streams.generator(self.seed, self.digest, k, streams.DECOYS)
        return self.keep[torch.randperm(len(self.keep), generator=g)[: self.n - 1]]

    def apply(self, result: AuditResult, mus: list[float] | None = None) -> AuditResult:
        """The judged result, a new value: the domain check and the reference set, and
        outside the domain nothing more; inside, the look-alikes of every try and the
        verdicts of the budgets ``mus`` (default: all) from their tries so far. A claim
        already decided at an earlier look keeps that look's decision (tries added for
        another claim never change it)."""
        result = replace(result, domain=self.domain, reference=self.ref.source)
        if not self.in_domain:
            return result
        samples = [
            s if s.decoys is not None else replace(s, decoys=self._decoys(s.trial).tolist())
            for s in result.samples
        ]
        res = replace(result, samples=samples, reference_images=self.ref.images)
        x, n_looks = res.original, len(res.looks)
        verdicts = {v.mu: v for v in res.verdicts}
        for mu in res.budgets() if mus is None else mus:
            tries = res.at(mu)
            before = verdicts.get(mu)
            if before is not None and before.identification.level != UNDETERMINED:
                ident = before.identification
            else:
                recons = torch.stack([t.reconstruction for t in tries])
                decoys = torch.stack([res.reference_images[t.decoys] for t in tries])
                hits = int(identify(recons, x, decoys).sum())
                ident = AttackVerdict.of(
                    "prior",
                    hits,
                    len(tries),
                    self.chance,
                    self.n,
                    mu=mu,
                    tolerance=res.tolerance,
                    n_looks=n_looks,
                )
            attr = None
            if self.chance_attr is not None:
                if (
                    before is not None
                    and before.attribute is not None
                    and before.attribute.prior.level != UNDETERMINED
                ):
                    prior_attr = before.attribute.prior
                else:
                    original = res.attribute["index"]
                    same = sum(t.attribute["recon"] == original for t in tries)
                    prior_attr = AttributeAttack.of(
                        "prior",
                        int(same),
                        len(tries),
                        self.chance_attr,
                        mu=mu,
                        tolerance=res.tolerance,
                        n_looks=n_looks,
                    )
                attr = Attribute.of(
                    res.attribute["name"],
                    str(res.attribute["original"]),
                    prior_attr,
                    self.release_attr[mu],
                    caveat=self.caveat,
                )
            own = _own_mu(mu, float(x.norm()), res.clip_norm)
            verdicts[mu] = BudgetVerdict.of(
                mu, tries[0].eps, res.delta, ident, self.gallery[mu], attr, own
            )
        return replace(res, verdicts=[verdicts[m] for m in sorted(verdicts)])


def error_rates(
    first: int, cap: int, chance: float, p_true: float, *, tolerance: float = TOLERANCE
) -> dict:
    """The sequential rule's outcome probabilities, exactly (dynamic programming over the
    binomial counts at each look), when the attack's true success rate is ``p_true``:
    {"disclosure", "protection", "undetermined"} (each the probability the rule ends there)
    and "expected_tries". With p_true = chance, "disclosure" is the false alarm; with
    p_true = chance + tolerance, "protection" is the false reassurance."""
    from scipy.stats import binom

    schedule = looks(first, cap)
    n_looks = len(schedule)
    alive = np.zeros(1)
    alive[0] = 1.0  # P(k successes so far, still undetermined)
    out = {"disclosure": 0.0, "protection": 0.0, "undetermined": 0.0, "expected_tries": 0.0}
    done = 0
    for k_total in schedule:
        step = k_total - done
        add = binom.pmf(np.arange(step + 1), step, p_true)
        alive = np.convolve(alive, add)
        out["expected_tries"] += float(alive.sum()) * step
        done = k_total
        for k in range(len(alive)):
            if alive[k] == 0:
                continue
            label, _, _ = decide(k, k_total, chance, n_looks=n_looks, tolerance=tolerance)
            if label == PROTECTED:
                out["protection"] += float(alive[k])
                alive[k] = 0.0
            elif label != UNDETERMINED:
                out["disclosure"] += float(alive[k])
                alive[k] = 0.0
    out["undetermined"] = float(alive.sum())
    return out


def demonstrated_validity(
    first: int, cap: int, chance: float, mu: float, *, tolerance: float = TOLERANCE
) -> float:
    """The probability that the budget an attack is shown to use (``demonstrated_mu`` of
    the lower bound where the sequential rule stops) stays at or below ``mu``, exactly, for
    an attack succeeding at the DP bound itself, Phi(Phi^-1(chance) + mu): the most any
    attack can under mu-GDP, so the least valid case (dynamic programming as error_rates)."""
    from scipy.stats import binom

    schedule = looks(first, cap)
    n_looks = len(schedule)
    p = float(rero_bound_gdp(mu, chance))
    alive = np.ones(1)
    invalid, done = 0.0, 0
    for j, k_total in enumerate(schedule):
        step = k_total - done
        alive = np.convolve(alive, binom.pmf(np.arange(step + 1), step, p))
        done = k_total
        for k in range(len(alive)):
            if alive[k] == 0:
                continue
            label, lo, _ = decide(k, k_total, chance, n_looks=n_looks, tolerance=tolerance)
            if label != UNDETERMINED or j == n_looks - 1:  # the rule stops here
                if demonstrated(lo, chance) > mu:
                    invalid += float(alive[k])
                alive[k] = 0.0
    return 1.0 - invalid
