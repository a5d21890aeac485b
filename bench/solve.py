"""Solving for the budget against one dashboard ladder, side by side in one run, on the
embedded prior with the dashboard's defaults (8 tries at the first look, 10 DDIM steps, no
LPIPS): the single-image search (solve.py) must finish in under 15 s on this machine; here
it is given as a ratio to one 8-budget ladder (plus the chosen budget) on the same image.

    python -m bench.solve [--images N] [--check M]

``--check M`` also does what a reviewer would on M held-out digits (never used in training):
solve, then re-measure both attackers at the answer with fresh tries, computed in NumPy from
``--save-samples``'s files and the public mechanism (``check``), and count the answers whose
measured rates stay within chance + the tolerance.

Each timing is the median over the example digits (both warmed up first: the prior, its
reference set and the classifier are loaded once per process).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from audit_engine.attacker.priors import load_prior
from audit_engine.audit.solve import solve_budget
from audit_engine.session import ladder as db
from bench.common import machine

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6, help="example digits to time (default 6)")
    ap.add_argument(
        "--check",
        type=int,
        default=0,
        help="held-out digits to solve and re-measure at the answer (a reviewer's check)",
    )
    args = ap.parse_args()
    if args.check:
        check(args.check)
    if not args.images:
        return
    digits = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[: args.images]
    prior = load_prior()
    settings = db.Settings(lpips=None)
    db.compute_ladder(digits[0], settings, current_mu=3.0)  # warm-up: prior, reference, classifier
    solve_budget(digits[0], prior=prior)
    ladder, search, evals = [], [], []
    for d in digits:
        t = time.perf_counter()
        db.compute_ladder(d, settings, current_mu=3.0)
        ladder.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = solve_budget(d, prior=prior)
        search.append(time.perf_counter() - t)
        evals.append(r.evaluations)
        print(
            f"{d.name}: ladder {ladder[-1]:.2f} s, search {search[-1]:.2f} s "
            f"({r.evaluations} budgets; eps_max {r.eps_max:.3g})"
        )
    lad, sol = statistics.median(ladder), statistics.median(search)
    print(machine())
    print(
        f"median over {len(digits)} digits: one ladder (9 budgets, 8 tries and the sequential "
        f"rule's) {lad:.2f} s; the search ({statistics.median(evals):.0f} budgets) {sol:.2f} s"
    )
    print(
        f"search / one ladder: {sol / lad:.2f}x; search under 15 s: "
        f"{'yes' if max(search) < 15 else 'no'} (slowest {max(search):.2f} s)"
    )


def check(n: int, *, gallery_tries: int = 20000, prior_seeds: int = 4) -> None:
    """What a reviewer does: solve n held-out digits (never used in training), then measure
    both attackers at each answer with fresh tries, computed here in NumPy from what
    ``--save-samples`` writes and from the public mechanism, not by the engine's attack code:
    - the gallery attacker on ``gallery_tries`` fresh releases clip_C(x) + (C / mu) xi, with
      9 look-alikes drawn from the other held-out digits each time (and, for its chance, the
      same test on releases without the image);
    - the prior attacker on 32 x ``prior_seeds`` fresh tries (new seeds) saved by the audit:
      the candidate most correlated with the reconstruction among the target and the saved
      look-alikes.
    Each rate must stay within chance + the tolerance at the answer."""
    import tempfile

    import numpy as np
    from scipy.stats import beta

    from audit_engine.audit.run import run_audit
    from audit_engine.outputs.report import write_outputs
    from bench.common import heldout

    x, _ = heldout(n)
    pool = x.flatten(1).double().numpy()
    prior = load_prior()
    rng = np.random.default_rng(12345)
    upper = lambda k, m: 1.0 if k == m else float(beta.ppf(0.975, k + 1, m - k))
    ok = 0
    for i in range(n):
        r = solve_budget(x[i], prior=prior)
        if r.mu_max is None:
            print(f"held-out digit {i}: no budget ({r.sentence()})")
            continue
        mu, c, tol = r.mu_max, r.clip_norm, r.tolerance
        clip = lambda a: a * np.minimum(1.0, c / np.linalg.norm(a, axis=-1, keepdims=True))
        target = clip(pool[i])
        others = clip(np.delete(pool, i, axis=0))
        pick = np.argsort(rng.random((gallery_tries, len(others))), axis=1)[:, :9]
        noise = rng.standard_normal((gallery_tries, pool.shape[1])) * (c / mu)

        def nearest_is_target(y, chunk=1000):
            out = []
            for a in range(0, len(y), chunk):
                yy, pp = y[a : a + chunk], pick[a : a + chunk]
                d_t = ((yy - target) ** 2).sum(1)
                d_o = ((yy[:, None, :] - others[pp]) ** 2).sum(2)
                out.append((d_t[:, None] < d_o).all(1))
            return np.concatenate(out)

        g_rate = float(nearest_is_target(target + noise).mean())
        g_chance = max(0.1, float(nearest_is_target(noise).mean()))
        hits = tries = 0
        p_chance = None
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(1, prior_seeds + 1):
                a = run_audit(
                    x[i], mus=[mu], prior=prior, lpips=None, seed=seed, trials=32, max_trials=32
                )
                write_outputs(a, tmp, save_samples=True)
                z = np.load(f"{tmp}/samples.npz")
                p_chance = a.verdicts[0].identification.chance
                rec = z["reconstructions"].reshape(len(z["mu"]), -1)
                cands = np.concatenate(
                    [
                        np.broadcast_to(
                            z["original"].reshape(1, 1, -1), (len(rec), 1, rec.shape[1])
                        ),
                        z["lookalikes"].reshape(len(rec), 9, -1),
                    ],
                    axis=1,
                )
                unit = lambda v: (
                    (v - v.mean(-1, keepdims=True))
                    / np.maximum(
                        np.linalg.norm(v - v.mean(-1, keepdims=True), axis=-1, keepdims=True), 1e-12
                    )
                )
                corr = (unit(cands) * unit(rec)[:, None, :]).sum(-1)
                hits += int((corr[:, 0] > corr[:, 1:].max(1)).sum())
                tries += len(rec)
        p_rate = hits / tries
        good = g_rate <= g_chance + tol and p_rate <= p_chance + tol
        ok += good
        print(
            f"held-out digit {i}: eps_max {r.eps_max:.3g} (mu {mu:.3g}); gallery "
            f"{g_rate:.3f} (95% upper {upper(int(g_rate * gallery_tries), gallery_tries):.3f}; "
            f"chance {g_chance:.3f}); prior {hits} of {tries} = {p_rate:.3f} (95% upper "
            f"{upper(hits, tries):.3f}; chance {p_chance:.3f}); within chance + {tol:g}: {good}"
        )
    print(f"{ok} of {n} answers hold when re-measured with fresh tries by both attackers")


if __name__ == "__main__":
    main()
