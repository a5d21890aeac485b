"""One orchestrator: image + budgets + prior -> privatized observations, reconstructions,
their similarity to the original, and the verdicts, for every (budget, trial).

Noise streams (streams.py): the privatization draw xi of trial k comes from a generator
keyed by (seed, a digest of the image at the prior's resolution, k), so two images never
share a draw and a result is reproducible from (image, seed). Common random numbers: the
same draw privatizes the image at every budget (and DDPM uses the same reverse-process
stream), so differences between budgets come from the budget alone.

Verdicts (verdict.py): per budget, the identification rate over the K trials against
chance, the attribute rate against the prior's own class frequencies, and the domain check
(reference.py), all from the prior's reference set.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from . import accounting, pipeline, streams
from .attacks import eligible_decoys, guess_rate, identify, noise_aware_labels
from .attributes import ATTRIBUTE_NAME, classifier_for, classify
from .images import ImageLike
from .metrics import LPIPSMetric, get_lpips, similarity
from .priors import Prior, load_prior
from .reconstruct import DEFAULT_DDIM_STEPS, SAMPLERS
from .reference import Reference, ReferenceUnavailable, reference_for, typicality
from .verdict import (CANDIDATES, DOMAIN_FACTOR, DOMAIN_PERCENTILE, Attribute, BudgetVerdict,
                      Identification, identification_label)

__all__ = ["AuditSample", "AuditResult", "run_audit", "budgets_to_mu", "default_trials", "check_settings",
           "MECHANISMS", "MAX_TRIALS", "MAX_STEPS", "MAX_BUDGETS"]

MECHANISMS = pipeline.MECHANISMS
MAX_TRIALS = 32
MAX_STEPS = 1000
MAX_BUDGETS = 32
Progress = Callable[[float, str], None]


@dataclass
class AuditSample:
    """One (budget, trial): what the attacker observed and what the prior made of it."""

    mu: float
    eps: float
    delta: float
    trial: int
    t_star: int
    sigma: float  # per-pixel noise std s = ||x|| / mu, [0, 1] pixel scale
    sigma_dm: float  # the same in the model's [-1, 1] scale (2 s)
    beyond_range: bool
    below_range: bool
    observation: torch.Tensor = field(repr=False)  # x_tilde, unclipped, (C, H, W)
    reconstruction: torch.Tensor = field(repr=False)  # (C, H, W) in [0, 1]
    noisy: dict = field(default_factory=dict)  # metrics of the noisy-observation attack
    recon: dict = field(default_factory=dict)  # metrics of the diffusion reconstruction
    # attribute read by the prior's classifier, if it ships one: {"noisy": label, "recon": label}
    attribute: dict | None = None

    @property
    def privatized(self) -> torch.Tensor:
        """The observation clipped to [0, 1]: what is shown, and the noisy-observation attack."""
        return self.observation.clamp(0, 1)

    def record(self) -> dict:
        clean = lambda d: {k: (v if v is None or math.isfinite(v) else None) for k, v in d.items()}
        return {
            "mu": self.mu, "eps": self.eps, "delta": self.delta, "trial": self.trial,
            "t_star": self.t_star, "sigma": self.sigma, "sigma_dm": self.sigma_dm,
            "beyond_range": self.beyond_range, "below_range": self.below_range,
            "noisy": clean(self.noisy), "recon": clean(self.recon),
            "attribute": self.attribute,
        }


@dataclass
class AuditResult:
    original: torch.Tensor  # (C, H, W) in [0, 1] at the prior's resolution
    samples: list[AuditSample]
    prior_name: str
    prior_source: str
    sampler: str
    steps: int | None
    seed: int
    trials: int
    delta: float
    mechanism: str
    lpips_note: str  # the LPIPS variant's label when available, else why it is unavailable
    lpips_available: bool
    elapsed_s: float
    # {"name", "original", "confidence"} when the prior ships an attribute classifier
    attribute: dict | None = None
    # {"in_domain", "score", "percentile", "method"}; None when no reference set exists
    domain: dict | None = None
    verdicts: list[BudgetVerdict] = field(default_factory=list)
    reference: str = ""  # the reference set in words, or why there is none

    def records(self) -> list[dict]:
        return [s.record() for s in self.samples]

    def to_json(self) -> str:
        return json.dumps(self.records(), indent=2)

    def budgets(self) -> list[float]:
        return sorted({s.mu for s in self.samples})

    def at(self, mu: float) -> list[AuditSample]:
        """The trials of one budget, in trial order."""
        return sorted((s for s in self.samples if math.isclose(s.mu, mu)), key=lambda s: s.trial)

    def spread(self, mu: float) -> torch.Tensor:
        """Spread map of one budget: the per-pixel standard deviation of the reconstructions
        across trials (averaged over colour channels), scaled by 2 so that 1 is the largest
        possible spread of values in [0, 1]: (1, H, W). Bright = the attacker is guessing."""
        recons = torch.stack([s.reconstruction for s in self.at(mu)])
        return (recons.std(dim=0, unbiased=False).mean(dim=0, keepdim=True) * 2).clamp(0, 1)

    def subset(self, mus: Sequence[float]) -> "AuditResult":
        """The same result holding only the budgets ``mus`` (their samples and verdicts)."""
        keep = lambda m: any(math.isclose(m, b) for b in mus)
        return AuditResult(**{**self.__dict__, "samples": [s for s in self.samples if keep(s.mu)],
                              "verdicts": [v for v in self.verdicts if keep(v.mu)]})

    def verdict_at(self, mu: float) -> BudgetVerdict | None:
        return next((v for v in self.verdicts if math.isclose(v.mu, mu)), None)

    def verdicts_json(self) -> dict:
        """verdicts.json: the prior, the domain check and each budget's verdicts."""
        return {"prior": self.prior_name, "domain": self.domain, "reference": self.reference,
                "budgets": [v.to_dict() for v in self.verdicts]}


