"""From rows to the summary: means, standard errors, success rates with intervals that
respect the clustering of draws within an image, and the bounds they are compared with."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..attacker.metrics import METRICS
from ..maths import bounds
from .experiment import ATTACKS, Reproduction

__all__ = [
    "SUCCESS",
    "ATTRIBUTE",
    "cluster_interval",
    "psnr_of_mean_mse",
    "summarize",
    "write_csv",
    "read_csv",
]

# success rates: each is a per-image value (one draw, or the mean over draws)
SUCCESS = (
    "candidate_success",
    "norm_attack_success",
    "recon_identification_success",
    "recon_threshold_success",
    "recon_mse_success",
    "noisy_mse_success",
    "noisy_unclipped_mse_success",
    "recon_psnr_success",
    "noisy_psnr_success",
    "noisy_unclipped_psnr_success",
)
ATTRIBUTE = ("recon", "noise_aware", "noisy")


def cluster_interval(
    values: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-image values, resampling images
    (the draws of one image are not independent; images are)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def psnr_of_mean_mse(mse: float | None) -> float | None:
    """10 log10(1 / mean MSE): finite for any run (the mean of per-image PSNRs is infinite
    as soon as one reconstruction is exact, and averaging only finite ones keeps failures)."""
    if mse is None or not math.isfinite(mse):
        return None
    return math.inf if mse <= 0 else 10 * math.log10(1.0 / mse)


def summarize(rep: Reproduction) -> list[dict]:
    """One row per (set, mu): means, standard errors, success rates with cluster-bootstrap
    95% intervals, the ReRo bounds and the Ziller law of the noisy observation."""
    out = []
    cfg = rep.config
    psnr_eta = 10.0 ** (-cfg.psnr_threshold / 10.0)
    for name in dict.fromkeys(r["set"] for r in rep.rows):
        for mu in cfg.mus:
            rows = [r for r in rep.rows if r["set"] == name and r["mu"] == mu]
            n = len(rows)
            s = {
                "set": name,
                "mu": mu,
                "eps": rows[0]["eps"],
                "n": n,
                "clip_norm": rows[0]["clip_norm"],
                "sigma": rows[0]["sigma"],
                "t_star_median": float(np.median([r["t_star"] for r in rows])),
                "beyond_range_fraction": float(np.mean([r["beyond_range"] for r in rows])),
            }
            for who in ATTACKS:
                for k in METRICS:
                    if k == "psnr":
                        continue
                    vals = [r.get(f"{who}_{k}") for r in rows]
                    vals = [v for v in vals if v is not None and math.isfinite(v)]
                    s[f"{who}_{k}"] = float(np.mean(vals)) if vals else None
                    s[f"{who}_{k}_se"] = (
                        float(np.std(vals, ddof=1) / math.sqrt(len(vals)))
                        if len(vals) > 1
                        else None
                    )
                s[f"{who}_psnr"] = psnr_of_mean_mse(s[f"{who}_mse"])
            for key in SUCCESS:
                if key in rows[0]:
                    v = np.array([r[key] for r in rows])
                    s[key] = float(v.mean())
                    s[f"{key}_lo"], s[f"{key}_hi"] = cluster_interval(v, cfg.n_boot, cfg.seed)
            s["rero_bound_candidate"] = float(bounds.rero_bound_gdp(mu, rep.kappa_candidate))
            s["rero_bound_threshold"] = float(bounds.rero_bound_gdp(mu, rep.kappa_threshold))
            sig = rows[0]["sigma"]
            s["ziller_mse_law"] = float(bounds.mse_cdf(rep.eta, s=sig, d=rep.pixels))
            s["ziller_psnr_law"] = float(bounds.mse_cdf(psnr_eta, s=sig, d=rep.pixels))
            if "attr_original" in rows[0]:
                orig = np.array([r["attr_original"] for r in rows])
                for who in ATTRIBUTE:
                    if f"attr_{who}" in rows[0]:
                        hit = np.array([r[f"attr_{who}"] for r in rows]) == orig
                        s[f"attr_{who}"] = float(hit.mean())
                        s[f"attr_{who}_lo"], s[f"attr_{who}_hi"] = cluster_interval(
                            hit, cfg.n_boot, cfg.seed
                        )
                # a constant guess of the most frequent class
                s["attr_chance"] = float(np.bincount(orig).max() / n)
            out.append(s)
    return out


def write_csv(path: Path, table: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in table for k in r))
    with Path(path).open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in table:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def read_csv(path: Path) -> list[dict]:
    """A written table back, numbers as floats, empty cells as None."""

    def value(v: str):
        if v == "":
            return None
        try:
            return float(v)
        except ValueError:
            return {"True": True, "False": False}.get(v, v)

    with Path(path).open(newline="") as fh:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(fh)]
