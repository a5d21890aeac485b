"""Reproduce the source paper's findings on a prior's held-out images.

    python -m audit_engine reproduce --prior embedded --n-images 200 --out runs/repro

For every held-out image and budget mu (one privatization draw per image, shared by
all budgets: common random numbers) it runs three attacks and measures them against
the original:

- diffusion: the engine's reconstruction from the matched timestep (DDIM, eta 0);
- noisy: the observation itself, clipped to [0, 1] (Ziller et al. 2024);
- candidate: the prior-aware attack of Hayes et al. 2023: the target is one of n
  candidates (the target and n - 1 other held-out images), the attacker outputs the
  candidate nearest in L2 to the observation. Its success rate (exact identification)
  and its similarity are averaged over ``n_draws`` privatization draws per image.

Success of the diffusion attack, for Figure C, is defined two ways:

- identification: the reconstruction is more similar (SSIM) to the target than to each of
  the other n - 1 candidates. Without a release the candidates are exchangeable, so the
  prior success probability is exactly kappa = 1/n, the candidate attack's kappa;
- threshold: SSIM(reconstruction, target) >= tau with tau = b + r (1 - b), b the
  unrelated-image SSIM and r = 0.5 (the dashboard's "recognisable" verdict). Its
  kappa is estimated as the best success rate of a fixed guess made without the release
  (each pool image and the mean image tried as the guess for every target): a lower
  estimate of the true supremum, so the bound drawn at it is, if anything, too low.

Figure B applies the same prior to out-of-domain images bundled with scikit-image
(the LFW face subset and patches of its natural test images). Attribute disclosure
(the paper's Figure 1) uses the classifier shipped with the prior, if any.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import accounting, bounds
from .attacks import unrelated_baseline
from .attributes import classifier_for, classify
from .mechanism import noise_std, privatize
from .metrics import METRICS, get_lpips, mean_metrics, similarity
from .priors import Prior, load_prior
from .reconstruct import DEFAULT_DDIM_STEPS, reconstruct
from .schedule import match_timesteps

__all__ = ["ReproConfig", "heldout_images", "ood_sets", "run_reproduction", "summarize",
           "write_reproduction", "DEFAULT_MUS", "IN_DOMAIN"]

DEFAULT_MUS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
IN_DOMAIN = "in-domain (held-out)"
FACES = "faces (LFW subset, scikit-image)"
NATURAL = "natural image patches (scikit-image)"
ATTACKS = ("diffusion", "noisy", "candidate")
Progress = Callable[[float, str], None]


@dataclass
class ReproConfig:
    prior: str | None = None
    n_images: int = 200
    mus: Sequence[float] = DEFAULT_MUS
    n_candidates: int = 10  # kappa = 1 / n_candidates
    n_draws: int = 64  # privatization draws per image and mu for the candidate attack
    n_ood: int = 100  # images per out-of-domain set (0: skip Figure B)
    steps: int = DEFAULT_DDIM_STEPS  # DDIM steps from t*
    seed: int = 0
    lpips: str | None = "alex"
    # success threshold of the reproduction's SSIM criterion: more than half-way from an
    # unrelated image (the baseline) to a copy, r = (SSIM - b) / (1 - b) >= 0.5
    recognisable_r: float = 0.5
    delta: float = 1e-5

    def validate(self) -> None:
        if self.n_images < 2:
            raise ValueError(f"n_images must be >= 2, got {self.n_images}")
        if not 2 <= self.n_candidates <= self.n_images:
            raise ValueError(f"n_candidates must lie in [2, n_images={self.n_images}], "
                             f"got {self.n_candidates}")
        if self.n_draws < 1 or self.n_ood < 0 or self.steps < 1:
            raise ValueError("n_draws and steps must be >= 1 and n_ood >= 0")
        if not self.mus or any(not (math.isfinite(m) and m > 0) for m in self.mus):
            raise ValueError(f"mus must be finite and > 0, got {list(self.mus)}")
        accounting.validate_delta(self.delta)


# ----------------------------------------------------------------------------- data
def _balanced_order(labels: np.ndarray) -> np.ndarray:
    """Indices that take the classes in turn (first of each class, then second, ...)."""
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels, rank))


def heldout_images(prior: Prior, n: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """n held-out images (N, C, H, W) in [0, 1] shipped with the prior, and their labels;
    with labels, the classes are taken in turn, so any n is balanced across classes."""
    path = (prior.folder or Path(".")) / "heldout.npz"
    if prior.folder is None or not path.is_file():
        raise ValueError(f"prior {prior.name!r} ships no held-out images ({path.name} beside its "
                         "UNet): the reproduction needs images the prior was not trained on")
    held = np.load(path)
    if len(held["images"]) < n:
        raise ValueError(f"prior {prior.name!r} has {len(held['images'])} held-out images, "
                         f"asked for {n}")
    labels = held["labels"] if "labels" in held.files else None
    order = _balanced_order(labels)[:n] if labels is not None else np.arange(n)
    x = torch.from_numpy(held["images"][order]).float().div(255)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    labels = labels[order] if labels is not None else None
    return _to_channels(x, prior.channels), labels


def _to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return (x[:, :3] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
    return x[:, :1].expand(-1, channels, -1, -1).contiguous()


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                           antialias=True, align_corners=False).clamp(0, 1)


def ood_sets(n: int, *, size: int, channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Out-of-domain images available offline (bundled with scikit-image), n per set."""
    from skimage import color, data

    rng = np.random.default_rng(seed)
    faces = data.lfw_subset()  # (200, 25, 25) in [0, 1]
    pick = rng.choice(len(faces), size=min(n, len(faces)), replace=False)
    faces_t = _resize(torch.from_numpy(faces[pick]).float().unsqueeze(1), size)

    names = ["camera", "coins", "moon", "page", "text", "brick", "grass", "gravel", "astronaut",
             "coffee", "chelsea", "rocket", "horse", "cell", "clock", "hubble_deep_field"]
    pictures = []
    for name in names:
        img = np.asarray(getattr(data, name)(), dtype=np.float64)
        if img.ndim == 3:
            img = color.rgb2gray(img[..., :3] / (255.0 if img.max() > 1 else 1.0))
        elif img.max() > 1:
            img = img / 255.0
        pictures.append(img)
    patches = []
    for _ in range(n):
        img = pictures[rng.integers(len(pictures))]
        h, w = img.shape
        side = int(rng.integers(min(h, w) // 8, min(h, w) // 2 + 1))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patches.append(torch.from_numpy(img[top:top + side, left:left + side].copy()).float()[None, None])
    natural = torch.cat([_resize(p, size) for p in patches])
    return {FACES: _to_channels(faces_t, channels), NATURAL: _to_channels(natural, channels)}


def _candidate_sets(n_images: int, n_candidates: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N, n) into the image set, position of the target in each row)."""
    idx = np.empty((n_images, n_candidates), dtype=np.int64)
    pos = rng.integers(0, n_candidates, n_images)
    for i in range(n_images):
        others = rng.choice(np.delete(np.arange(n_images), i), n_candidates - 1, replace=False)
        idx[i] = np.insert(others, pos[i], i)
    return idx, pos


# ----------------------------------------------------------------------------- attacks
def _candidate_attack_rates(x: torch.Tensor, cand: torch.Tensor, pos: np.ndarray, mu: float,
                            xi: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-candidate attack over draws xi (N, K, C, H, W): (success (N, K), chosen (N, K))."""
    n, k = xi.shape[:2]
    s = noise_std(x, mu).view(n, 1, 1).double()  # (N, 1, 1)
    obs = x.flatten(1).double()[:, None, :] + s * xi.flatten(2).double()  # (N, K, d)
    c = cand.flatten(2).double()  # (N, n, d)
    # ||o - c||^2 = ||o||^2 - 2 o.c + ||c||^2; ||o||^2 is common to all candidates
    dist = c.pow(2).sum(-1)[:, None, :] - 2 * torch.bmm(obs, c.transpose(1, 2))  # (N, K, n)
    chosen = dist.argmin(-1).numpy()
    return (chosen == pos[:, None]), chosen


def _kappa_threshold(x: torch.Tensor, tau: float, n_guesses: int, rng: np.random.Generator
                     ) -> tuple[float, str]:
    """Best success rate SSIM >= tau of one fixed guess (pool images, the mean image)."""
    picks = rng.choice(len(x), size=min(n_guesses, len(x)), replace=False)
    guesses = torch.cat([x[picks], x.mean(0, keepdim=True)])
    best, which = 0.0, ""
    for gi, g in enumerate(guesses):
        rows = similarity(g, x)
        hits = np.array([r["ssim"] >= tau for r in rows], dtype=bool)
        if gi < len(picks):
            hits[picks[gi]] = False  # the guess itself does not count as a target it matches
        rate = float(hits.mean())
        if rate > best:
            best, which = rate, ("the mean image" if gi == len(picks) else f"pool image {picks[gi]}")
    return best, which


@dataclass
class Reproduction:
    config: ReproConfig
    prior_name: str
    rows: list[dict]  # one per (set, image, mu)
    baselines: dict[str, dict]  # set -> unrelated-image baseline
    tau: float
    kappa_candidate: float
    kappa_threshold: float
    kappa_threshold_guess: str
    lpips: str
    lpips_available: bool
    has_attribute: bool
    elapsed_s: float
    examples: dict[str, dict] = field(default_factory=dict, repr=False)  # set -> tensors


def _evaluate_set(prior: Prior, name: str, x: torch.Tensor, cfg: ReproConfig, *, metric,
                  clf, candidates: tuple | None, tau: float, say: Progress, frac: tuple[float, float]
                  ) -> tuple[list[dict], dict]:
    n = len(x)
    g = torch.Generator().manual_seed(cfg.seed)
    xi = torch.randn(x.shape, generator=g)  # draw 0, shared by every mu and by all attacks
    attr_orig = classify(clf, x)[0].numpy() if clf is not None else None
    if candidates is not None:
        idx, pos = candidates
        cand = x[torch.from_numpy(idx)]  # (N, n, C, H, W)
        cand_metrics = [similarity(x[i], cand[i], lpips_metric=metric) for i in range(n)]
        xi_draws = torch.cat([xi[:, None], torch.randn((n, cfg.n_draws - 1, *x.shape[1:]),
                                                       generator=g)], dim=1)
    show = np.linspace(0, n - 1, 4).round().astype(int)
    examples = {"original": x[show], "noisy": [], "diffusion": [], "mus": list(cfg.mus)}
    rows = []
    lo, hi = frac
    for j, mu in enumerate(cfg.mus):
        step = (hi - lo) / len(cfg.mus)
        say(lo + j * step, f"{name}: mu = {mu:g}")
        obs = privatize(x, mu, xi=xi)
        s = noise_std(x, mu)
        matches = match_timesteps((2 * s).tolist(), prior.alphas_cumprod)
        rec = reconstruct(prior, obs, matches, sampler="ddim", steps=cfg.steps,
                          seeds=list(range(n)), batch_size=256,
                          progress=lambda d, t: say(lo + (j + 0.9 * d / t) * step,
                                                    f"{name}: mu = {mu:g}, step {d}/{t}"))
        noisy = obs.clamp(0, 1)
        examples["noisy"].append(noisy[show])
        examples["diffusion"].append(rec[show])
        m_noisy = [similarity(x[i], noisy[i][None], lpips_metric=metric)[0] for i in range(n)]
        m_rec = [similarity(x[i], rec[i][None], lpips_metric=metric)[0] for i in range(n)]
        if candidates is not None:
            succ, chosen = _candidate_attack_rates(x, cand, pos, mu, xi_draws)
            rec_vs_cand = [[r["ssim"] for r in similarity(rec[i], cand[i])] for i in range(n)]
        if clf is not None:
            attr_noisy = classify(clf, noisy)[0].numpy()
            attr_rec = classify(clf, rec)[0].numpy()
        eps = accounting.eps_from_mu(mu, cfg.delta)
        for i in range(n):
            row = {"set": name, "image": i, "mu": mu, "eps": eps, "sigma": float(s[i]),
                   "sigma_dm": matches[i].sigma_dm, "t_star": matches[i].t_star,
                   "beyond_range": matches[i].beyond_range}
            for who, m in (("noisy", m_noisy[i]), ("diffusion", m_rec[i])):
                row.update({f"{who}_{k}": m[k] for k in METRICS})
            row["diffusion_threshold_success"] = float(m_rec[i]["ssim"] >= tau)
            if candidates is not None:
                picked = mean_metrics([cand_metrics[i][c] for c in chosen[i]])
                row.update({f"candidate_{k}": picked[k] for k in METRICS})
                row["candidate_success"] = float(succ[i].mean())
                row["diffusion_identification_success"] = float(
                    int(np.argmax(rec_vs_cand[i])) == pos[i])
            if clf is not None:
                row.update(attr_original=int(attr_orig[i]), attr_noisy=int(attr_noisy[i]),
                           attr_diffusion=int(attr_rec[i]))
            rows.append(row)
    examples["noisy"] = torch.stack(examples["noisy"], 1)  # (4, M, C, H, W)
    examples["diffusion"] = torch.stack(examples["diffusion"], 1)
    return rows, examples


def run_reproduction(cfg: ReproConfig, *, prior: Prior | None = None,
                     progress: Progress | None = None) -> Reproduction:
    """Run every attack on the held-out (and out-of-domain) images at every mu."""
    t0 = time.perf_counter()
    cfg.validate()
    say = progress or (lambda f, m: None)
    prior = prior or load_prior(cfg.prior)
    x, _ = heldout_images(prior, cfg.n_images)
    rng = np.random.default_rng(cfg.seed)
    metric = get_lpips(cfg.lpips) if cfg.lpips else None
    lp_ok = bool(metric is not None and metric.available)
    lp_label = ("LPIPS not requested" if metric is None
                else metric.label if metric.available else metric.reason)
    metric = metric if lp_ok else None
    clf = classifier_for(prior)

    say(0.0, "unrelated-image baselines")
    baselines = {IN_DOMAIN: unrelated_baseline(x, n_pairs=2000, seed=cfg.seed, lpips_metric=metric)}
    sets = {IN_DOMAIN: x}
    if cfg.n_ood:
        for name, imgs in ood_sets(cfg.n_ood, size=prior.sample_size, channels=prior.channels,
                                   seed=cfg.seed).items():
            sets[name] = imgs
            baselines[name] = unrelated_baseline(imgs, n_pairs=2000, seed=cfg.seed,
                                                 lpips_metric=metric)
    b = baselines[IN_DOMAIN]["ssim"]
    tau = b + cfg.recognisable_r * (1 - b)
    kappa_thr, guess = _kappa_threshold(x, tau, 200, rng)
    kappa_thr = max(kappa_thr, 1.0 / cfg.n_images)  # not resolvable below 1/N
    candidates = _candidate_sets(cfg.n_images, cfg.n_candidates, rng)

    rows, examples = [], {}
    total = sum(len(v) for v in sets.values())
    done = 0
    for name, imgs in sets.items():
        frac = (0.05 + 0.95 * done / total, 0.05 + 0.95 * (done + len(imgs)) / total)
        r, ex = _evaluate_set(prior, name, imgs, cfg, metric=metric, clf=clf,
                              candidates=candidates if name == IN_DOMAIN else None, tau=tau,
                              say=say, frac=frac)
        rows += r
        examples[name] = ex
        done += len(imgs)
    say(1.0, "done")
    return Reproduction(
        config=cfg, prior_name=prior.name, rows=rows, baselines=baselines, tau=tau,
        kappa_candidate=1.0 / cfg.n_candidates, kappa_threshold=kappa_thr,
        kappa_threshold_guess=guess, lpips=lp_label, lpips_available=lp_ok,
        has_attribute=clf is not None, elapsed_s=time.perf_counter() - t0, examples=examples)


# ----------------------------------------------------------------------------- summary
def _wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a success fraction k/n (Wilson 1927)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def summarize(rep: Reproduction) -> list[dict]:
    """One row per (set, mu): means, standard errors, success rates and bounds."""
    out = []
    cfg = rep.config
    for name in dict.fromkeys(r["set"] for r in rep.rows):
        for mu in cfg.mus:
            rows = [r for r in rep.rows if r["set"] == name and r["mu"] == mu]
            n = len(rows)
            s = {"set": name, "mu": mu, "eps": rows[0]["eps"], "n": n,
                 "t_star_median": float(np.median([r["t_star"] for r in rows])),
                 "beyond_range_fraction": float(np.mean([r["beyond_range"] for r in rows]))}
            for who in ATTACKS:
                for k in METRICS:
                    vals = [r.get(f"{who}_{k}") for r in rows]
                    vals = [v for v in vals if v is not None and math.isfinite(v)]
                    s[f"{who}_{k}"] = float(np.mean(vals)) if vals else None
                    s[f"{who}_{k}_se"] = (float(np.std(vals, ddof=1) / math.sqrt(len(vals)))
                                          if len(vals) > 1 else None)
            for key in ("candidate_success", "diffusion_identification_success",
                        "diffusion_threshold_success"):
                if key in rows[0]:
                    v = float(np.mean([r[key] for r in rows]))
                    trials = n * (cfg.n_draws if key == "candidate_success" else 1)
                    s[key] = v
                    s[f"{key}_lo"], s[f"{key}_hi"] = _wilson(v * trials, trials)
            s["rero_bound_candidate"] = float(bounds.rero_bound_gdp(mu, rep.kappa_candidate))
            s["rero_bound_threshold"] = float(bounds.rero_bound_gdp(mu, rep.kappa_threshold))
            if "attr_original" in rows[0]:
                s["attr_noisy"] = float(np.mean([r["attr_noisy"] == r["attr_original"] for r in rows]))
                s["attr_diffusion"] = float(np.mean([r["attr_diffusion"] == r["attr_original"]
                                                     for r in rows]))
            out.append(s)
    return out


# ----------------------------------------------------------------------------- figures
_COLORS = {"diffusion": "#1f77b4", "noisy": "#ff7f0e", "candidate": "#2ca02c"}
_LABELS = {"diffusion": "diffusion attack (prior)", "noisy": "noisy observation (no prior)",
           "candidate": "candidate attack (Hayes et al.)"}
_METRIC_TITLES = {"ssim": "SSIM (higher = more similar)", "lpips": "LPIPS (lower = more similar)",
                  "mse": "MSE (lower = more similar)", "psnr": "PSNR dB"}


def _series(summary: list[dict], name: str, key: str) -> tuple[list[float], list]:
    rows = [s for s in summary if s["set"] == name]
    return [s["mu"] for s in rows], [s.get(key) for s in rows]


def _panels_a(rep: Reproduction) -> list[str]:
    return ["ssim"] + (["lpips"] if rep.lpips_available else []) + ["mse"]


def plotly_figures(rep: Reproduction, summary: list[dict]) -> dict:
    """Figures A, B, C and the attribute figure as plotly figures."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figs = {}
    keys = _panels_a(rep)
    fa = make_subplots(rows=1, cols=len(keys), subplot_titles=[_METRIC_TITLES[k] for k in keys])
    for col, key in enumerate(keys, 1):
        for who in ATTACKS:
            mus, ys = _series(summary, IN_DOMAIN, f"{who}_{key}")
            fa.add_trace(go.Scatter(x=mus, y=ys, mode="lines+markers", name=_LABELS[who],
                                    line=dict(color=_COLORS[who]), legendgroup=who,
                                    showlegend=col == 1), row=1, col=col)
        base = rep.baselines[IN_DOMAIN].get(key)
        if base is not None:
            fa.add_hline(y=base, line=dict(dash="dash", color="#555"), row=1, col=col,
                         annotation_text="unrelated images" if col == 1 else None)
        fa.update_xaxes(type="log", title_text="mu (GDP)", row=1, col=col)
    fa.update_layout(title="Figure A: attacks on held-out images", template="plotly_white",
                     height=420)
    figs["figure_a"] = fa

    names = [n for n in rep.baselines]
    fb = make_subplots(rows=2, cols=len(names), subplot_titles=names, shared_yaxes=False)
    for col, name in enumerate(names, 1):
        for row, key in enumerate(("ssim", "mse"), 1):
            for who in ("diffusion", "noisy"):
                mus, ys = _series(summary, name, f"{who}_{key}")
                fb.add_trace(go.Scatter(x=mus, y=ys, mode="lines+markers", name=_LABELS[who],
                                        line=dict(color=_COLORS[who]), legendgroup=who,
                                        showlegend=(row, col) == (1, 1)), row=row, col=col)
            fb.add_hline(y=rep.baselines[name][key], line=dict(dash="dash", color="#555"),
                         row=row, col=col)
            fb.update_xaxes(type="log", title_text="mu", row=row, col=col)
            fb.update_yaxes(title_text=key.upper(), row=row, col=col)
    fb.update_layout(title="Figure B: the same prior under distribution shift",
                     template="plotly_white", height=620)
    figs["figure_b"] = fb

    fc = go.Figure()
    mu_grid = np.geomspace(min(rep.config.mus), max(rep.config.mus), 200)
    for kappa, label, dash in ((rep.kappa_candidate, "ReRo bound, kappa = 1/n", "dash"),
                               (rep.kappa_threshold, "ReRo bound, kappa of the threshold", "dot")):
        fc.add_trace(go.Scatter(x=mu_grid, y=bounds.rero_bound_gdp(mu_grid, kappa), mode="lines",
                                name=f"{label} ({kappa:.3g})", line=dict(color="black", dash=dash)))
    for key, label, color in _SUCCESS:
        mus, ys = _series(summary, IN_DOMAIN, key)
        _, lo = _series(summary, IN_DOMAIN, f"{key}_lo")
        _, hi = _series(summary, IN_DOMAIN, f"{key}_hi")
        below, above = _error_bars(ys, lo, hi)
        fc.add_trace(go.Scatter(
            x=mus, y=ys, mode="lines+markers", name=label, line=dict(color=color),
            error_y=dict(type="data", symmetric=False, array=above, arrayminus=below)))
    fc.update_xaxes(type="log", title_text="mu (GDP)")
    fc.update_yaxes(range=[0, 1.02], title_text="success rate")
    fc.update_layout(title="Figure C: attack success against the ReRo bound",
                     template="plotly_white", height=440)
    figs["figure_c"] = fc

    if rep.has_attribute:
        fd = go.Figure()
        for who in ("diffusion", "noisy"):
            mus, ys = _series(summary, IN_DOMAIN, f"attr_{who}")
            fd.add_trace(go.Scatter(x=mus, y=ys, mode="lines+markers", name=_LABELS[who],
                                    line=dict(color=_COLORS[who])))
        fd.add_hline(y=0.1, line=dict(dash="dash", color="#555"), annotation_text="chance (1/10)")
        fd.update_xaxes(type="log", title_text="mu (GDP)")
        fd.update_yaxes(range=[0, 1.02], title_text="fraction carrying the original's label")
        fd.update_layout(title="Attribute disclosure: does the output carry the digit class?",
                         template="plotly_white", height=420)
        figs["figure_attribute"] = fd
    return figs


def _error_bars(ys, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """(below, above) lengths of an interval's error bars, never negative (rounding)."""
    return (np.clip(np.subtract(ys, lo), 0, None), np.clip(np.subtract(hi, ys), 0, None))


_SUCCESS = (("candidate_success", "candidate attack: exact identification", "#2ca02c"),
            ("diffusion_identification_success",
             "diffusion attack: identifies the target among the n candidates (SSIM)", "#1f77b4"),
            ("diffusion_threshold_success", "diffusion attack: SSIM >= tau", "#9467bd"))


def static_figures(rep: Reproduction, summary: list[dict], out: Path) -> dict[str, Path]:
    """The same figures as PNG files (matplotlib, no browser needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    keys = _panels_a(rep)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for who in ATTACKS:
            mus, ys = _series(summary, IN_DOMAIN, f"{who}_{key}")
            _, se = _series(summary, IN_DOMAIN, f"{who}_{key}_se")
            ax.errorbar(mus, ys, yerr=[v or 0 for v in se], marker="o", ms=3, capsize=2,
                        color=_COLORS[who], label=_LABELS[who])
        base = rep.baselines[IN_DOMAIN].get(key)
        if base is not None:
            ax.axhline(base, ls="--", color="#555", label="unrelated images")
        ax.set_xscale("log")
        ax.set_xlabel("mu (GDP)")
        ax.set_title(_METRIC_TITLES[key])
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Figure A: attacks on {rep.config.n_images} held-out images ({rep.prior_name})")
    fig.tight_layout()
    paths["figure_a"] = out / "figure_a.png"
    fig.savefig(paths["figure_a"], dpi=110)
    plt.close(fig)

    names = list(rep.baselines)
    fig, axes = plt.subplots(2, len(names), figsize=(4.6 * len(names), 7), squeeze=False)
    for col, name in enumerate(names):
        for row, key in enumerate(("ssim", "mse")):
            ax = axes[row][col]
            for who in ("diffusion", "noisy"):
                mus, ys = _series(summary, name, f"{who}_{key}")
                ax.plot(mus, ys, marker="o", ms=3, color=_COLORS[who], label=_LABELS[who])
            ax.axhline(rep.baselines[name][key], ls="--", color="#555", label="unrelated images")
            ax.set_xscale("log")
            ax.set_xlabel("mu (GDP)")
            ax.set_ylabel(key.upper())
            if row == 0:
                ax.set_title(name, fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Figure B: the same prior under distribution shift")
    fig.tight_layout()
    paths["figure_b"] = out / "figure_b.png"
    fig.savefig(paths["figure_b"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    mu_grid = np.geomspace(min(rep.config.mus), max(rep.config.mus), 200)
    ax.plot(mu_grid, bounds.rero_bound_gdp(mu_grid, rep.kappa_candidate), "k--",
            label=f"ReRo bound, kappa = 1/n = {rep.kappa_candidate:.3g}")
    ax.plot(mu_grid, bounds.rero_bound_gdp(mu_grid, rep.kappa_threshold), "k:",
            label=f"ReRo bound, kappa of the threshold = {rep.kappa_threshold:.3g}")
    for key, label, color in _SUCCESS:
        mus, ys = _series(summary, IN_DOMAIN, key)
        _, lo = _series(summary, IN_DOMAIN, f"{key}_lo")
        _, hi = _series(summary, IN_DOMAIN, f"{key}_hi")
        ax.errorbar(mus, ys, yerr=_error_bars(ys, lo, hi), marker="o", ms=3,
                    capsize=2, color=color, label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mu (GDP)")
    ax.set_ylabel("success rate")
    ax.set_title(f"Figure C: success against the ReRo bound (tau = SSIM {rep.tau:.3f})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    paths["figure_c"] = out / "figure_c.png"
    fig.savefig(paths["figure_c"], dpi=110)
    plt.close(fig)

    if rep.has_attribute:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for who in ("diffusion", "noisy"):
            mus, ys = _series(summary, IN_DOMAIN, f"attr_{who}")
            ax.plot(mus, ys, marker="o", ms=3, color=_COLORS[who], label=_LABELS[who])
        ax.axhline(0.1, ls="--", color="#555", label="chance (1/10)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("mu (GDP)")
        ax.set_ylabel("fraction carrying the original's label")
        ax.set_title("Attribute disclosure (digit class)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths["figure_attribute"] = out / "figure_attribute.png"
        fig.savefig(paths["figure_attribute"], dpi=110)
        plt.close(fig)
    return paths


def examples_image(rep: Reproduction, out: Path) -> Path:
    """Per set: for 4 images, a row of noisy observations and a row of reconstructions."""
    from .report import tile

    rows = []
    for ex in rep.examples.values():
        m = len(ex["mus"])
        for k in range(len(ex["original"])):
            rows += [torch.cat([ex["original"][k][None], ex["noisy"][k]]),
                     torch.cat([ex["original"][k][None], ex["diffusion"][k]])]
    path = out / "examples.png"
    tile(torch.cat(rows), cols=m + 1, scale=2).save(path)
    return path


def write_reproduction(rep: Reproduction, out: Path) -> dict[str, Path]:
    """rows.csv (every number), summary.csv, run.json, figures (HTML + PNG), examples.png."""
    from .report import package_versions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rep)
    paths = {"rows": out / "rows.csv", "summary": out / "summary.csv", "run": out / "run.json",
             "html": out / "reproduction.html"}
    for path, table in ((paths["rows"], rep.rows), (paths["summary"], summary)):
        fields = list(dict.fromkeys(k for r in table for k in r))
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in table:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    paths["run"].write_text(json.dumps({
        "command": " ".join(["python -m audit_engine"] + sys.argv[1:]) if sys.argv else None,
        "config": asdict(rep.config) | {"mus": list(rep.config.mus)},
        "prior": rep.prior_name, "elapsed_s": rep.elapsed_s, "tau_ssim": rep.tau,
        "kappa_candidate": rep.kappa_candidate, "kappa_threshold": rep.kappa_threshold,
        "kappa_threshold_best_guess": rep.kappa_threshold_guess,
        "baselines": rep.baselines, "lpips": rep.lpips,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": package_versions(),
    }, indent=2) + "\n")
    figs = plotly_figures(rep, summary)
    html = ["<html><head><meta charset='utf-8'><title>Reproduction</title></head><body>",
            f"<h1>Visual privacy auditing: reproduction on {rep.prior_name}</h1>",
            f"<p>{rep.config.n_images} held-out images; LPIPS: {rep.lpips}; run time "
            f"{rep.elapsed_s:.0f} s.</p>"]
    for i, fig in enumerate(figs.values()):
        html.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    html.append("</body></html>")
    paths["html"].write_text("\n".join(html))
    paths.update(static_figures(rep, summary, out))
    paths["examples"] = examples_image(rep, out)
    return paths
