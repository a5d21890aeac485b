"""One orchestrator: image + budgets + prior -> releases, reconstructions, their similarity
to the original, and the verdicts, for every (budget, try).

The release (mechanism.py) is clip_C(x) + (C / mu) xi with a public clipping bound C: the
user's (their training run's clipping bound, in the image's units) or, by default, the
median norm of the prior's reference images (reference.Reference.typical_norm). The
attacker uses only public quantities: C, mu, and that typical norm for its rescaling.

Noise streams (streams.py): the privatization draw xi of try k comes from a generator
keyed by (seed, a digest of the image at the prior's resolution, k), so two images never
share a draw and a result is reproducible from (image, seed). Common random numbers: the
same draw privatizes the image at every budget (and DDPM uses the same reverse-process
stream), so differences between budgets come from the budget alone.

Verdicts (verdict.py): per budget, two attackers against their chance levels with the
evidence rule of verdict.decide: the gallery attacker (the likelihood test on the release,
GALLERY_TRIES tries) and the prior attacker (the reconstruction's identification among
look-alikes). The prior attacker's tries follow the sequential rule: where the headline is
still undetermined after K tries, K more are run at those budgets only (2K, 4K, ... up to
``max_trials``). Outside the prior's domain no verdict is made.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from ..attacker import pipeline
from ..attacker.attributes import classifier_for, classify, no_attribute_reason
from ..attacker.metrics import LPIPSMetric, get_lpips, similarity
from ..attacker.priors import Prior, load_prior
from ..attacker.reconstruct import DEFAULT_DDIM_STEPS, SAMPLERS, count_unet_calls, timestep_grid
from ..images import ImageLike
from ..maths import accounting, streams
from ..maths.mechanism import attacker_scale, check_clip_norm
from ..progress import Progress, TimeLimit, seconds_left, within
from . import costs
from .reference import Reference, ReferenceUnavailable, reference_for
from .verdict import (
    ATTRIBUTE_CONFIDENCE,
    TOLERANCE,
    UNDETERMINED,
    BudgetVerdict,
    DomainCheck,
    Judge,
    looks,
)

__all__ = [
    "AuditSample",
    "AuditResult",
    "run_audit",
    "budgets_to_mu",
    "default_trials",
    "default_max_trials",
    "continue_audit",
    "check_settings",
    "clip_norm_for",
    "MECHANISMS",
    "MAX_TRIALS",
    "MAX_TRIES",
    "MAX_STEPS",
    "MAX_BUDGETS",
]

MECHANISMS = pipeline.MECHANISMS
MAX_TRIALS = 32  # tries of the first look
MAX_TRIES = 256  # tries per budget after the sequential rule's last look
MAX_STEPS = 1000
MAX_BUDGETS = 32


@dataclass
class AuditSample:
    """One (budget, trial): what the attacker observed and what the prior made of it."""

    mu: float
    eps: float
    delta: float
    trial: int
    t_star: int
    sigma: float  # per-pixel noise std of the release s = C / mu, [0, 1] pixel scale
    sigma_dm: float  # as the attacker reconstructs it, in the model's [-1, 1] scale (2 a s)
    beyond_range: bool
    below_range: bool
    observation: torch.Tensor = field(repr=False)  # x_tilde, unclipped, (C, H, W)
    reconstruction: torch.Tensor = field(repr=False)  # (C, H, W) in [0, 1]
    noisy: dict = field(default_factory=dict)  # metrics of the noisy-observation attack
    recon: dict = field(default_factory=dict)  # metrics of the diffusion reconstruction
    # attribute read by the prior's classifier, if it ships one: {"noisy": label, "recon": label}
    attribute: dict | None = None
    # indices (into the reference images) of this try's look-alikes, once judged
    decoys: list[int] | None = None

    @property
    def privatized(self) -> torch.Tensor:
        """The observation clipped to [0, 1]: what is shown, and the noisy-observation attack."""
        return self.observation.clamp(0, 1)

    def record(self) -> dict:
        clean = lambda d: {k: (v if v is None or math.isfinite(v) else None) for k, v in d.items()}
        return {
            "mu": self.mu,
            "eps": self.eps,
            "delta": self.delta,
            "trial": self.trial,
            "t_star": self.t_star,
            "sigma": self.sigma,
            "sigma_dm": self.sigma_dm,
            "beyond_range": self.beyond_range,
            "below_range": self.below_range,
            "noisy": clean(self.noisy),
            "recon": clean(self.recon),
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
    # {"name", "original" (the label's name), "index", "confidence", "labels"} when the prior
    # ships an attribute classifier (attacker/attributes.py)
    attribute: dict | None = None
    # why no attribute is audited, in a sentence ("" when one is)
    attribute_why: str = ""
    # the domain check (verdict.DomainCheck); None when no reference set exists
    domain: DomainCheck | None = None
    verdicts: list[BudgetVerdict] = field(default_factory=list)
    reference: str = ""  # the reference set in words, or why there is none
    clip_norm: float = 0.0  # the public clipping bound C of the release
    clip_source: str = ""  # where C comes from, in words
    attacker_scale: float = 1.0  # the attacker's public rescaling (mechanism.attacker_scale)
    tolerance: float = TOLERANCE
    max_trials: int = 0  # the sequential rule's cap on the prior attacker's tries
    looks: list[int] = field(default_factory=list)  # tries after each look
    # the reference images the look-alikes come from (for --save-samples), when judged
    reference_images: torch.Tensor | None = field(default=None, repr=False)
    # why the sequential rule stopped before its cap where verdicts are undetermined (the
    # request's time limit), in words; "" when it did not
    stopped: str = ""
    # run_audit's way to add tries (continue_audit); None when there is nothing to add
    _more: Callable | None = field(default=None, repr=False, compare=False)

    def undetermined(self) -> list[float]:
        """Budgets where a claim is still undetermined by the prior attacker (the headline,
        or the attribute: ``Attribute.needs_tries``) and that the sequential rule may still
        measure with more tries."""
        if self._more is None or self.stopped:
            return []
        return [
            v.mu
            for v in self.verdicts
            if v.trials < self.max_trials
            and (
                (v.verdict == UNDETERMINED and v.identification.level == UNDETERMINED)
                or (v.attribute is not None and v.attribute.needs_tries())
            )
        ]

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
        return AuditResult(
            **{
                **self.__dict__,
                "samples": [s for s in self.samples if keep(s.mu)],
                "verdicts": [v for v in self.verdicts if keep(v.mu)],
                "_more": None,
            }
        )

    def settled(self) -> "AuditResult":
        """The same result without its way to add tries (which holds the judge, the prior
        and their arrays): what a session keeps once the sequential rule is done."""
        return self.subset(self.budgets())

    def verdict_at(self, mu: float) -> BudgetVerdict | None:
        return next((v for v in self.verdicts if math.isclose(v.mu, mu)), None)

    def release_json(self) -> dict:
        """The release's public parameters, as every output states them."""
        return {
            "mechanism": "clip_C(x) + (C / mu) xi (" + self.mechanism + ")",
            "clip_norm": self.clip_norm,
            "clip_source": self.clip_source,
            "attacker_scale": self.attacker_scale,
            "adjacency": "add or remove one image (mu-GDP)",
        }

    def no_verdict_reason(self) -> str | None:
        """Why no budget has a verdict (outside the domain, no reference set), else None."""
        if self.domain is not None and not self.domain.in_domain:
            return (
                "outside the prior's domain: the reconstructions show what the prior "
                "would guess, not a leak of this image"
            )
        if not self.verdicts:
            return self.reference or "verdicts not requested"
        return None

    def attribute_note(self) -> str:
        """Why no attribute claim is made for this image, in a sentence ("" when one is):
        the prior has no attribute classifier, or it cannot read this image confidently."""
        if self.attribute is None:
            return self.attribute_why
        if any(v.attribute is not None for v in self.verdicts) or self.no_verdict_reason():
            return ""
        a = self.attribute
        return (
            f"No {a['name']} claim is made: the classifier reads your image as "
            f'"{a["original"]}" with confidence {a["confidence"]:.2f}, below the '
            f"{ATTRIBUTE_CONFIDENCE:.2f} it needs to read an image honestly."
        )

    def verdicts_json(self) -> dict:
        """verdicts.json: the prior, the release, the domain check and each budget's
        verdicts (null with the reason where none is made)."""
        why = self.no_verdict_reason()
        if why is None:
            budgets = [v.to_dict() for v in self.verdicts]
        else:
            budgets = [
                {
                    "mu": m,
                    "eps": self.at(m)[0].eps,
                    "delta": self.delta,
                    "verdict": None,
                    "reason": why,
                }
                for m in self.budgets()
            ]
        out = {
            "prior": self.prior_name,
            "domain": None if self.domain is None else self.domain.to_dict(),
            "reference": self.reference,
            "release": self.release_json(),
            "tolerance": self.tolerance,
            "looks": self.looks,
            "budgets": budgets,
        }
        if self.attribute is not None:
            out["attribute"] = {k: self.attribute[k] for k in ("name", "original", "confidence")}
        note = self.attribute_note()
        if note:
            out["attribute_note"] = note
        if self.stopped:
            out["stopped"] = self.stopped
        return out


