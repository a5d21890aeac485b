"""Evaluate the embedded prior and write docs/PRIOR.md (with its figures).

1. 64 unconditional samples (grid PNG), labelled by the digit classifier trained on
   the training split only: fraction classified with confidence > 0.9, classes present.
2. Reconstruction of held-out digits over a grid of mu: mean SSIM and MSE of the noisy
   observation (clipped) and of the diffusion reconstruction, and how often the
   classifier reads the original's label from each (attribute disclosure).

    python scripts/evaluate_prior.py                   # all 500 held-out digits
    python scripts/evaluate_prior.py --n-heldout 200   # quicker
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from audit_engine.attacker import pipeline
from audit_engine.attacker.attributes import classify, load_classifier
from audit_engine.attacker.metrics import similarity
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import sample
from audit_engine.maths import accounting
from audit_engine.outputs.report import tile
from audit_engine.training.digits import recipe_markdown

MUS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200]


def load_time(prior_dir: Path) -> tuple[float, float]:
    """(seconds to import diffusers, seconds to load the prior) in a fresh process, offline."""
    code = (
        "import time, torch; t = time.perf_counter(); import diffusers; "
        "from diffusers import UNet2DModel; t1 = time.perf_counter(); "
        "from audit_engine.attacker.priors import load_prior; "
        f"load_prior({str(prior_dir)!r}, device='cpu'); "
        "print(t1 - t, time.perf_counter() - t1)"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", AUDIT_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    a, b = out.strip().splitlines()[-1].split()
    return float(a), float(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--prior", type=Path, default=ROOT / "audit_engine" / "assets" / "prior-mnist32"
    )
    ap.add_argument("--n-heldout", type=int, default=500)
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps from t* (reconstruction)")
    ap.add_argument("--sample-sampler", choices=["ddim", "ddpm"], default="ddpm")
    ap.add_argument("--sample-steps", type=int, default=None, help="default: all 1000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    args = ap.parse_args()
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    cold = load_time(args.prior)
    prior = load_prior(str(args.prior), device="cpu")
    clf = load_classifier(args.prior)
    if clf is None:
        sys.exit(f"no classifier.safetensors in {args.prior}: run scripts/train_classifier.py")
    clf_info = json.loads((args.prior / "classifier.json").read_text())
    training = json.loads((args.prior / "training.json").read_text())

    # 1. unconditional samples
    t0 = time.perf_counter()
    samples = sample(
        prior, 64, sampler=args.sample_sampler, steps=args.sample_steps, seed=args.seed
    )
    t_samples = time.perf_counter() - t0
    tile(samples, 8).save(args.out / "prior-samples.png")
    lab, conf = classify(clf, samples)
    confident = float((conf > 0.9).float().mean())
    classes = sorted(set(lab[conf > 0.9].tolist()))
    hist = np.bincount(lab.numpy(), minlength=10).tolist()

    # 2. held-out reconstructions
    held = np.load(args.prior / "heldout.npz")
    n = min(args.n_heldout, len(held["images"]))
    x = torch.from_numpy(held["images"][:n]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(held["labels"][:n])
    g = torch.Generator().manual_seed(args.seed)
    xi = torch.randn(x.shape, generator=g)  # one draw per image, shared by all mu (CRN)
    show_idx = torch.linspace(0, n - 1, 8).round().long()  # 8 digits across the classes
    rows, examples = [], {}
    t0 = time.perf_counter()
    for mu in MUS:
        released = pipeline.observe_at_own_norm(prior, x, mu, xi=xi)
        obs, matches = released.images, released.matches
        rec = pipeline.attack(
            prior, released, sampler="ddim", steps=args.steps, seeds=list(range(n)), batch_size=500
        )
        noisy = obs.clamp(0, 1)
        m_noisy = [similarity(a, b[None])[0] for a, b in zip(x, noisy)]
        m_rec = [similarity(a, b[None])[0] for a, b in zip(x, rec)]
        beyond = np.array([m.beyond_range for m in matches])
        rows.append(
            {
                "mu": mu,
                "eps": accounting.eps_from_mu(mu, 1e-5),
                "sigma_dm_median": float(np.median([m.sigma_dm for m in matches])),
                "t_star_median": int(np.median([m.t_star for m in matches])),
                "beyond_range_fraction": float(beyond.mean()),
                "ssim_noisy": float(np.mean([m["ssim"] for m in m_noisy])),
                "ssim_recon": float(np.mean([m["ssim"] for m in m_rec])),
                "mse_noisy": float(np.mean([m["mse"] for m in m_noisy])),
                "mse_recon": float(np.mean([m["mse"] for m in m_rec])),
                "label_noisy": float((classify(clf, noisy)[0] == y).float().mean()),
                "label_recon": float((classify(clf, rec)[0] == y).float().mean()),
            }
        )
        examples[mu] = (noisy[show_idx], rec[show_idx])
        print(json.dumps(rows[-1]), flush=True)
    t_recon = time.perf_counter() - t0
    better = [
        r["ssim_recon"] > r["ssim_noisy"] and r["mse_recon"] < r["mse_noisy"]
        for r in rows
        if r["beyond_range_fraction"] < 1
    ]

    # figure: for 8 digits, original then (noisy, recon) at a few mu
    show = [2, 5, 10, 20, 50]
    strip = [x[show_idx]] + [t for mu in show for t in examples[mu]]
    tile(torch.cat(strip), 8).save(args.out / "prior-reconstructions.png")

    cmd = "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(__file__, ROOT)] + sys.argv[1:]
    )
    table = [
        "| mu | eps (delta 1e-5) | median sigma_dm | median t* | beyond range | SSIM noisy | "
        "SSIM recon | MSE noisy | MSE recon | label kept: noisy | label kept: recon |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['mu']:g} | {r['eps']:.3g} | {r['sigma_dm_median']:.3g} | "
            f"{r['t_star_median']} | {r['beyond_range_fraction']:.0%} | "
            f"{r['ssim_noisy']:.3f} | **{r['ssim_recon']:.3f}** | {r['mse_noisy']:.4f} | "
            f"**{r['mse_recon']:.4f}** | {r['label_noisy']:.0%} | {r['label_recon']:.0%} |"
        )
    md = f"""# The embedded prior: evidence of quality

