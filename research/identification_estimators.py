"""Which reconstruction identifies a held-out digit more often: the audit's DDIM endpoint or
the prior's one-step posterior mean (Tweedie's estimate at the matched timestep), for two
priors, on the same digits, noise draws and decoys.

    python -m research.identification_estimators --b CANDIDATE --n 200 \
        --out research/data/identification-estimators.json --doc research/PRIOR-COMPARISON.md

The question behind it (research/PRIOR-COMPARISON.md): a prior with better samples identified
the particular digit less often; is a blurrier guess, closer to the posterior mean, what
identifies better? Each digit is released 8 times (analytic path, as the audit releases
it), reconstructed by each prior both ways, and identified among 10 candidates (the digit
and 9 other held-out digits, the same for every prior and estimator) as the audit does
(audit_engine.attacker.attacks.identify); the table gives the mean successes of 8 per digit and the
paired b - a with its 95% interval.

A second table asks why, for the audit's DDIM endpoint: how close each prior's
reconstruction is to the digit and to the closest other held-out digits (of its class and
of another), and the identification's success probability exact over every decoy draw
(free of the one draw the first table uses).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from audit_engine.attacker.attacks import correlation, guess_rate, identify
from audit_engine.attacker.pipeline import attack, observe
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import DEFAULT_DDIM_STEPS
from research.compare_priors import diagnostic_main, local, paired_difference

TRIES, CANDIDATES = 8, 10
# DDIM from the matched timestep to 0 in one step returns the model's predicted x0, which
# is Tweedie's posterior-mean estimate (reconstruct.predict_x0, clipped to the pixel range)
ESTIMATORS = {"DDIM endpoint (the audit's)": DEFAULT_DDIM_STEPS, "posterior mean (one step)": 1}
CLOSENESS = {
    "target": "correlation with the digit",
    "closest_same_class": "with the closest other digit of its class",
    "closest_other_class": "with the closest digit of another class",
    "identified_any_decoys": "identified, exact over every decoy draw",
}
BLOCK = "estimators"  # its generated block in research/PRIOR-COMPARISON.md


def reconstructions(
    prior, x: torch.Tensor, mu: float, xi: torch.Tensor, steps: int
) -> torch.Tensor:
    """x released len(xi) times at mu (the analytic path) and reconstructed from each."""
    obs = observe(
        prior, x[None].expand(len(xi), -1, -1, -1), mu, clip_norm=float(x.norm()), xi=xi
    )  # C = ||x||: the release these estimators were measured on
    return attack(prior, obs, sampler="ddim", steps=steps)


def closeness(recons: torch.Tensor, i: int, held: torch.Tensor, labels: np.ndarray) -> dict:
    """What the reconstructions of held-out digit i are close to, mean over the releases:
    their correlation with the digit, with the most correlated other held-out digit of its
    class and of another class, and the identification's success probability exact over
    every draw of the 9 decoys from the other held-out digits (attacks.guess_rate, which
    asks the same question of any image that stands in for the guess)."""
    c = correlation(recons, held)
    same = torch.from_numpy(labels == labels[i])
    same[i] = False
    other = torch.from_numpy(labels != labels[i])
    return {
        "target": float(c[:, i].mean()),
        "closest_same_class": float(c[:, same].amax(dim=1).mean()),
        "closest_other_class": float(c[:, other].amax(dim=1).mean()),
        "identified_any_decoys": guess_rate(held[i], recons, held, candidates=CANDIDATES),
    }


def heldout_digits(folder: Path, n: int, seed: int):
    """The prior folder's held-out digits (N, 1, H, W) in [0, 1], their labels, and the n
    of them drawn at random with this seed."""
    heldout = np.load(folder / "heldout.npz")
    held = torch.from_numpy(heldout["images"]).float().div(255)[:, None]
    return held, heldout["labels"], np.random.default_rng(seed).choice(len(held), n, replace=False)


def releases(seed: int, j: int, shape) -> tuple[torch.Tensor, torch.Generator]:
    """The noise of the j-th drawn digit's TRIES releases, and the generator that goes on
    to draw its decoys: the same for every prior and estimator."""
    g = torch.Generator().manual_seed(seed * 100_003 + j)
    return torch.randn((TRIES,) + tuple(shape), generator=g), g


def exact_identification(prior, held: torch.Tensor, idx, mu: float, seed: int) -> list[float]:
    """Per drawn digit, the identification's success probability of the audit's
    reconstructions at mu, exact over every decoy draw (as in closeness)."""
    out = []
    for j, i in enumerate(idx):
        xi, _ = releases(seed, j, held[i].shape)
        r = reconstructions(prior, held[i], mu, xi, DEFAULT_DDIM_STEPS)
        out.append(guess_rate(held[i], r, held, candidates=CANDIDATES))
    return out


def run(a: Path, b: Path, n: int, mus: list[float], seed: int) -> dict:
    priors = {"a": load_prior(str(a), device="cpu"), "b": load_prior(str(b), device="cpu")}
    held, labels, idx = heldout_digits(a, n, seed)
    out = {
        "a": str(a),
        "b": str(b),
        "n": n,
        "mus": mus,
        "seed": seed,
        "tries": TRIES,
        "rows": [],
        "closeness": [],
    }
    for mu in mus:
        per = {(p, e): [] for p in priors for e in ESTIMATORS}
        near = {(p, k): [] for p in priors for k in CLOSENESS}
        for j, i in enumerate(idx):
            xi, g = releases(seed, j, held[i].shape)
            others = torch.tensor([k for k in range(len(held)) if k != i])
            decoys = torch.stack(
                [
                    held[others[torch.randperm(len(others), generator=g)[: CANDIDATES - 1]]]
                    for _ in range(TRIES)
                ]
            )
            for p, prior in priors.items():
                for e, steps in ESTIMATORS.items():
                    r = reconstructions(prior, held[i], mu, xi, steps)
                    per[(p, e)].append(int(identify(r, held[i], decoys).sum()))
                    if steps == DEFAULT_DDIM_STEPS:
                        for k, v in closeness(r, int(i), held, labels).items():
                            near[(p, k)].append(v)
        for e in ESTIMATORS:
            out["rows"].append(
                {"mu": mu, "estimator": e, **paired_difference(per[("a", e)], per[("b", e)])}
            )
        for k in CLOSENESS:
            out["closeness"].append(
                {"mu": mu, "measure": k, **paired_difference(near[("a", k)], near[("b", k)])}
            )
        print(
            json.dumps(out["rows"][-len(ESTIMATORS) :] + out["closeness"][-len(CLOSENESS) :]),
            flush=True,
        )
    return out


def render(report: dict) -> str:
    lines = [
        f"`{local(report['command'])}` ({report['n']} held-out digits, {report['tries']} releases "
        f"each, identification among {CANDIDATES})",
        "",
        "| mu | reconstruction | successes a | successes b | b - a (95% interval) |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['mu']:g} | {r['estimator']} | {r['a']:.2f} | {r['b']:.2f} | "
            f"{r['diff']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] |"
        )
    if report.get("closeness"):
        lines += [
            "",
            "What the audit's reconstruction (the DDIM endpoint) is close to, mean per "
            "digit over its releases (Pearson correlation, the identification's "
            "similarity; the other digits are the other held-out digits):",
            "",
            "| mu | measure | a | b | b - a (95% interval) |",
            "|---|---|---|---|---|",
        ]
        for r in report["closeness"]:
            lines.append(
                f"| {r['mu']:g} | {CLOSENESS[r['measure']]} | {r['a']:.4f} | "
                f"{r['b']:.4f} | {r['diff']:+.4f} [{r['ci95'][0]:+.4f}, "
                f"{r['ci95'][1]:+.4f}] |"
            )
    return "\n".join(lines)


def add_arguments(ap) -> None:
    ap.add_argument("--n", type=int, default=200, help="held-out digits (drawn at random)")
    ap.add_argument("--mus", type=float, nargs="+", default=[2.0, 5.0])
    ap.add_argument("--seed", type=int, default=1)


def main() -> None:
    diagnostic_main(
        __doc__.splitlines()[0],
        ROOT / "research" / "data" / "identification-estimators.json",
        lambda args: BLOCK,
        render,
        lambda args: run(args.a, args.b, args.n, args.mus, args.seed),
        add_arguments,
    )


if __name__ == "__main__":
    main()