def budgets_to_mu(
    *,
    mus: Sequence[float] | None = None,
    epsilons: Sequence[float] | None = None,
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


def check_settings(
    *, sampler: str, mechanism: str, trials: int | None, seed: int, steps: int | None, delta: float
) -> float:
    """ValueError naming the first setting out of range (the one place settings are checked,
    for the audit, the dashboard and the command line); returns delta as a float."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got sampler={sampler!r}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got mechanism={mechanism!r}")
    if trials is not None and (
        isinstance(trials, bool)
        or not isinstance(trials, (int, np.integer))
        or not 1 <= trials <= MAX_TRIALS
    ):
        raise ValueError(
            f"trials must be an integer between 1 and {MAX_TRIALS}, got trials={trials!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number >= 0, got seed={seed!r}")
    if steps is not None and (
        isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= MAX_STEPS
    ):
        raise ValueError(f"steps must be an integer between 1 and {MAX_STEPS}, got steps={steps!r}")
    return accounting.validate_delta(delta)


def default_trials(prior: Prior) -> int:
    """Tries per budget at the first look: 8 for priors up to 64 pixels (the embedded one),
    4 above (a 256-pixel prior costs about 100x more per reconstruction)."""
    return 8 if prior.sample_size <= 64 else 4


def default_max_trials(first: int) -> int:
    """The sequential rule's cap: 8 x the first look's tries (four looks), at most MAX_TRIES."""
    return min(MAX_TRIES, 8 * int(first))


def clip_norm_for(prior: Prior, reference: Reference | None) -> tuple[float, float, str]:
    """(the default clipping bound C, the typical norm the attacker rescales to, C in words):
    the median norm of the prior's reference images (half of the images of its kind are
    clipped, half reach the release whole); without a reference set, the norm of a mid-grey
    image at the prior's resolution."""
    if reference is not None:
        c = reference.typical_norm
        return (
            c,
            c,
            (f"the median norm of the prior's {len(reference.images)} reference images ({c:.3g})"),
        )
    c = 0.5 * (prior.channels * prior.sample_size**2) ** 0.5
    return c, c, f"the norm of a mid-grey image at the prior's resolution ({c:.3g})"


