"""The experiment: every attack on every image set at every budget.

The release. In the candidate setting of Hayes et al. the attacker's prior is a set of n
candidates and the bound assumes one mu-GDP mechanism over all of them; so every image is
clipped to a public norm C and receives noise of the same scale,

    x_tilde = clip_C(x) + (C / mu) xi,   clip_C(x) = x min(1, C / ||x||),   xi ~ N(0, I),

as DP-SGD does with a fixed clipping bound (C defaults to the largest norm of the image
set, so nothing is clipped and the noise is the same for every candidate). Scaling the
noise with each image's own norm (the dashboard's single-image view, C = ||x||) would
make ||x_tilde|| reveal ||x||, which the norm-only attack below exploits.

The attacks, measured against the original:

- recon (the diffusion attack, named as in the audit's files): the engine's reconstruction from the matched timestep (DDIM, eta 0);
- noisy: the observation itself, clipped to [0, 1] (Ziller et al. 2024); its unclipped
  error follows the Ziller law exactly, a self-check;
- candidate: the target is one of n candidates (the target and n - 1 other images of the
  set); the attacker outputs the candidate nearest in L2 to the observation, the
  likelihood-optimal choice (Hayes et al. 2023);
- norm: the candidate whose norm is closest to the norm the observation implies,
  ||x_tilde||^2 - d s^2: a self-check that fails if the release leaks the norm;
- attribute (with a classifier): the class read from the reconstruction, from the noisy
  observation by the clean-image classifier, and by a noise-aware classifier (Bayes with
  the known noise level and, as the class-conditional prior, every other image of the
  domain at hand: the prior's held-out set, or the folder), each labelled by the classifier.

Candidate and norm attacks average over ``n_draws`` draws per image; the other attacks
use draw 0, shared by every budget (common random numbers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..attacker import pipeline
from ..attacker.attacks import noise_aware_labels, unrelated_baseline
from ..attacker.attributes import classifier_for, classify
from ..attacker.metrics import METRICS, get_lpips, mean_metrics, similarity
from ..attacker.pipeline import clip_to
from ..attacker.priors import Prior, load_prior
from ..maths import accounting, streams
from ..progress import Progress, within
from .config import ReproConfig
from .data import IN_DOMAIN, candidate_sets, folder_images, heldout_images, ood_sets

__all__ = [
    "ATTACKS",
    "POOL_MAX",
    "Reproduction",
    "clip_to",
    "nearest_candidate_draws",
    "nearest_norm_draws",
    "run_reproduction",
]

ATTACKS = ("recon", "noisy", "candidate")
POOL_MAX = 5000  # images of a folder read for the noise-aware classifier's picture of each class


@dataclass
class Reproduction:
    config: ReproConfig
    prior_name: str
    rows: list[dict]  # one per (set, image, mu)
    baselines: dict[str, dict]  # set -> unrelated-image baseline
    clip_norms: dict[str, float]  # set -> the public clip norm C of its release
    set_sizes: dict[str, int]
    pixels: int
    pool_size: int  # images the noise-aware classifier knows (the targets among them)
    n_candidates: int
    tau: float  # SSIM threshold
    eta: float  # MSE threshold
    kappa_candidate: float
    kappa_threshold: float
    kappa_threshold_guess: str
    lpips_note: str  # the LPIPS variant's label, or why it is unavailable
    lpips_available: bool
    has_attribute: bool
    elapsed_s: float
    skipped: list[str] = field(default_factory=list)  # unreadable files in the folders
    dtype: str = ""  # the UNet's precision in this run
    device: str = ""
    examples: dict[str, dict] = field(default_factory=dict, repr=False)  # set -> tensors


def nearest_candidate_draws(
    xc: torch.Tensor, cand: torch.Tensor, pos: np.ndarray, s: float, xi: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-candidate attack on x_tilde = xc + s xi over draws xi (N, K, C, H, W), with
    clipped candidates cand (N, n, C, H, W): (success (N, K), chosen (N, K))."""
    obs = xc.flatten(1).double()[:, None, :] + s * xi.flatten(2).double()  # (N, K, d)
    c = cand.flatten(2).double()  # (N, n, d)
    # ||o - c||^2 = ||o||^2 - 2 o.c + ||c||^2; ||o||^2 is common to all candidates
    dist = c.pow(2).sum(-1)[:, None, :] - 2 * torch.bmm(obs, c.transpose(1, 2))  # (N, K, n)
    chosen = dist.argmin(-1).numpy()
    return chosen == pos[:, None], chosen


