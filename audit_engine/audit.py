"""One orchestrator: image + budgets + prior -> privatized observations, reconstructions and
their similarity to the original, for every (budget, seed).

Common random numbers: for a given seed the same standard-normal draw xi privatizes
the image at every budget (and DDPM uses the same noise stream), so differences
between budgets come from the budget alone.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from . import accounting
from .attributes import ATTRIBUTE_NAME, classifier_for, classify
from .images import ImageLike, to_prior_tensor
from .mechanism import noise_std, privatize, privatize_dpsgd
from .metrics import LPIPSMetric, get_lpips, similarity
from .priors import Prior, load_prior
from .reconstruct import DEFAULT_DDIM_STEPS, SAMPLERS, reconstruct
from .schedule import match_timesteps

__all__ = ["AuditSample", "AuditResult", "run_audit", "budgets_to_mu", "MECHANISMS",
           "MAX_SEEDS", "MAX_STEPS", "MAX_BUDGETS"]

MECHANISMS = ("analytic", "dpsgd")
MAX_SEEDS = 16
MAX_STEPS = 1000
MAX_BUDGETS = 32
Progress = Callable[[float, str], None]


@dataclass
class AuditSample:
    """One (budget, seed): what the attacker observed and what the prior made of it."""

    mu: float
    eps: float
    delta: float
    seed: int
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
            "mu": self.mu, "eps": self.eps, "delta": self.delta, "seed": self.seed,
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
    seeds: list[int]
    delta: float
    mechanism: str
    lpips: str  # label of the LPIPS variant, or the reason it is unavailable
    lpips_available: bool
    elapsed_s: float
    # {"name", "original", "confidence"} when the prior ships an attribute classifier
    attribute: dict | None = None

    def records(self) -> list[dict]:
        return [s.record() for s in self.samples]

    def to_json(self) -> str:
        return json.dumps(self.records(), indent=2)

    def budgets(self) -> list[float]:
        return sorted({s.mu for s in self.samples})


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


def _xi_generator(seed: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), 0xD1]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def run_audit(
    image: ImageLike | torch.Tensor,
    *,
    mus: Sequence[float] | None = None,
    epsilons: Sequence[float] | None = None,
    delta: float = 1e-5,
    prior: Prior | str | None = None,
    seeds: int = 1,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int | None = DEFAULT_DDIM_STEPS,
    mechanism: str = "analytic",
    lpips: str | LPIPSMetric | None = "alex",
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> AuditResult:
    """Audit one image at several budgets (mu-GDP, or eps at ``delta``).

    image: a path/bytes/PIL image (converted to the prior's size and channels), or a
        tensor (C, H, W) in [0, 1] already at the prior's size.
    seeds: number of seeds (seed, seed + 1, ...): each is one privatization noise draw
        and, for DDPM, one posterior sample.
    mechanism: "analytic" (the Gaussian law) or "dpsgd" (a real Opacus step, inverted).
    lpips: "alex", "vgg", an ``LPIPSMetric``, or None to skip LPIPS.
    progress: called as progress(fraction, message).
    """
    t0 = time.perf_counter()
    say = progress or (lambda f, m: None)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got sampler={sampler!r}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got mechanism={mechanism!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds must be an integer between 1 and {MAX_SEEDS}, got seeds={seeds!r}")
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= MAX_STEPS):
        raise ValueError(f"steps must be an integer between 1 and {MAX_STEPS}, got steps={steps!r}")
    delta = accounting.validate_delta(delta)
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
        x = to_prior_tensor(image, size=prior.sample_size, channels=prior.channels)
    seed_list = [int(seed) + k for k in range(seeds)]

    say(0.02, "privatizing")
    rows, obs = [], []
    for k in seed_list:
        xi = torch.randn(x.shape, generator=_xi_generator(k))
        for mu, eps in budgets:
            if mechanism == "analytic":
                obs.append(privatize(x, mu, xi=xi))
            else:
                obs.append(privatize_dpsgd(x, mu, generator=_xi_generator(k)).x_tilde)
            rows.append((mu, eps, k))
    observations = torch.stack(obs)
    s = [float(noise_std(x, mu)) for mu, _, _ in rows]
    matches = match_timesteps([2 * v for v in s], prior.alphas_cumprod)

    recons = reconstruct(
        prior, observations, matches, sampler=sampler, steps=steps,
        seeds=[k for _, _, k in rows], batch_size=batch_size,
        progress=lambda d, n: say(0.05 + 0.85 * d / n, f"reverse diffusion step {d}/{n}"),
    )

    say(0.92, "measuring similarity")
    metric = get_lpips(lpips) if isinstance(lpips, str) else lpips
    noisy_m = similarity(x, observations.clamp(0, 1), lpips_metric=metric)
    recon_m = similarity(x, recons, lpips_metric=metric)
    samples = [
        AuditSample(mu=mu, eps=eps, delta=delta, seed=k, t_star=m.t_star, sigma=sv,
                    sigma_dm=m.sigma_dm, beyond_range=m.beyond_range, below_range=m.below_range,
                    observation=o, reconstruction=r, noisy=nm, recon=rm)
        for (mu, eps, k), sv, m, o, r, nm, rm in zip(rows, s, matches, observations, recons,
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
    say(1.0, "done")
    return AuditResult(
        original=x, samples=samples, prior_name=prior.name, prior_source=prior.source,
        sampler=sampler, steps=steps, seeds=seed_list, delta=delta, mechanism=mechanism,
        lpips=lp_label, lpips_available=lp_ok, elapsed_s=time.perf_counter() - t0,
        attribute=attribute,
    )