def run_audit(
    image: ImageLike | torch.Tensor,
    *,
    mus: Sequence[float] | None = None,
    epsilons: Sequence[float] | None = None,
    delta: float = 1e-5,
    prior: Prior | str | None = None,
    trials: int | None = None,
    max_trials: int | None = None,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int | None = DEFAULT_DDIM_STEPS,
    mechanism: str = "analytic",
    clip_norm: float | None = None,
    tolerance: float = TOLERANCE,
    lpips: str | LPIPSMetric | None = "alex",
    progress: Progress | None = None,
    batch_size: int | None = None,
    reference: Reference | str | None = None,
    verdicts: bool = True,
    first_look_only: bool = False,
) -> AuditResult:
    """Audit one image at several budgets (mu-GDP, or eps at ``delta``).

    image: a path/bytes/PIL image (converted to the prior's size and channels), or a
        tensor (C, H, W) in [0, 1] already at the prior's size.
    trials: tries per budget at the first look (default ``default_trials(prior)``): each is
        one privatization draw, fresh look-alikes and, for DDPM, one posterior sample, from
        streams keyed by (seed, image).
    max_trials: the sequential rule's cap (default ``default_max_trials(trials)``); equal to
        ``trials`` for a single look. Tries are added only where the verdict is undetermined.
    seed: the base seed of the noise streams.
    mechanism: "analytic" (the Gaussian law) or "dpsgd" (a real Opacus step, inverted).
    clip_norm: the public clipping bound C of the release (default: clip_norm_for).
    tolerance: a protection claim needs the success rate's upper bound within chance + this.
    lpips: "alex", "vgg", an ``LPIPSMetric``, or None to skip LPIPS.
    progress: called as progress(fraction, message).
    reference: the prior's reference set, a folder of images of its kind, or None (the
        shipped or sampled one); ``verdicts=False`` skips verdicts and the domain check.
    first_look_only: stop after the first look (its verdicts already use the whole
        schedule's error levels); ``continue_audit`` runs the other looks later.
    """
    t0 = time.perf_counter()
    say = progress or (lambda f, m: None)
    delta = check_settings(
        sampler=sampler, mechanism=mechanism, trials=trials, seed=seed, steps=steps, delta=delta
    )
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must lie strictly between 0 and 1, got {tolerance!r}")
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
    first = default_trials(prior) if trials is None else int(trials)
    cap = (
        first
        if not verdicts
        else default_max_trials(first)
        if max_trials is None
        else int(max_trials)
    )
    if not first <= cap <= MAX_TRIES:
        raise ValueError(
            f"max_trials must lie between trials ({first}) and {MAX_TRIES}, "
            f"got max_trials={max_trials!r}"
        )
    digest = streams.image_digest(x)

    ref, why = None, ""
    if verdicts:
        try:
            ref = (
                reference
                if isinstance(reference, Reference)
                else reference_for(
                    prior,
                    folder=reference,
                    progress=lambda f, m: say(0.3 * f, f"preparing the prior (once): {m}"),
                )
            )
        except (ReferenceUnavailable, OSError) as exc:
            why = f"no reference set, so no verdict: {exc}"
    c_default, typical, c_words = clip_norm_for(prior, ref)
    if clip_norm is None:
        c, c_source = c_default, c_words
    else:
        c = check_clip_norm(clip_norm)
        c_source = f"set by the user ({c:.3g})"
    scale = attacker_scale(c, typical)
    metric = get_lpips(lpips) if isinstance(lpips, str) else lpips
    clf = classifier_for(prior)

    def run_tries(
        mus_eps: list[tuple[float, float]], ks: range, lo: float, hi: float
    ) -> list[AuditSample]:
        """The releases, reconstructions, metrics and attributes of tries ``ks`` at these
        budgets (trial-major: every budget of a try privatized with that try's one draw)."""
        rows = [(mu, eps, k) for k in ks for mu, eps in mus_eps]
        gens, xi = None, None
        if mechanism == "dpsgd":  # a fresh Opacus step per budget, noised from the try's stream
            gens = [streams.generator(seed, digest, k, streams.PRIVATIZE) for _, _, k in rows]
        else:
            draws = {
                k: torch.randn(
                    x.shape, generator=streams.generator(seed, digest, k, streams.PRIVATIZE)
                )
                for k in ks
            }
            xi = torch.stack([draws[k] for _, _, k in rows])
        say(lo, "privatizing")
        obs = pipeline.observe(
            prior,
            x.expand(len(rows), *x.shape),
            [mu for mu, _, _ in rows],
            clip_norm=c,
            xi=xi,
            generators=gens,
            mechanism=mechanism,
            scale=scale,
        )
        started = time.perf_counter()
        recons = pipeline.attack(
            prior,
            obs,
            sampler=sampler,
            steps=steps,
            seeds=[streams.stream_seed(seed, digest, k, streams.REVERSE) for _, _, k in rows],
            batch_size=batch_size,
            progress=within(say, lo, lo + (hi - lo) * 0.9),
        )
        # what an evaluation costs here, for the estimates made before long work (costs.py)
        costs.record(
            prior,
            count_unet_calls([timestep_grid(m.t_star, steps) for m in obs.matches])[1],
            time.perf_counter() - started,
        )
        say(lo + (hi - lo) * 0.9, "measuring similarity")
        noisy_m = similarity(x, obs.images.clamp(0, 1), lpips_metric=metric)
        recon_m = similarity(x, recons, lpips_metric=metric)
        out = [
            AuditSample(
                mu=mu,
                eps=eps,
                delta=delta,
                trial=k,
                t_star=m.t_star,
                sigma=sv,
                sigma_dm=m.sigma_dm,
                beyond_range=m.beyond_range,
                below_range=m.below_range,
                observation=o,
                reconstruction=r,
                noisy=nm,
                recon=rm,
            )
            for (mu, eps, k), sv, m, o, r, nm, rm in zip(
                rows, obs.noise_std, obs.matches, obs.images, recons, noisy_m, recon_m
            )
        ]
        if clf is not None:
            labels = classify(clf, torch.cat([obs.images.clamp(0, 1), recons]))[0].tolist()
            for smp, ln, lr in zip(out, labels[: len(out)], labels[len(out) :]):
                smp.attribute = {"noisy": ln, "recon": lr}
        return out

    samples = run_tries(budgets, range(first), 0.02, 0.85 if ref is None else 0.6)
    attribute = None
    if clf is not None:
        label, conf = classify(clf, x[None])
        attribute = {
            "name": clf.name,
            "original": clf.labels[int(label[0])],
            "index": int(label[0]),
            "confidence": float(conf[0]),
            "labels": list(clf.labels),
        }
    if metric is None:
        lp_label, lp_ok = "LPIPS not requested", False
    else:
        lp_label, lp_ok = (metric.label if metric.available else metric.reason), metric.available
    result = AuditResult(
        original=x,
        samples=samples,
        prior_name=prior.name,
        prior_source=prior.source,
        sampler=sampler,
        steps=steps,
        seed=int(seed),
        trials=first,
        delta=delta,
        mechanism=mechanism,
        lpips_note=lp_label,
        lpips_available=lp_ok,
        elapsed_s=0.0,
        attribute=attribute,
        attribute_why="" if clf is not None else no_attribute_reason(prior),
        reference=why,
        clip_norm=c,
        clip_source=c_source,
        attacker_scale=scale,
        tolerance=float(tolerance),
        max_trials=cap,
        looks=looks(first, cap),
    )
    if ref is not None:
        say(0.62, "judging against chance")
        judge = Judge(result, prior, ref, digest, clf)
        result = judge.apply(result)
        eps_of = dict(budgets)

        def seconds(mus: list[float], tries: int) -> float | None:
            """What ``tries`` more tries at these budgets are expected to take here."""
            grids = [timestep_grid(result.at(m)[0].t_star, steps) for m in mus]
            return costs.estimate(prior, tries * count_unet_calls(grids)[1])

        result = replace(
            result,
            _more=(
                lambda mus, ks, lo, hi: run_tries([(m, eps_of[m]) for m in mus], ks, lo, hi),
                judge,
                seconds,
            ),
        )
        if not first_look_only:
            result = continue_audit(result, progress=progress)
    result = replace(result, elapsed_s=time.perf_counter() - t0)
    say(1.0, "done")
    return result


