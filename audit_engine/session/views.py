"""What the dashboard shows of a ladder, without any UI: the view of one budget (images,
verdict and metrics in words), the ladder and tries pictures, the plots, pinned budgets
side by side, the report and the DP-SGD calculator's text."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..audit.run import AuditResult, AuditSample
from ..audit.verdict import SEVERITY, BudgetVerdict, DomainCheck
from ..images import to_uint8
from ..maths import accounting
from ..outputs.plots import audit_figures
from ..outputs.plots import budgets_table as _budgets_table
from ..outputs.report import grid_image, html_report, tile
from ..progress import Progress
from .ladder import Session, budget_label, compute_exact, merge

__all__ = [
    "BudgetView",
    "headline",
    "view_budget",
    "ladder_verdicts",
    "verdicts_payload",
    "display",
    "tries_image",
    "ladder_image",
    "figures",
    "report_html",
    "budgets_table",
    "compare_budgets",
    "PRESETS",
    "MAX_PINNED",
    "pin_label",
    "pin_choices",
    "pinned_mu",
    "dpsgd_text",
]


# chance, wherever it is shown: why a pick among 10 is not simply 10%
CHANCE_SENTENCE = (
    "Chance is how often the attacker would pick your image if the release "
    "carried nothing about it: 1 in 10 by blind guessing, more when images "
    "like yours are what the attacker expects anyway."
)


def display(x: torch.Tensor, size: int = 256) -> np.ndarray:
    """uint8 array for the screen: small images enlarged with nearest-neighbour pixels."""
    a = to_uint8(x)
    k = max(1, size // a.shape[0])
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def headline(domain: DomainCheck | None, verdict: BudgetVerdict | None) -> str:
    """A budget's headline: the worse of the two attackers' verdicts, or why there is none."""
    if domain is not None and not domain.in_domain:
        return "not assessed: outside the prior's domain"
    if verdict is None:
        return "no verdict"
    return verdict.headline()


@dataclass
class BudgetView:
    mu: float
    eps: float
    exact: bool
    samples: list[AuditSample]  # the trials of this budget
    verdict: BudgetVerdict | None  # None when the prior has no reference set
    domain: DomainCheck | None
    spread: torch.Tensor  # (1, H, W) spread map
    beyond_range: bool
    reference: str = ""
    stopped: str = ""  # why the sequential rule stopped early (AuditResult.stopped)
    attribute_note: str = ""  # why no attribute claim is made (AuditResult.attribute_note)

    @property
    def label(self) -> str:
        """The headline: the worse of the two attackers' verdicts, or why there is none."""
        return headline(self.domain, self.verdict)

    def verdict_markdown(self) -> str:
        """The verdict in plain words, below its headline: the domain warning (all that is
        said outside the domain), then both attackers' evidence, then the attribute."""
        lines = []
        if self.domain is not None and not self.domain.in_domain:
            return f"**Warning:** {self.domain.warning()}"  # the warning is the whole answer
        if self.verdict is None:
            why = self.reference or "no verdict was requested"  # "no reference set, so ..."
            lines.append(f"{why[:1].upper()}{why[1:].rstrip('.')}.")
            return "\n\n".join(lines)
        v = self.verdict  # (its headline is the page's heading above these lines)
        lines.extend(
            f"- {av.sentence()}"
            for av in sorted((v.gallery, v.identification), key=lambda av: -SEVERITY[av.level])
        )
        if v.attribute is not None:
            lines.append(
                v.attribute.sentence() + " The base rate is what the same attack "
                "names when the release carries nothing about your image: the label "
                "it favours by itself, not one in as many labels."
            )
        elif self.attribute_note:
            lines.append(self.attribute_note)
        lines.append(f"**What eps means for this image.** {v.budgets_sentence()}")
        lines.append(
            f"_{CHANCE_SENTENCE} Bounds at 95% confidence; protected: within chance "
            f"+ {v.gallery.tolerance:.0%} (docs/VERDICTS.md)._"
        )
        return "\n\n".join(lines)

    def metrics_markdown(self, lpips_note: str) -> str:
        def mean(who, key):
            vals = [getattr(s, who)[key] for s in self.samples if getattr(s, who)[key] is not None]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)

        rows = [
            (
                "LPIPS",
                "lpips",
                ".3f",
                "perceptual distance learned from human judgements; "
                "0 = identical, lower = more similar",
            ),
            ("SSIM", "ssim", ".3f", "structural similarity of local patterns; 1 = identical"),
            (
                "PSNR",
                "psnr",
                ".1f",
                "pixel fidelity in dB; higher = closer (above about 20 dB differences are subtle)",
            ),
            ("MSE", "mse", ".4f", "mean squared pixel error; 0 = identical"),
        ]
        lines = [
            f"Means over {len(self.samples)} trials.",
            "",
            "| metric | noisy observation | diffusion reconstruction | what it means |",
            "|---|---|---|---|",
        ]
        for name, key, spec, meaning in rows:
            lines.append(
                f"| {name} | {fmt(mean('noisy', key), spec)} | "
                f"**{fmt(mean('recon', key), spec)}** | {meaning} |"
            )
        if lpips_note and "unavailable" in lpips_note:
            lines.append(f"\n_{lpips_note}_")
        return "\n".join(lines)