def nearest_norm_draws(
    xc: torch.Tensor, cand: torch.Tensor, pos: np.ndarray, s: float, xi: torch.Tensor
) -> np.ndarray:
    """The candidate whose squared norm is closest to ||x_tilde||^2 - d s^2 (the unbiased
    estimate of ||x||^2 when the noise scale s is public): success (N, K)."""
    d = xc[0].numel()
    obs = xc.flatten(1).double()[:, None, :] + s * xi.flatten(2).double()
    est = obs.pow(2).sum(-1) - d * s * s  # (N, K)
    cn = cand.flatten(2).double().pow(2).sum(-1)  # (N, n)
    chosen = (cn[:, None, :] - est[:, :, None]).abs().argmin(-1).numpy()
    return chosen == pos[:, None]


def _kappa_threshold(
    x: torch.Tensor, tau: float, n_guesses: int, rng: np.random.Generator
) -> tuple[float, str]:
    """Best success rate SSIM >= tau of one fixed guess (pool images, the mean image): the
    prior success of the threshold criterion, estimated from below."""
    picks = rng.choice(len(x), size=min(n_guesses, len(x)), replace=False)
    guesses = torch.cat([x[picks], x.mean(0, keepdim=True)])
    best, which = 0.0, "no fixed guess reaches tau"
    for gi, g in enumerate(guesses):
        hits = np.array([r["ssim"] >= tau for r in similarity(g, x)], dtype=bool)
        if gi < len(picks):
            hits[picks[gi]] = False  # the guess itself does not count as a target it matches
        rate = float(hits.mean())
        if rate > best:
            best, which = (
                rate,
                ("the mean image" if gi == len(picks) else f"pool image {picks[gi]}"),
            )
    return best, which


