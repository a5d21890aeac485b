"""The reproduction's Markdown: every number of docs/REPRODUCTION.md, generated from a run's
summary.csv and run.json (``tables``), written into the doc's generated blocks by
``audit_engine.docblocks``."""

from __future__ import annotations

import math

from .data import IN_DOMAIN

__all__ = ["num", "tables", "checks"]


def num(v, digits: int = 3) -> str:
    """A number as the doc prints it: 3 significant digits, thousands separated."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    v = float(v)
    if math.isinf(v):
        return "inf"
    return f"{v:,.0f}" if abs(v) >= 10**digits else f"{v:.{digits}g}"


def _rate(s: dict, key: str) -> str:
    if s.get(key) is None:
        return "n/a"
    return f"{s[key]:.3f} [{s[key + '_lo']:.2f}, {s[key + '_hi']:.2f}]"


def _rows(summary: list[dict], name: str = IN_DOMAIN) -> list[dict]:
    return [s for s in summary if s["set"] == name]


def _first_above(rows: list[dict], key: str, base: float, higher_is_closer: bool = True):
    for s in rows:
        v = s.get(key)
        if v is not None and (v > base if higher_is_closer else v < base):
            return s["mu"]
    return None


def tables(summary: list[dict], info: dict) -> dict[str, str]:
    ind = _rows(summary)
    base = info["baselines"]
    cfg = info["config"]
    out = {
        "command": f"    {info['command']}\n\non {info['machine']['cpus']} CPUs "
        f"({info['machine']['platform']}), {info['elapsed_s']:.0f} s."
    }
    mus = ", ".join(num(s["mu"]) for s in ind)
    eps = (num(ind[0]["eps"]), num(ind[-1]["eps"]))
    sets = "; ".join(
        f"{name}: {info['set_sizes'][name]} images, clip norm C = {info['clip_norms'][name]:.3g}"
        for name in info["set_sizes"]
    )
    out["setting"] = "\n".join(
        [
            f"- prior `{info['prior']}`; targets: {info['set_sizes'][IN_DOMAIN]} images "
            f"({info['targets']}); candidate sets of n = {info['n_candidates']} (kappa = 1/n = "
            f"{info['kappa_candidate']:.3g}), {cfg['n_draws']} draws per image and budget for the "
            "candidate and norm attacks;",
            f"- budgets mu = {mus} (eps at delta = {cfg['delta']:g} from {eps[0]} to {eps[1]});",
            f"- the release clip_C(x) + (C / mu) xi with a public C per set ({sets}); "
            f"mechanism: {cfg['mechanism']}; DDIM with {cfg['steps']} steps from t*;",
            f"- thresholds: SSIM >= tau = b + {cfg['recognisable_r']:g} (1 - b) = {info['tau_ssim']:.3f} "
            f"(b = {base[IN_DOMAIN]['ssim']:.3f}, the unrelated-image SSIM), whose prior success "
            f"kappa = {info['kappa_threshold']:.3g} is the best rate of one fixed guess "
            f"({info['kappa_threshold_best_guess']}); MSE <= eta = (1 - r) b_MSE = "
            f"{info['eta_mse']:.4f} (b_MSE = {base[IN_DOMAIN]['mse']:.4f}); PSNR >= "
            f"{cfg['psnr_threshold']:g} dB;",
            *(
                [
                    f"- the noise-aware classifier knows {info['pool_size']} labelled images of the "
                    "domain (each target itself left out);"
                ]
                if info["has_attribute"]
                else []
            ),
            f"- LPIPS: {info['lpips']}; run time {info['elapsed_s']:.0f} s"
            + (f"; {len(info['skipped'])} unreadable files skipped" if info.get("skipped") else "")
            + ".",
        ]
    )

    head = (
        "| mu | eps | SSIM diffusion | SSIM noisy | SSIM candidate | MSE diffusion | MSE noisy "
        "| PSNR diffusion | PSNR noisy |"
    )
    lines = [head, "|" + "---:|" * 9]
    for s in ind:
        lines.append(
            f"| {num(s['mu'])} | {num(s['eps'])} | {num(s['recon_ssim'])} | "
            f"{num(s['noisy_ssim'])} | {num(s['candidate_ssim'])} | "
            f"{num(s['recon_mse'], 2)} | {num(s['noisy_mse'], 2)} | "
            f"{num(s['recon_psnr'])} | {num(s['noisy_psnr'])} |"
        )
    se = [
        s[f"{w}_ssim_se"]
        for s in ind
        for w in ("recon", "noisy", "candidate")
        if s.get(f"{w}_ssim_se") is not None
    ]
    lines.append("")
    lines.append(
        f"PSNR is that of the mean MSE. Standard errors of the SSIM means: "
        f"{num(min(se))} to {num(max(se))} (`summary.csv`)."
    )
    if info["lpips_available"]:
        lines.append("LPIPS means are in `summary.csv` and Figure A.")
    out["figure_a"] = "\n".join(lines)

    names = list(info["set_sizes"])
    lines = [
        "| mu | " + " | ".join(f"{n}: diffusion / noisy SSIM" for n in names) + " |",
        "|---:|" + "---|" * len(names),
    ]
    for s in ind:
        cells = []
        for n in names:
            r = next(x for x in _rows(summary, n) if x["mu"] == s["mu"])
            cells.append(f"{num(r['recon_ssim'])} / {num(r['noisy_ssim'])}")
        lines.append(f"| {num(s['mu'])} | " + " | ".join(cells) + " |")
    lines.append("| baseline | " + " | ".join(num(base[n]["ssim"]) for n in names) + " |")
    lines.append(
        "| first mu above the baseline (diffusion / noisy) | "
        + " | ".join(
            f"{num(_first_above(_rows(summary, n), 'recon_ssim', base[n]['ssim']))} / "
            f"{num(_first_above(_rows(summary, n), 'noisy_ssim', base[n]['ssim']))}"
            for n in names
        )
        + " |"
    )
    out["figure_b"] = "\n".join(lines)

    lines = [
        "| mu | candidate attack | norm-only attack | diffusion, identification | "
        "ReRo bound (1/n) | diffusion, SSIM >= tau | ReRo bound (threshold) |",
        "|---:|---|---|---|---:|---|---:|",
    ]
    for s in ind:
        lines.append(
            f"| {num(s['mu'])} | {_rate(s, 'candidate_success')} | "
            f"{_rate(s, 'norm_attack_success')} | "
            f"{_rate(s, 'recon_identification_success')} | "
            f"{s['rero_bound_candidate']:.3f} | {_rate(s, 'recon_threshold_success')} "
            f"| {s['rero_bound_threshold']:.3f} |"
        )
    lines += [
        "",
        "| mu | noisy, unclipped: MSE <= eta | Ziller law (MSE) | noisy, clipped | "
        "diffusion | noisy, unclipped: PSNR >= p | Ziller law (PSNR) | noisy, clipped | "
        "diffusion |",
        "|---:|---|---:|---|---|---|---:|---|---|",
    ]
    for s in ind:
        lines.append(
            f"| {num(s['mu'])} | {_rate(s, 'noisy_unclipped_mse_success')} | "
            f"{s['ziller_mse_law']:.3f} | {_rate(s, 'noisy_mse_success')} | "
            f"{_rate(s, 'recon_mse_success')} | "
            f"{_rate(s, 'noisy_unclipped_psnr_success')} | {s['ziller_psnr_law']:.3f} | "
            f"{_rate(s, 'noisy_psnr_success')} | {_rate(s, 'recon_psnr_success')} |"
        )
    lines += ["", "Rates with 95% percentile-bootstrap intervals over images."]
    out["figure_c"] = "\n".join(lines)
    out["checks"] = "\n".join(checks(summary, info))

    if "attr_recon" in ind[0]:
        lines = [
            "| mu | reconstruction | noisy observation, noise-aware classifier | noisy "
            "observation, clean-image classifier | a constant guess |",
            "|---:|---|---|---|---:|",
        ]
        for s in ind:
            lines.append(
                f"| {num(s['mu'])} | {_rate(s, 'attr_recon')} | "
                f"{_rate(s, 'attr_noise_aware')} | {_rate(s, 'attr_noisy')} | "
                f"{s['attr_chance']:.3f} |"
            )
        out["attribute"] = "\n".join(lines)
    return out


def checks(summary: list[dict], info: dict) -> list[str]:
    """The statements the findings rest on, each computed: bounds against attacks, the
    Ziller law against the unclipped observation, and the candidate attack's floor."""
    ind = _rows(summary)
    lines = []
    for key, label in (
        ("candidate_success", "candidate attack"),
        ("norm_attack_success", "norm-only attack"),
        ("recon_identification_success", "diffusion identification"),
    ):
        over = [s["mu"] for s in ind if s[f"{key}_lo"] > s["rero_bound_candidate"]]
        lines.append(
            f"- {label} against the ReRo bound (kappa = 1/n): "
            + (
                "under the bound within its interval at every mu"
                if not over
                else "ABOVE the bound beyond its interval at mu = "
                + ", ".join(num(m) for m in over)
            )
        )
    over = [s["mu"] for s in ind if s["recon_threshold_success_lo"] > s["rero_bound_threshold"]]
    lines.append(
        "- diffusion SSIM >= tau against the ReRo bound at the threshold's kappa: "
        + (
            "under the bound within its interval at every mu"
            if not over
            else "ABOVE the bound at mu = " + ", ".join(num(m) for m in over)
        )
    )
    off = [
        s["mu"]
        for s in ind
        if not s["noisy_unclipped_mse_success_lo"] - 0.02
        <= s["ziller_mse_law"]
        <= s["noisy_unclipped_mse_success_hi"] + 0.02
    ]
    lines.append(
        "- the unclipped noisy observation against the Ziller law (MSE form): "
        + (
            "the law lies within the measured interval (+-0.02) at every mu"
            if not off
            else "the law falls outside the measured interval at mu = "
            + ", ".join(num(m) for m in off)
        )
    )
    k, b = info["kappa_candidate"], info["baselines"][IN_DOMAIN]["ssim"]
    lines.append(
        f"- the candidate attack's SSIM as mu -> 0: kappa + (1 - kappa) b = "
        f"{k + (1 - k) * b:.3f} (b = {b:.3f}); measured at mu = {num(ind[0]['mu'])}: "
        f"{ind[0]['candidate_ssim']:.3f}"
    )
    return lines