def view_budget(session: Session, mu: float) -> BudgetView:
    return _view(*session.result_for(mu))


def _view(res: AuditResult, m: float, exact: bool) -> BudgetView:
    samples = res.at(m)
    return BudgetView(
        mu=m,
        eps=samples[0].eps,
        exact=exact,
        samples=samples,
        verdict=res.verdict_at(m),
        domain=res.domain,
        spread=res.spread(m),
        beyond_range=any(s.beyond_range for s in samples),
        reference=res.reference,
        stopped=res.stopped,
        attribute_note=res.attribute_note(),
    )


def ladder_verdicts(session: Session) -> dict[float, str]:
    """Each ladder budget's headline (without building its view)."""
    lad = session.ladder
    return {m: headline(lad.domain, lad.verdict_at(m)) for m in lad.budgets()}


def verdicts_payload(session: Session, view: BudgetView) -> dict:
    """The verdicts.json of the ladder and the budget on view (what the API returns)."""
    out = session.ladder.verdicts_json()
    in_domain = view.domain is None or view.domain.in_domain
    if (
        view.verdict is not None
        and in_domain
        and not any(math.isclose(b["mu"], view.mu) for b in out["budgets"])
    ):
        out["budgets"] = sorted(out["budgets"] + [view.verdict.to_dict()], key=lambda b: b["mu"])
    return out


# Budgets to pin for comparison. Sources (docs/DASHBOARD.md, "Presets for comparing budgets"): eps 8 and eps 1 are
# the strongest and the most cited settings of De et al. 2022 (DP-SGD on CIFAR-10 and
# ImageNet); eps 3 is Tramer & Boneh 2021's CIFAR-10 setting; eps 1000 stands for budgets
# that give no real protection against this attacker.
PRESETS = {"eps 1": 1.0, "eps 3": 3.0, "eps 8": 8.0, "eps 1000 (no real protection)": 1000.0}
MAX_PINNED = 4


def pin_label(mu: float, eps: float) -> str:
    return f"eps {eps:.4g} (mu {mu:.4g})"


def pin_choices(pinned: list[str]) -> list[str]:
    return list(dict.fromkeys(list(PRESETS) + list(pinned)))


def pinned_mu(choice: str, delta: float) -> float:
    """mu of a pinned budget: a preset (eps at ``delta``) or a pin_label."""
    if choice in PRESETS:
        return accounting.mu_from_eps(PRESETS[choice], delta)
    try:
        return float(choice.split("(mu ")[1].rstrip(")"))
    except (IndexError, ValueError):
        raise ValueError(f"unknown budget {choice[:40]!r}") from None


