"""Which steps of the reverse process make a candidate's samples better and lose identification.

The candidate's network (b) denoises at timesteps t >= a split and the shipped one's (a)
below it; the samples are classified by the independent classifier of compare_priors.py and
the reconstructions of held-out digits identified at one budget.

    python -m research.sample_split --a SHIPPED --b CANDIDATE \
        --out research/data/sample-split.json --doc research/PRIOR-COMPARISON.md

The question behind it (research/PRIOR-COMPARISON.md): the candidates' better samples came with
less identification at mu 5, whose reconstructions run the reverse process from the matched
timestep down. If the samples' gain came from the high-noise steps alone, a prior could take
it there and keep the shipped network below, where the audit's reconstructions run. Every
configuration draws the same samples' noise (compare_priors.ddpm_samples: DDPM with all
1000 steps, seed 0), and every configuration reconstructs the same digits from the same releases
(identification_estimators', exact over every decoy draw), so the rows differ only by
which network denoises where.
"""

from __future__ import annotations

import json
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from audit_engine.attacker.priors import load_prior
from research.compare_priors import (
    confident,
    ddpm_samples,
    diagnostic_main,
    local,
    paired_difference,
    svc,
    svc_proba,
    training_digits,
)
from research.identification_estimators import exact_identification, heldout_digits

BLOCK = "sample-split"  # its generated block in research/PRIOR-COMPARISON.md


class SplitUNet(torch.nn.Module):
    """high's output at timesteps t >= split, low's below: one denoiser made of two."""

    def __init__(self, high: torch.nn.Module, low: torch.nn.Module, split: int):
        super().__init__()
        self.high, self.low, self.split, self.config = high, low, split, low.config

    def forward(self, x: torch.Tensor, t) -> types.SimpleNamespace:
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(len(x)) if t.dim() == 0 else t
        use_high = t >= self.split
        out = torch.empty_like(x)
        if (~use_high).any():
            out[~use_high] = self.low(x[~use_high], t[~use_high]).sample
        if use_high.any():
            out[use_high] = self.high(x[use_high], t[use_high]).sample
        return types.SimpleNamespace(sample=out)


def run(a: Path, b: Path, splits: list[int], n: int, mu: float, n_digits: int, seed: int) -> dict:
    pa, pb = load_prior(str(a), device="cpu"), load_prior(str(b), device="cpu")
    T = pa.num_train_timesteps
    if any(not 0 < s < T for s in splits):
        raise SystemExit(f"each split must be a timestep between 1 and {T - 1}: {splits}")
    model = svc(*training_digits(a), "svc")
    real = confident(svc_proba(model, np.load(a / "heldout.npz")["images"]))
    digits, _, idx = heldout_digits(a, n_digits, seed)
    rows, shipped = [], None
    for split in [T, *splits, 0]:  # a everywhere, the splits, b everywhere
        prior = replace(pa, unet=SplitUNet(pb.unet, pa.unet, split))
        ident = exact_identification(prior, digits, idx, mu, seed)
        shipped = ident if shipped is None else shipped
        _, samples_u8 = ddpm_samples(prior, n)
        rows.append(
            {
                "split": split,
                "confident": confident(svc_proba(model, samples_u8)),
                "identified": paired_difference(shipped, ident),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {
        "a": str(a),
        "b": str(b),
        "n_samples": n,
        "svc_confident_heldout": real,
        "num_train_timesteps": T,
        "mu": mu,
        "n_digits": n_digits,
        "seed": seed,
        "rows": rows,
    }


def render(report: dict) -> str:
    T, real = report["num_train_timesteps"], report["svc_confident_heldout"]
    lines = [
        f"`{local(report['command'])}` ({report['n_samples']} DDPM samples per row, the same "
        f"noise in every row; real held-out digits: {real:.3f} confident. Identification "
        f"at mu {report['mu']:g}: {report['n_digits']} held-out digits, 8 releases each, "
        f"the same in every row; the probability that the reconstruction picks the digit "
        f"among 10, exact over every draw of the decoys, and its change from the first "
        f"row, paired, with its 95% interval)",
        "",
        "| b's network at | a's network at | confident samples | of real digits' | "
        f"identified at mu {report['mu']:g} | change (95% interval) |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        s, i = r["split"], r["identified"]
        high = "no step" if s >= T else ("every step" if s == 0 else f"t >= {s}")
        low = "no step" if s == 0 else ("every step" if s >= T else f"t < {s}")
        lines.append(
            f"| {high} | {low} | {r['confident']:.3f} | {r['confident'] / real:.3f} | "
            f"{i['b']:.4f} | {i['diff']:+.4f} [{i['ci95'][0]:+.4f}, "
            f"{i['ci95'][1]:+.4f}] |"
        )
    return "\n".join(lines)


def add_arguments(ap) -> None:
    ap.add_argument("--splits", type=int, nargs="+", default=[800, 600, 400, 200])
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument("--mu", type=float, default=5.0, help="budget of the identification column")
    ap.add_argument(
        "--n-digits",
        type=int,
        default=200,
        help="held-out digits of the identification column (drawn at random)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=1,
        help="the digits' draw and their releases (identification_estimators')",
    )


def main() -> None:
    diagnostic_main(
        __doc__.splitlines()[0],
        ROOT / "research" / "data" / "sample-split.json",
        lambda args: BLOCK,
        render,
        lambda args: run(
            args.a,
            args.b,
            sorted(set(args.splits), reverse=True),
            args.n_samples,
            args.mu,
            args.n_digits,
            args.seed,
        ),
        add_arguments,
    )


if __name__ == "__main__":
    main()