def _evaluate_set(
    prior: Prior,
    name: str,
    x: torch.Tensor,
    c: float,
    cfg: ReproConfig,
    *,
    metric,
    clf,
    labels_pool: tuple | None,
    candidates: tuple | None,
    tau: float,
    eta: float,
    say: Progress,
    frac: tuple[float, float],
) -> tuple[list[dict], dict]:
    n = len(x)
    g = streams.keyed(cfg.seed, streams.PRIVATIZE)
    xi = torch.randn(x.shape, generator=g)  # draw 0, shared by every mu and by all attacks
    xc = clip_to(x, c)
    attr_orig = classify(clf, x)[0].numpy() if clf is not None else None
    if candidates is not None:
        idx, pos = candidates
        cand = xc[torch.from_numpy(idx)]  # (N, n, C, H, W), clipped as released
        cand_metrics = [
            similarity(x[i], x[torch.from_numpy(idx[i])], lpips_metric=metric) for i in range(n)
        ]
        xi_draws = torch.cat(
            [xi[:, None], torch.randn((n, cfg.n_draws - 1, *x.shape[1:]), generator=g)], dim=1
        )
    show = np.linspace(0, n - 1, 4).round().astype(int)
    examples = {"original": x[show], "noisy": [], "recon": [], "mus": list(cfg.mus)}
    rows = []
    lo, hi = frac
    step = (hi - lo) / len(cfg.mus)
    for j, mu in enumerate(cfg.mus):
        say(lo + j * step, f"{name}: mu = {mu:g}")
        s = c / mu
        # draw 0 of every image: the analytic law, or a real Opacus step, with the public clip norm
        gens = (
            [streams.keyed(cfg.seed, i, streams.PRIVATIZE) for i in range(n)]
            if cfg.mechanism == "dpsgd"
            else None
        )
        released = pipeline.observe(
            prior, x, mu, xi=xi, generators=gens, mechanism=cfg.mechanism, clip_norm=c
        )
        obs, matches = released.images, released.matches
        rec = pipeline.attack(
            prior,
            released,
            sampler="ddim",
            steps=cfg.steps,
            seeds=list(range(n)),
            batch_size=256,
            progress=within(say, lo + j * step, lo + (j + 0.9) * step, f"{name}: mu = {mu:g}"),
        )
        noisy = obs.clamp(0, 1)
        examples["noisy"].append(noisy[show])
        examples["recon"].append(rec[show])
        m_noisy = [similarity(x[i], noisy[i][None], lpips_metric=metric)[0] for i in range(n)]
        m_rec = [similarity(x[i], rec[i][None], lpips_metric=metric)[0] for i in range(n)]
        raw_mse = (obs - x).flatten(1).pow(2).mean(1).double().numpy()  # unclipped observation
        if candidates is not None:
            succ, chosen = nearest_candidate_draws(xc, cand, pos, s, xi_draws)
            norm_succ = nearest_norm_draws(xc, cand, pos, s, xi_draws)
            rec_vs_cand = [
                [r["ssim"] for r in similarity(rec[i], x[torch.from_numpy(idx[i])])]
                for i in range(n)
            ]
        if clf is not None:
            attr_noisy = classify(clf, noisy)[0].numpy()
            attr_rec = classify(clf, rec)[0].numpy()
            attr_aware = None
            if labels_pool is not None:
                pool, pool_labels, exclude = labels_pool
                attr_aware = noise_aware_labels(obs, s, pool, pool_labels, exclude)
        eps = accounting.eps_from_mu(mu, cfg.delta)
        psnr_eta = 10.0 ** (-cfg.psnr_threshold / 10.0)
        for i in range(n):
            row = {
                "set": name,
                "image": i,
                "mu": mu,
                "eps": eps,
                "clip_norm": c,
                "sigma": s,
                "sigma_dm": matches[i].sigma_dm,
                "t_star": matches[i].t_star,
                "beyond_range": matches[i].beyond_range,
            }
            for who, m in (("noisy", m_noisy[i]), ("recon", m_rec[i])):
                row.update({f"{who}_{k}": m[k] for k in METRICS})
            row["noisy_unclipped_mse"] = float(raw_mse[i])
            row["recon_threshold_success"] = float(m_rec[i]["ssim"] >= tau)
            for who, mse in (
                ("recon", m_rec[i]["mse"]),
                ("noisy", m_noisy[i]["mse"]),
                ("noisy_unclipped", raw_mse[i]),
            ):
                row[f"{who}_mse_success"] = float(mse <= eta)
                row[f"{who}_psnr_success"] = float(mse <= psnr_eta)
            if candidates is not None:
                picked = mean_metrics([cand_metrics[i][k] for k in chosen[i]])
                row.update({f"candidate_{k}": picked[k] for k in METRICS})
                row["candidate_success"] = float(succ[i].mean())
                row["norm_attack_success"] = float(norm_succ[i].mean())
                row["recon_identification_success"] = float(
                    int(np.argmax(rec_vs_cand[i])) == pos[i]
                )
            if clf is not None:
                row.update(
                    attr_original=int(attr_orig[i]),
                    attr_noisy=int(attr_noisy[i]),
                    attr_recon=int(attr_rec[i]),
                )
                if attr_aware is not None:
                    row["attr_noise_aware"] = int(attr_aware[i])
            rows.append(row)
    examples["noisy"] = torch.stack(examples["noisy"], 1)  # (4, M, C, H, W)
    examples["recon"] = torch.stack(examples["recon"], 1)
    return rows, examples