Made by `{cmd}` on {datetime.date.today().isoformat()}
({platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; {time.perf_counter() - t_start:.0f} s in all).
The model card is [audit_engine/assets/prior-mnist32/README.md](../assets/prior-mnist32/README.md).

## Model

UNet2DModel, {prior.num_parameters / 1e6:.2f} M parameters, 1x32x32, linear betas 1e-4..0.02,
1000 steps, epsilon prediction; trained {training.get("total_epochs_all_stages", training["epochs"])} epochs (batch {training["batch_size"]}) in {1 + len(training.get("previous_stages", []))} stage(s), {training.get("total_training_minutes_all_stages", training["training_minutes"]):.0f} min in all on this kind of CPU;
final training loss {training["final_loss_avg_last_200"]:.4f} (mean of the last 200 steps).
Loading it offline in a fresh process took {cold[1]:.2f} s, after {cold[0]:.2f} s to import
diffusers (paid once per process, whatever the prior).

## Unconditional samples

64 samples, {args.sample_sampler.upper()} with {args.sample_steps or "all 1000"} steps from pure
noise ({t_samples:.0f} s):

![samples](prior-samples.png)

A digit classifier (`audit_engine.attacker.attributes.AttributeCNN`, trained on the training split only,
held-out accuracy {clf_info["heldout"]["accuracy"]:.1%}) labels them:
**{confident:.0%} are classified with confidence > 0.9**; classes present among those:
{classes} ({len(classes)} of 10). Label counts over all 64: {hist}.

## Reconstruction of held-out digits

{n} held-out digits (never used in training), privatized as DP-SGD leaks them
(x + ||x||/mu * xi, one noise draw per image shared by all mu), reconstructed with DDIM
({args.steps} steps from t*). Noisy = the observation clipped to [0, 1] (the attack
without a prior). "Label kept" = the classifier reads the original's digit from it.
Took {t_recon:.0f} s.

{chr(10).join(table)}

The reconstruction is better than the noisy observation (higher SSIM and lower MSE) at
{sum(better)} of the {len(better)} budgets where t* < T: **{"yes, at every one" if all(better) else "NOT at every one"}**.

Rows: 8 held-out originals (across the classes), then for mu = {", ".join(map(str, show))}: the noisy observations and
their reconstructions.

![reconstructions](prior-reconstructions.png)

## Rebuild it with train-prior

<!-- generated:recipe -->
{recipe_markdown()}
<!-- /generated -->
"""
    (args.out / "PRIOR.md").write_text(md)
    (args.out / "prior-eval.json").write_text(
        json.dumps(
            {
                "samples_confident_fraction": confident,
                "classes": classes,
                "label_hist": hist,
                "rows": rows,
                "load_seconds": cold,
                "n_heldout": n,
            },
            indent=2,
        )
    )
    print(
        f"confident {confident:.0%}, classes {classes}; better at every mu with t* < T: "
        f"{all(better)}; wrote {args.out / 'PRIOR.md'}"
    )


if __name__ == "__main__":
    main()
