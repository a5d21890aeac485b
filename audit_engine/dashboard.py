"""What the dashboard computes, without any UI: budget ladder, slider mapping, views of a
budget, DP-SGD calculator text and the report. app.py only lays out and wires these."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import accounting
from .attacks import load_baseline
from .audit import AuditResult, AuditSample, run_audit
from .images import ImageLike, to_prior_tensor, to_uint8
from .plots import bound_figure, similarity_figure
from .priors import EMBEDDED, REGISTRY, load_prior, prior_status
from .reconstruct import DEFAULT_DDIM_STEPS
from .report import grid_image, html_report
from .verdict import verdict

__all__ = ["SLIDER_RANGE", "Settings", "Session", "BudgetView", "slider_to_mu", "mu_to_slider",
           "budget_label", "ladder_mus", "compute_ladder", "view_budget", "compute_exact",
           "dpsgd_text", "prior_choices", "prior_table", "report_html", "display",
           "ladder_image", "figures", "ladder_verdicts", "gpu_seconds"]

# slider positions are log10 of the budget in the chosen unit
SLIDER_RANGE = {"eps": (-1.0, 5.0), "mu": (math.log10(0.05), math.log10(500.0))}
LADDER_SIZE = 8
LADDER_SIGMAS = (0.05, 200.0)  # diffusion-scale noise std from "useless" to "strong" protection


def slider_to_mu(value: float, mode: str, delta: float) -> tuple[float, float]:
    """(mu, eps) for a slider position (log10 of eps or of mu)."""
    if mode not in SLIDER_RANGE:
        raise ValueError(f"mode must be 'eps' or 'mu', got mode={mode!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"the budget must be a finite number, got {value!r}")
    lo, hi = SLIDER_RANGE[mode]
    if not lo - 1e-9 <= v <= hi + 1e-9:
        raise ValueError(f"the slider gives log10 of {mode}: it must lie between {lo:.3g} and "
                         f"{hi:.3g} ({mode} {10 ** lo:.3g} to {10 ** hi:.3g}), got {v:g}")
    budget = 10.0 ** v
    if mode == "eps":
        return accounting.mu_from_eps(budget, delta), budget
    return budget, accounting.eps_from_mu(budget, delta)


def mu_to_slider(mu: float, mode: str, delta: float) -> float:
    lo, hi = SLIDER_RANGE[mode]
    v = math.log10(accounting.eps_from_mu(mu, delta) if mode == "eps" else mu) if mu > 0 else lo
    return float(min(max(v, lo), hi))


def budget_label(mu: float, eps: float, delta: float) -> str:
    return f"eps = {eps:.4g} at delta = {delta:g}  (mu = {mu:.4g})"


def ladder_mus(image_norm: float, n: int = LADDER_SIZE) -> list[float]:
    """n budgets from 'useless' (noise std 0.05 in the model's scale) to 'strong' protection
    (std 200, beyond the linear schedule's range): mu = 2 ||x|| / sigma_dm."""
    sig = np.geomspace(*LADDER_SIGMAS, n)
    return sorted(float(2 * max(image_norm, 1e-6) / s) for s in sig)


@dataclass(frozen=True)
class Settings:
    prior: str = EMBEDDED
    sampler: str = "ddim"
    steps: int = DEFAULT_DDIM_STEPS
    seeds: int = 1
    seed: int = 0
    delta: float = 1e-5
    mechanism: str = "analytic"
    lpips: str = "alex"


@dataclass
class Session:
    """One user's ladder for one (image, prior, settings), and exact budgets computed since."""

    key: str
    image: torch.Tensor
    settings: Settings
    ladder: AuditResult
    baseline: dict | None
    exact: dict[float, AuditResult] = field(default_factory=dict)

    def result_for(self, mu: float) -> tuple[AuditResult, float, bool]:
        """(result holding mu or its nearest ladder point, that mu, exact?)."""
        for m, res in self.exact.items():
            if math.isclose(m, mu, rel_tol=1e-9):
                return res, m, True
        mus = self.ladder.budgets()
        near = min(mus, key=lambda m: abs(math.log(m) - math.log(mu)))
        return self.ladder, near, math.isclose(near, mu, rel_tol=1e-9)


def _key(x: torch.Tensor, settings: Settings) -> str:
    h = hashlib.sha256(x.numpy().tobytes())
    h.update(repr(settings).encode())
    return h.hexdigest()


def _baseline_for(prior_name: str) -> dict | None:
    spec = REGISTRY.get(prior_name)
    folder = Path(spec.source) if spec else Path(prior_name)
    return load_baseline(folder) if folder.is_dir() else None


def compute_ladder(
    image: ImageLike,
    settings: Settings,
    *,
    current_mu: float | None = None,
    progress: Callable[[float, str], None] | None = None,
    previous: Session | None = None,
) -> Session:
    """The ladder for this image and settings (plus the current budget, in the same pass).
    Returns ``previous`` unchanged when image and settings are the same."""
    prior = load_prior(settings.prior)
    x = image if isinstance(image, torch.Tensor) else to_prior_tensor(
        image, size=prior.sample_size, channels=prior.channels)
    key = _key(x, settings)
    if previous is not None and previous.key == key:
        return previous
    ladder = ladder_mus(float(x.norm()))
    mus = ladder + ([float(current_mu)] if current_mu is not None else [])
    res = _run(x, mus, settings, prior=prior, progress=progress)
    session = Session(key=key, image=x, settings=settings, ladder=_subset(res, ladder),
                      baseline=_baseline_for(settings.prior))
    if current_mu is not None:
        session.exact[float(current_mu)] = _subset(res, [float(current_mu)])
    return session


def _run(x: torch.Tensor, mus: list[float], settings: Settings, *, prior=None,
         progress: Callable[[float, str], None] | None = None) -> AuditResult:
    """run_audit with a session's settings (DDPM always walks every step from t*)."""
    return run_audit(x, mus=mus, delta=settings.delta, prior=prior or settings.prior,
                     seeds=settings.seeds, seed=settings.seed, sampler=settings.sampler,
                     steps=settings.steps if settings.sampler == "ddim" else None,
                     mechanism=settings.mechanism, lpips=settings.lpips, progress=progress)


def _subset(res: AuditResult, mus: list[float]) -> AuditResult:
    keep = [s for s in res.samples if any(math.isclose(s.mu, m) for m in mus)]
    return AuditResult(**{**res.__dict__, "samples": keep})


def compute_exact(session: Session, mu: float, *,
                  progress: Callable[[float, str], None] | None = None) -> AuditResult:
    """Run the exact budget (same image, settings and seeds) and remember it."""
    found, m, exact = session.result_for(mu)
    if exact:
        return _subset(found, [m])
    res = _run(session.image, [mu], session.settings, progress=progress)
    session.exact[float(mu)] = res
    return res


def display(x: torch.Tensor, size: int = 256) -> np.ndarray:
    """uint8 array for the screen: small images enlarged with nearest-neighbour pixels."""
    a = to_uint8(x)
    k = max(1, size // a.shape[0])
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


@dataclass
class BudgetView:
    mu: float
    eps: float
    exact: bool
    samples: list[AuditSample]
    verdict: str
    score: float
    beyond_range: bool
    attribute: dict | None = None  # the original's attribute, when the prior ships a classifier

    def attribute_markdown(self) -> str:
        """'Attribute revealed: yes/no' for priors with an attribute classifier, else ''."""
        if not self.attribute or any(s.attribute is None for s in self.samples):
            return ""
        orig, name = self.attribute["original"], self.attribute["name"]
        recon = [s.attribute["recon"] for s in self.samples]
        noisy = [s.attribute["noisy"] for s in self.samples]
        hits = sum(r == orig for r in recon)
        revealed = "yes" if hits * 2 > len(recon) else "no"

        def reads(labels):
            return ", ".join(str(v) for v in labels)

        return (f"**Attribute revealed ({name}): {revealed}.** A classifier trained only on the "
                f"prior's training split reads the original as **{orig}**, the noisy "
                f"observation as {reads(noisy)} and the reconstruction as {reads(recon)}"
                + (f" ({hits} of {len(recon)} seeds)" if len(recon) > 1 else "") + ".")

    def metrics_markdown(self, lpips_note: str) -> str:
        def mean(who, key):
            vals = [getattr(s, who)[key] for s in self.samples if getattr(s, who)[key] is not None]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)

        rows = [("LPIPS", "lpips", ".3f", "perceptual distance learned from human judgements; "
                 "0 = identical, lower = more similar"),
                ("SSIM", "ssim", ".3f", "structural similarity of local patterns; 1 = identical"),
                ("PSNR", "psnr", ".1f", "pixel fidelity in dB; higher = closer (above about 20 dB "
                 "differences are subtle)"),
                ("MSE", "mse", ".4f", "mean squared pixel error; 0 = identical")]
        lines = ["| metric | noisy observation | diffusion reconstruction | what it means |",
                 "|---|---|---|---|"]
        for name, key, spec, meaning in rows:
            lines.append(f"| {name} | {fmt(mean('noisy', key), spec)} | "
                         f"**{fmt(mean('recon', key), spec)}** | {meaning} |")
        if lpips_note and "unavailable" in lpips_note:
            lines.append(f"\n_{lpips_note}_")
        if attr := self.attribute_markdown():
            lines.append(f"\n{attr}")
        return "\n".join(lines)


def view_budget(session: Session, mu: float) -> BudgetView:
    res, m, exact = session.result_for(mu)
    samples = [s for s in res.samples if math.isclose(s.mu, m)]
    ssim = float(np.mean([s.recon["ssim"] for s in samples]))
    beyond = any(s.beyond_range for s in samples)
    label, r = verdict(ssim, (session.baseline or {}).get("ssim"), beyond_range=beyond)
    return BudgetView(mu=m, eps=samples[0].eps, exact=exact, samples=samples, verdict=label,
                      score=r, beyond_range=beyond, attribute=res.attribute)


def ladder_verdicts(session: Session) -> dict[float, str]:
    return {m: view_budget(session, m).verdict for m in session.ladder.budgets()}


def ladder_image(session: Session):
    notes = ladder_verdicts(session)
    return grid_image(session.ladder, notes=notes)


def figures(session: Session, mode: str, current_mu: float):
    x = session.image
    sim = similarity_figure(session.ladder, mode=mode, current_mu=current_mu,
                            baseline=session.baseline)
    bnd = bound_figure(mode=mode, delta=session.settings.delta, current_mu=current_mu,
                       image_norm=float(x.norm()), pixels=x.numel())
    return sim, bnd


def report_html(session: Session, mode: str, current_mu: float) -> str:
    res, m, _ = session.result_for(current_mu)
    current = _subset(res, [m])
    return html_report(session.ladder, current=current, mode=mode, baseline=session.baseline,
                       figures=figures(session, mode, current_mu),
                       verdicts={**ladder_verdicts(session), m: view_budget(session, m).verdict})


def dpsgd_text(noise_multiplier: float, sample_rate: float, steps: int, delta: float
               ) -> tuple[str, float]:
    """Markdown summary of a DP-SGD run's budget, and its mu (for the slider)."""
    b = accounting.dpsgd_budget(noise_multiplier=noise_multiplier, sample_rate=sample_rate,
                                steps=int(steps), delta=delta)
    lines = [f"**mu = {b.mu:.4g}** ({b.mu_method})"]
    if b.eps_exact is not None:
        lines.append(f"- eps = **{b.eps_exact:.4g}** at delta = {delta:g} (exact, from mu)")
    lines.append(f"- eps = {b.eps_prv:.4g} (Opacus PRV accountant)" if b.eps_prv is not None
                 else f"- PRV accountant: {b.prv_error}")
    lines.append(f"- eps = {b.eps_rdp:.4g} (Opacus RDP accountant, an upper bound)")
    return "\n".join(lines), b.mu


def gpu_seconds(prior: str, sampler: str, steps: int, seeds: int) -> int:
    """A generous estimate of the GPU time one ladder needs (ZeroGPU asks for it up front):
    UNet rounds x batch x a per-sample cost that grows with the prior's pixel count:
    4 ms per sample and step at 256x256, about twice what a float16 forward of the
    113.7 M-parameter CelebA-HQ UNet is expected to take on an A100 (not yet measured here:
    no GPU has been lent to this project; tests/test_gpu.py times it where one is), plus
    15 s for loading and metrics."""
    spec = REGISTRY.get(prior)
    side = spec.resolution if spec and spec.resolution else 256
    rounds = 1000 if sampler == "ddpm" else max(1, int(steps))
    batch = (LADDER_SIZE + 1) * max(1, int(seeds))
    per_sample = 0.004 * (side / 256) ** 2 + 1e-4
    return int(min(600, max(20, 15 + rounds * batch * per_sample)))


def prior_table() -> list[tuple[str, str, str, str]]:
    """(key, title, state, why) for every registered prior; the embedded prior first."""
    return [(key, spec.title, *prior_status(key)) for key, spec in REGISTRY.items()]


def prior_choices(table: list[tuple[str, str, str, str]] | None = None) -> list[tuple[str, str]]:
    """(label with status, key) for the prior selector; the embedded prior first."""
    return [(f"{title} [{state}]", key) for key, title, state, _ in (table or prior_table())]