def budgets_to_mu(
    *, mus: Sequence[float] | None = None, epsilons: Sequence[float] | None = None,
    delta: float = 1e-5,
) -> list[tuple[float, float]]:
    """[(mu, eps)] from exactly one of mus or epsilons, eps and mu linked at ``delta``."""
    if (mus is None) == (epsilons is None):
        raise ValueError("give the budgets either as mu values or as eps values (one of the two)")
    values = list(mus if mus is not None else epsilons)
    if not values:
        raise ValueError("no budgets given")
    if len(values) > MAX_BUDGETS:
        raise ValueError(f"at most {MAX_BUDGETS} budgets per audit, got {len(values)}")
    if mus is not None:
        return [(m := float(v), accounting.eps_from_mu(m, delta)) for v in values]
    out = []
    for e in values:
        if not float(e) > 0:
            raise ValueError(f"eps must be a finite number > 0, got eps={e!r}")
        out.append((accounting.mu_from_eps(e, delta), float(e)))
    return out


def check_settings(*, sampler: str, mechanism: str, trials: int | None, seed: int,
                   steps: int | None, delta: float) -> float:
    """ValueError naming the first setting out of range (the one place settings are checked,
    for the audit, the dashboard and the command line); returns delta as a float."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got sampler={sampler!r}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got mechanism={mechanism!r}")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, (int, np.integer))
                               or not 1 <= trials <= MAX_TRIALS):
        raise ValueError(f"trials must be an integer between 1 and {MAX_TRIALS}, got trials={trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number >= 0, got seed={seed!r}")
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= MAX_STEPS):
        raise ValueError(f"steps must be an integer between 1 and {MAX_STEPS}, got steps={steps!r}")
    return accounting.validate_delta(delta)


def default_trials(prior: Prior) -> int:
    """Trials per budget: 8 for priors up to 64 pixels (the embedded one), 4 above (a
    256-pixel prior costs about 100x more per reconstruction; 4 of 4 still clears chance)."""
    return 8 if prior.sample_size <= 64 else 4


def run_audit(
    image: ImageLike | torch.Tensor,
    *,
    mus: Sequence[float] | None = None,
    epsilons: Sequence[float] | None = None,
    delta: float = 1e-5,
    prior: Prior | str | None = None,
    trials: int | None = None,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int | None = DEFAULT_DDIM_STEPS,
    mechanism: str = "analytic",
    lpips: str | LPIPSMetric | None = "alex",
    progress: Progress | None = None,
    batch_size: int | None = None,
    reference: Reference | str | None = None,
    verdicts: bool = True,
) -> AuditResult:
    """Audit one image at several budgets (mu-GDP, or eps at ``delta``).

    image: a path/bytes/PIL image (converted to the prior's size and channels), or a
        tensor (C, H, W) in [0, 1] already at the prior's size.
    trials: trials per budget (default ``default_trials(prior)``): each is one privatization
        noise draw and, for DDPM, one posterior sample, from streams keyed by (seed, image).
    seed: the base seed of the noise streams.
    mechanism: "analytic" (the Gaussian law) or "dpsgd" (a real Opacus step, inverted).
    lpips: "alex", "vgg", an ``LPIPSMetric``, or None to skip LPIPS.
    progress: called as progress(fraction, message).
    reference: the prior's reference set, a folder of images of its kind, or None (the
        shipped or sampled one); ``verdicts=False`` skips verdicts and the domain check.
    """
    t0 = time.perf_counter()
    say = progress or (lambda f, m: None)
    delta = check_settings(sampler=sampler, mechanism=mechanism, trials=trials, seed=seed,
                           steps=steps, delta=delta)
    budgets = budgets_to_mu(mus=mus, epsilons=epsilons, delta=delta)

    say(0.0, "loading the prior")
    if not isinstance(prior, Prior):
        prior = load_prior(prior)
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        expected = (prior.channels, prior.sample_size, prior.sample_size)
        if tuple(x.shape) != expected:
            raise ValueError(f"image tensor is {tuple(x.shape)}, the prior expects {expected}")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError("image tensor must be finite and lie in [0, 1]")
    else:
        x = prior.load_image(image)
    trials = default_trials(prior) if trials is None else int(trials)
    digest = streams.image_digest(x)

    say(0.02, "privatizing")
    # rows: trial-major, every budget of a trial privatized with that trial's one draw
    rows = [(mu, eps, k) for k in range(trials) for mu, eps in budgets]
    gens, xi = None, None
    if mechanism == "dpsgd":  # a fresh Opacus step per budget, noised from the trial's stream
        gens = [streams.generator(seed, digest, k, streams.PRIVATIZE) for _, _, k in rows]
    else:
        draws = [torch.randn(x.shape, generator=streams.generator(seed, digest, k, streams.PRIVATIZE))
                 for k in range(trials)]
        xi = torch.stack([draws[k] for _, _, k in rows])
    obs = pipeline.observe(prior, x.expand(len(rows), *x.shape), [mu for mu, _, _ in rows],
                           xi=xi, generators=gens, mechanism=mechanism)
    observations, matches = obs.images, obs.matches
    reverse_seeds = [streams.stream_seed(seed, digest, k, streams.REVERSE) for k in range(trials)]
    recons = pipeline.attack(
        prior, obs, sampler=sampler, steps=steps,
        seeds=[reverse_seeds[k] for _, _, k in rows], batch_size=batch_size,
        progress=lambda d, n: say(0.05 + 0.8 * d / n, f"reverse diffusion step {d}/{n}"),
    )

    say(0.87, "measuring similarity")
    metric = get_lpips(lpips) if isinstance(lpips, str) else lpips
    noisy_m = similarity(x, observations.clamp(0, 1), lpips_metric=metric)
    recon_m = similarity(x, recons, lpips_metric=metric)
    samples = [
        AuditSample(mu=mu, eps=eps, delta=delta, trial=k, t_star=m.t_star, sigma=sv,
                    sigma_dm=m.sigma_dm, beyond_range=m.beyond_range, below_range=m.below_range,
                    observation=o, reconstruction=r, noisy=nm, recon=rm)
        for (mu, eps, k), sv, m, o, r, nm, rm in zip(rows, obs.noise_std, matches, observations, recons,
                                                    noisy_m, recon_m)
    ]
    attribute = None
    clf = classifier_for(prior)
    if clf is not None:
        labels, conf = classify(clf, torch.cat([x[None], observations.clamp(0, 1), recons]))
        labels = labels.tolist()
        n = len(samples)
        attribute = {"name": ATTRIBUTE_NAME, "original": labels[0], "confidence": float(conf[0])}
        for smp, ln, lr in zip(samples, labels[1:n + 1], labels[n + 1:]):
            smp.attribute = {"noisy": ln, "recon": lr}
    if metric is None:
        lp_label, lp_ok = "LPIPS not requested", False
    else:
        lp_label, lp_ok = (metric.label if metric.available else metric.reason), metric.available
    result = AuditResult(
        original=x, samples=samples, prior_name=prior.name, prior_source=prior.source,
        sampler=sampler, steps=steps, seed=int(seed), trials=trials, delta=delta,
        mechanism=mechanism, lpips_note=lp_label, lpips_available=lp_ok, elapsed_s=0.0,
        attribute=attribute,
    )
    if verdicts:
        say(0.92, "judging against chance")
        _judge(result, prior, reference, digest, clf, progress=say)
    result.elapsed_s = time.perf_counter() - t0
    say(1.0, "done")
    return result


def _judge(result: AuditResult, prior: Prior, reference, digest: bytes, clf, *, progress) -> None:
    """Fill in the domain check and the per-budget verdicts (see verdict.py)."""
    try:
        ref = reference if isinstance(reference, Reference) else reference_for(
            prior, folder=reference, progress=lambda f, m: progress(0.92, m))
    except (ReferenceUnavailable, OSError) as exc:
        result.reference = f"no reference set, so no verdict: {exc}"
        return
    x = result.original
    result.domain = ref.domain(typicality(prior, x[None]))
    result.domain["method"] = (
        "Mahalanobis distance of the prior's denoising-error profile (log MSE at fixed "
        "timesteps and noise) and the image's mean grey level and contrast from its "
        f"{len(ref.distances)} reference images'; beyond "
        f"{DOMAIN_FACTOR:g} x their {DOMAIN_PERCENTILE:g}th percentile = outside the domain")
    ok = result.domain["in_domain"]
    result.reference = ref.source
    keep = eligible_decoys(x, ref.images)
    n = min(CANDIDATES, len(keep) + 1)
    chance_id = max(1.0 / n, guess_rate(x, ref.samples, ref.images, candidates=n,
                                        samples_are_reference=ref.samples_are_images))
    decoy_idx = []
    for k in range(result.trials):
        g = streams.generator(result.seed, digest, k, streams.DECOYS)
        decoy_idx.append(keep[torch.randperm(len(keep), generator=g)[: n - 1]])
    decoys = torch.stack([ref.images[i] for i in decoy_idx])
    chance_attr = None
    if clf is not None and result.attribute is not None and ok:
        if ref.sample_classes is None:
            ref.sample_classes = classify(clf, ref.samples)[0]
            ref.image_classes = classify(clf, ref.images)[0]
        classes = ref.sample_classes
        chance_attr = float((classes == result.attribute["original"]).double().mean())
        pool, pool_labels = ref.images[keep], ref.image_classes[keep].numpy()
    for mu in sorted({s.mu for s in result.samples}):
        trials = result.at(mu)
        recons = torch.stack([t.reconstruction for t in trials])
        hits = int(identify(recons, x, decoys[[t.trial for t in trials]]).sum())
        ident = Identification.of(hits, len(trials), chance_id, n)
        attr = None
        if chance_attr is not None:
            same = sum(t.attribute["recon"] == result.attribute["original"] for t in trials)
            # the same question asked of the release alone, by a noise-aware classifier
            direct = sum(int(noise_aware_labels(t.observation[None], t.sigma, pool,
                                                pool_labels)[0]) == result.attribute["original"]
                         for t in trials)
            attr = Attribute.of(result.attribute["name"], int(same), len(trials), chance_attr,
                                without_prior=int(direct))
        result.verdicts.append(BudgetVerdict(
            mu=mu, eps=trials[0].eps, delta=result.delta, trials=len(trials),
            identification=ident, attribute=attr,
            verdict=identification_label(hits, len(trials), chance_id)))