def continue_audit(result: AuditResult, *, progress: Progress | None = None) -> AuditResult:
    """Run the sequential rule's remaining looks of an audit (``run_audit(...,
    first_look_only=True)``): at each look, the tries up to the next look are added at the
    budgets still undetermined, and their verdicts made again. Returns the result with them,
    a new value (``result`` itself is left as it was); the same result when every verdict
    is decided or no look is left.

    With a deadline (``progress.left()``, progress.Deadline), a look is started only when its
    expected time (costs.py) fits in the time left, and a look the deadline interrupts is
    dropped whole: the verdicts stay those of the last complete look, undetermined at K
    tries, and ``stopped`` says why."""
    say = progress or (lambda f, m: None)
    if result._more is None:
        return result
    run_tries, judge, seconds = result._more
    t0 = time.perf_counter()
    cap, stopped = result.max_trials, ""
    for lo_k, hi_k in zip(result.looks, result.looks[1:]):
        open_ = [m for m in result.undetermined() if len(result.at(m)) == lo_k]
        if not open_:
            continue
        need, left = seconds(open_, hi_k - lo_k), seconds_left(progress)
        if need is not None and need > left:
            stopped = _stopped(
                lo_k,
                len(open_),
                f"{hi_k - lo_k} more tries would take "
                f"about {need:.0f} s, {max(left, 0):.0f} s were left",
            )
            break
        frac = 0.62 + 0.3 * lo_k / cap
        try:
            say(
                frac,
                f"undetermined at {lo_k} tries: {hi_k - lo_k} more at "
                f"{len(open_)} budget{'s' * (len(open_) > 1)}",
            )
            more = run_tries(open_, range(lo_k, hi_k), frac, 0.62 + 0.3 * hi_k / cap)
        except TimeLimit:
            stopped = _stopped(
                lo_k, len(open_), "the time ran out during the next tries, which were dropped"
            )
            break
        result = judge.apply(replace(result, samples=result.samples + more), open_)
    return replace(
        result,
        stopped=stopped or result.stopped,
        elapsed_s=result.elapsed_s + time.perf_counter() - t0,
    )


def _stopped(k: int, n: int, why: str) -> str:
    return (
        f"undetermined at {k} tries at {n} budget{'s' * (n > 1)}: this request's time "
        f"limit ended the sequential rule before its cap ({why}); the command line, which "
        "has no such limit, adds the tries"
    )