def compare_budgets(session: Session, mus: list[float], *, progress: Progress | None = None):
    """(grid image, markdown table, session) of the given budgets side by side, with their
    verdicts; budgets not yet computed are computed once (same image, settings and trials)
    and the returned session holds them."""
    results = []
    for m in mus:
        session, res = compute_exact(session, m, progress=progress)
        results.append(res)
    merged = merge(results)
    views = [_view(r, r.budgets()[0], True) for r in results]  # the session's cache may have
    # dropped an early one when more budgets than it holds are compared
    notes = {v.mu: v.label for v in views}
    rows = [
        "| budget | holds it among 10: picks it (what decided; chance) | reconstructs: "
        "picks it (what decided; chance) | attribute (what decided) | verdict |",
        "|---|---|---|---|---|",
    ]
    for v in views:
        ok = v.verdict is not None and (v.domain is None or v.domain.in_domain)
        g = v.verdict.gallery if ok else None
        i = v.verdict.identification if ok else None
        a = v.verdict.attribute if ok else None
        gal = f"{g.rate:.0%} of {g.trials} ({g.evidence()}; chance {g.chance:.0%})" if g else "n/a"
        ident = (
            f"{i.successes} of {i.trials} ({i.evidence()}; chance {i.chance:.0%})" if i else "n/a"
        )
        attr = (
            "n/a" if a is None else f"{a.level} by {' and '.join(a.by)} ({a.decisive.evidence()})"
        )
        rows.append(
            f"| {budget_label(v.mu, v.eps, session.settings.delta)} | {gal} | {ident} "
            f"| {attr} | **{v.label}** |"
        )
    rows.append("")
    rows.append(CHANCE_SENTENCE)
    return grid_image(merged, notes=notes), "\n".join(rows), session


def tries_image(samples: list[AuditSample], size: int = 96, most: int = 16):
    """The reconstructions of one budget side by side, one tile per try (at most 8 a row,
    the first ``most`` tries)."""
    samples = samples[:most]
    side = samples[0].reconstruction.shape[-1]
    return tile(
        torch.stack([s.reconstruction for s in samples]),
        cols=min(8, len(samples)),
        scale=max(1, size // side),
    )


def ladder_image(session: Session):
    notes = ladder_verdicts(session)
    return grid_image(session.ladder, notes=notes)


def figures(session: Session, mode: str, current_mu: float):
    return audit_figures(
        session.ladder, mode=mode, baseline=session.baseline, current_mu=current_mu
    )


def budgets_table(session: Session, mode: str) -> str:
    """The numbers of the plot of what eps means for this image, over the ladder."""
    return _budgets_table(session.ladder, mode=mode)


def report_html(session: Session, mode: str, current_mu: float) -> str:
    res, m, _ = session.result_for(current_mu)
    current = res.subset([m])
    return html_report(
        session.ladder,
        current=current,
        mode=mode,
        baseline=session.baseline,
        figures=figures(session, mode, current_mu),
        verdicts={**ladder_verdicts(session), m: view_budget(session, m).label},
        search=session.search,
    )


def dpsgd_text(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> tuple[str, float]:
    """Markdown summary of a DP-SGD run's budget, and its mu (for the slider)."""
    b = accounting.dpsgd_budget(
        noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=int(steps), delta=delta
    )
    lines = [f"**mu = {b.mu:.4g}** ({b.mu_method})"]
    if b.eps_exact is not None:
        lines.append(f"- eps = **{b.eps_exact:.4g}** at delta = {delta:g} (exact, from mu)")
    lines.append(
        f"- eps = {b.eps_prv:.4g} (Opacus PRV accountant)"
        if b.eps_prv is not None
        else f"- PRV accountant: {b.prv_error}"
    )
    lines.append(f"- eps = {b.eps_rdp:.4g} (Opacus RDP accountant, an upper bound)")
    return "\n".join(lines), b.mu