def _targets(prior: Prior, cfg: ReproConfig) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(targets, pool, unreadable files): the pool holds every image of the domain at hand,
    the targets first (target i is pool[i]); the noise-aware classifier draws on it."""
    if cfg.images:
        pool, skipped = folder_images(cfg.images, prior, POOL_MAX)
        return pool[: cfg.n_images], pool, skipped
    pool = heldout_images(prior, 10**9)[0]
    return pool[: cfg.n_images], pool, []


def _ood(prior: Prior, cfg: ReproConfig) -> tuple[dict[str, torch.Tensor], list[str]]:
    if not cfg.n_ood:
        return {}, []
    if not cfg.ood:
        return ood_sets(
            cfg.n_ood, size=prior.sample_size, channels=prior.channels, seed=cfg.seed
        ), []
    sets, skipped = {}, []
    for folder in cfg.ood:
        imgs, bad = folder_images(folder, prior, cfg.n_ood)
        sets[f"out of domain: {folder.rstrip('/').split('/')[-1]}"] = imgs
        skipped += bad
    return sets, skipped


def run_reproduction(
    cfg: ReproConfig, *, prior: Prior | None = None, progress: Progress | None = None
) -> Reproduction:
    """Run every attack on the target (and out-of-domain) images at every mu."""
    t0 = time.perf_counter()
    cfg.validate()
    say = progress or (lambda f, m: None)
    prior = prior or load_prior(cfg.prior, dtype=getattr(torch, cfg.dtype))
    x, pool, skipped = _targets(prior, cfg)
    n_cand = cfg.candidates(len(x))
    rng = np.random.default_rng(cfg.seed)
    candidates = candidate_sets(len(x), n_cand, rng)
    metric = get_lpips(cfg.lpips) if cfg.lpips else None
    lp_ok = bool(metric is not None and metric.available)
    lp_label = (
        "LPIPS not requested"
        if metric is None
        else metric.label
        if metric.available
        else metric.reason
    )
    metric = metric if lp_ok else None
    clf = classifier_for(prior)

    say(0.0, "unrelated-image baselines")
    sets = {IN_DOMAIN: x}
    ood, bad = _ood(prior, cfg)
    sets.update(ood)
    skipped += bad
    baselines = {
        name: unrelated_baseline(imgs, n_pairs=2000, seed=cfg.seed, lpips_metric=metric)
        for name, imgs in sets.items()
    }
    clip_norms = {
        name: float(cfg.clip_norm or imgs.flatten(1).norm(dim=1).max())
        for name, imgs in sets.items()
    }
    b = baselines[IN_DOMAIN]
    tau = b["ssim"] + cfg.recognisable_r * (1 - b["ssim"])
    eta = (1 - cfg.recognisable_r) * b["mse"]
    kappa_thr, guess = _kappa_threshold(x, tau, 200, rng)
    kappa_thr = max(kappa_thr, 1.0 / len(x))  # not resolvable below 1/N
    labels_pool = None
    if clf is not None:  # the noise-aware classifier's prior: every other image of the domain
        labels_pool = (
            clip_to(pool, clip_norms[IN_DOMAIN]),
            classify(clf, pool)[0].numpy(),
            np.arange(len(x)),
        )

    rows, examples = [], {}
    total = sum(len(v) for v in sets.values())
    done = 0
    for name, imgs in sets.items():
        frac = (0.05 + 0.95 * done / total, 0.05 + 0.95 * (done + len(imgs)) / total)
        r, ex = _evaluate_set(
            prior,
            name,
            imgs,
            clip_norms[name],
            cfg,
            metric=metric,
            clf=clf,
            labels_pool=labels_pool if name == IN_DOMAIN else None,
            candidates=candidates if name == IN_DOMAIN else None,
            tau=tau,
            eta=eta,
            say=say,
            frac=frac,
        )
        rows += r
        examples[name] = ex
        done += len(imgs)
    say(1.0, "done")
    return Reproduction(
        config=cfg,
        prior_name=prior.name,
        rows=rows,
        baselines=baselines,
        clip_norms=clip_norms,
        set_sizes={k: len(v) for k, v in sets.items()},
        pixels=x[0].numel(),
        pool_size=len(pool),
        n_candidates=n_cand,
        tau=tau,
        eta=eta,
        kappa_candidate=1.0 / n_cand,
        kappa_threshold=kappa_thr,
        kappa_threshold_guess=guess,
        lpips_note=lp_label,
        lpips_available=lp_ok,
        has_attribute=clf is not None,
        elapsed_s=time.perf_counter() - t0,
        skipped=skipped,
        examples=examples,
        dtype=str(prior.dtype).removeprefix("torch."),
        device=str(prior.device),
    )
