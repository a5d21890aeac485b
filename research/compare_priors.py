"""Two embedded-prior candidates side by side, in one run, on the measures of issue 18.

    python -m research.compare_priors --b CANDIDATE --seeds 0 1 \
        --out research/data/prior-comparison.json --doc research/PRIOR-COMPARISON.md
    python -m research.compare_priors --render research/data/prior-comparison.json --doc research/PRIOR-COMPARISON.md

For each prior:
1. sample quality: N unconditional samples (DDPM, every step) read by an independent
   classifier (scikit-learn SVC on raw pixels, trained on the prior's training split):
   the fraction classified with probability > 0.9, against the same fraction on the
   held-out digits; the class proportions; the Frechet distance between samples and
   held-out digits in the feature space of the project's digit classifier (its 128-unit
   penultimate layer);
2. reconstruction: on the held-out digits, the honest-verdict rule of the audit
   (identification among 10 candidates, attribute against the prior's own class rate,
   8 tries) at mu = 2, 5, 10, once per seed: the fraction judged "recognisable" (and
   "partly"), the fraction with the attribute revealed; and, digit by digit, the
   identification and attribute successes of both priors on the same digits, seeds and
   noise draws, whose paired difference (b - a, with a 95% interval) is the finer measure;
3. memorization: for each sample, the L2 distance to its nearest training digit and the
   ratio to the second nearest (a ratio below 1/3 marks a near-copy, as in Carlini et al.
   2023), against the same distances for held-out digits;
4. speed: the dashboard's first audit (9 budgets, default tries), median of 3, measured
   for both priors in this run; weight file sizes.

Then the decision: whether b may replace a under the rule of research/PRIOR-COMPARISON.md
(``decision``), with the reasons when it may not.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

ROOT = Path(__file__).resolve().parent.parent

from audit_engine.attacker.attributes import load_classifier
from audit_engine.attacker.priors import load_prior
from audit_engine.attacker.reconstruct import sample
from audit_engine.audit.run import run_audit
from audit_engine.docblocks import fill_file
from audit_engine.session import ladder as db
from audit_engine.training.digits import load_digits

MUS = (2.0, 5.0, 10.0)


def training_digits(prior_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prior's training split (uint8 (N, 32, 32), labels), rebuilt as the embedded prior was split (training.digits)."""
    digits, labels = load_digits()
    held = set(json.loads((prior_dir / "split.json").read_text())["test_indices"])
    keep = np.array([i for i in range(len(digits)) if i not in held])
    return digits[keep], labels[keep]


def svc(train_x: np.ndarray, train_y: np.ndarray, calibration: str):
    """The independent classifier: an RBF SVC on raw pixels with Platt-scaled probabilities,
    either libsvm's own (``svc``: SVC(probability=True), what issue 18 measured with) or
    scikit-learn's CalibratedClassifierCV (``platt-cv``), whose probabilities are less
    confident; both are reported because the confident-sample rate depends on it."""
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    x = train_x.reshape(len(train_x), -1) / 255.0
    if calibration == "platt-cv":
        return CalibratedClassifierCV(SVC(random_state=0), ensemble=False).fit(x, train_y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability= is deprecated in 1.9
        return SVC(probability=True, random_state=0).fit(x, train_y)


def ddpm_samples(prior, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """n unconditional samples (DDPM, every step, seed 0): in [0, 1] (n, 1, H, W), and as
    the 8-bit digits (n, H, W) the classifier reads."""
    s = sample(prior, n, sampler="ddpm", seed=0)
    return s, s.clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0].numpy()


def svc_proba(model, digits_u8: np.ndarray) -> np.ndarray:
    """The independent classifier's class probabilities for 8-bit digits (N, H, W)."""
    return model.predict_proba(digits_u8.reshape(len(digits_u8), -1) / 255.0)


def confident(proba: np.ndarray) -> float:
    """The fraction classified with probability above 0.9: the sample-quality measure."""
    return float((proba.max(1) > 0.9).mean())


def features(clf, x: torch.Tensor) -> np.ndarray:
    """The digit classifier's penultimate (128-unit) activations."""
    with torch.inference_mode():
        h = clf.features(x.float().clamp(0, 1) * 2 - 1).flatten(1)
        for layer in list(clf.head)[:-1]:
            if not isinstance(layer, torch.nn.Dropout):
                h = layer(h)
    return h.numpy().astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * np.real(root)))


def nearest(query: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, second nearest) L2 distances of each query row to the pool rows."""
    q = query.reshape(len(query), -1).astype(np.float64) / 255.0
    p = pool.reshape(len(pool), -1).astype(np.float64) / 255.0
    d2 = (q**2).sum(1)[:, None] - 2 * q @ p.T + (p**2).sum(1)[None, :]
    d = np.sqrt(np.clip(d2, 0, None))
    part = np.partition(d, 1, axis=1)
    return part[:, 0], part[:, 1]


def audit_heldout(prior, held_x: torch.Tensor, seed: int) -> dict:
    """Each held-out digit audited at MUS with the audit's defaults and this seed: per mu, the
    verdict, the identification and attribute successes (of the default 8 tries) and whether
    the class is revealed, one entry per digit (the digits in order, so two priors pair up)."""
    per = {
        str(m): {"verdict": [], "id_successes": [], "attr_successes": [], "revealed": []}
        for m in MUS
    }
    for x in held_x:
        res = run_audit(x, mus=list(MUS), prior=prior, lpips=None, seed=seed)
        for m in MUS:
            v, row = res.verdict_at(m), per[str(m)]
            inside = bool(res.domain["in_domain"])
            row["verdict"].append(v.verdict if inside else "out of domain")
            row["id_successes"].append(v.identification.successes)
            row["attr_successes"].append(v.attribute.successes if v.attribute else None)
            row["revealed"].append(bool(v.attribute and v.attribute.revealed))
    return per


def verdict_rates(per_image: dict, mu: float) -> dict:
    """The fractions of audited digits (over every seed) with each finding at mu."""
    rows = [per_image[seed][str(mu)] for seed in per_image]
    verdicts = [v for r in rows for v in r["verdict"]]
    n = len(verdicts)
    return {
        "recognisable": verdicts.count("recognisable") / n,
        "partly": verdicts.count("partly recognisable") / n,
        "attribute": sum(v for r in rows for v in r["revealed"]) / n,
        "out_of_domain": verdicts.count("out of domain") / n,
        "n": n,
    }


def paired(a: dict, b: dict) -> dict:
    """b - a on the same digits, seeds and noise draws, per mu: the mean difference of the
    identification and attribute successes per digit (of 8 tries) with a 95% normal
    interval over the (digit, seed) pairs."""
    out = {}
    for m in MUS:
        out[str(m)] = {}
        for key in ("id_successes", "attr_successes"):
            pairs = [
                (x, y)
                for seed in a["per_image"]
                for x, y in zip(
                    a["per_image"][seed][str(m)][key], b["per_image"][seed][str(m)][key]
                )
                if x is not None and y is not None
            ]
            out[str(m)][key] = {**paired_difference(*zip(*pairs)), "n": len(pairs)}
    return out


def paired_difference(a, b) -> dict:
    """The means of paired counts a and b, and b - a with a 95% normal interval over the pairs."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = xb - xa
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {
        "a": float(xa.mean()),
        "b": float(xb.mean()),
        "diff": float(d.mean()),
        "ci95": [float(d.mean() - half), float(d.mean() + half)],
    }


def decision(report: dict) -> list[str]:
    """Why b may not replace a under the rule of research/PRIOR-COMPARISON.md (empty: it may)."""
    a, b = report["a"], report["b"]
    no = []
    if b["svc_confident_samples"] < 0.9 * report["svc_confident_heldout"]:
        no.append("fewer than 0.9 as many confident samples as real digits")
    if min(b["class_proportions"]) == 0 or b["class_proportion_max_deviation"] > 0.05:
        no.append("a class missing or a class share more than 0.05 from 1/10")
    if b["frechet_classifier_features"] >= a["frechet_classifier_features"]:
        no.append("no lower Frechet distance")
    if b["memorization"]["samples_near_copies"] > 0:
        no.append("near-copies of training digits among the samples")
    if b["first_audit_s_median"] >= 3 or b["weights_mb"] >= 20:
        no.append("the first audit takes 3 s or more, or the weights 20 MB or more")
    gains = 0
    for m, row in report.get("paired", {}).items():
        for key, what in (("id_successes", "identifies"), ("attr_successes", "reveals the class")):
            lo, hi = row[key]["ci95"]
            gains += lo > 0
            if hi < 0:
                no.append(
                    f"{what} less often at mu {float(m):g} (paired 95% interval of b - a "
                    f"entirely below 0)"
                )
    if "paired" in report and not gains:
        no.append("reconstruction better nowhere (no paired interval above 0)")
    return no


def evaluate(
    prior_dir: Path,
    n_samples: int,
    n_heldout: int,
    model,
    train,
    held,
    seeds: tuple[int, ...] = (0,),
) -> dict:
    prior = load_prior(str(prior_dir), device="cpu")
    clf = load_classifier(prior_dir)
    out = {
        "prior": str(prior_dir),
        "parameters": prior.num_parameters,
        "weights_mb": sum(p.stat().st_size for p in (prior_dir / "unet").glob("*")) / 2**20,
    }
    t = time.perf_counter()
    s, s_u8 = ddpm_samples(prior, n_samples)
    out["sampling_s"] = time.perf_counter() - t
    proba = svc_proba(model, s_u8)
    labels = proba.argmax(1)
    out["svc_confident_samples"] = confident(proba)
    out["class_proportions"] = np.bincount(labels, minlength=10).tolist()
    out["class_proportion_max_deviation"] = float(
        np.abs(np.bincount(labels, minlength=10) / n_samples - 0.1).max()
    )
    held_x = torch.from_numpy(held[0]).float().div(255)[:, None]
    out["frechet_classifier_features"] = frechet(features(clf, s), features(clf, held_x))
    d1, d2 = nearest(s_u8, train[0])
    h1, h2 = nearest(held[0], train[0])
    out["memorization"] = {
        "samples_near_copies": float((d1 < d2 / 3).mean()),
        "heldout_near_copies": float((h1 < h2 / 3).mean()),
        "samples_nearest_train_median": float(np.median(d1)),
        "heldout_nearest_train_median": float(np.median(h1)),
    }
    if n_heldout == 0:  # sample quality, memorization and speed only
        out["first_audit_s_median"] = _first_audit(prior_dir, held_x)
        return out
    t = time.perf_counter()
    out["per_image"] = {str(seed): audit_heldout(prior, held_x[:n_heldout], seed) for seed in seeds}
    out["audit_s_per_image"] = (time.perf_counter() - t) / (n_heldout * len(seeds))
    out["reconstruction"] = {str(m): verdict_rates(out["per_image"], m) for m in MUS}
    out["first_audit_s_median"] = _first_audit(prior_dir, held_x)
    return out


def _first_audit(prior_dir: Path, held_x: torch.Tensor) -> float:
    """The dashboard's first audit (ladder + current budget, default tries), median of 3."""
    times = []
    for k in range(3):
        t = time.perf_counter()
        db.compute_ladder(held_x[k], db.Settings(prior=str(prior_dir)), current_mu=3.0)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def local(text: str) -> str:
    """A recorded command or folder with the machine-local folders it names (absolute
    paths) shown as ``.../NAME``: the doc points to nothing outside the repository."""
    return re.sub(r"(?<![\w.])/(?:[\w.-]+/)+([\w.-]+)", r".../\1", text)


def block_name(block: str = "") -> str:
    """The generated block of a comparison's table: the main candidate's (``block`` empty) or
    a named experiment's (``comparison-NAME``), each written from its own JSON."""
    return f"comparison-{block}" if block else "comparison"


def render(report: dict) -> str:
    """The comparison as a markdown table (research/PRIOR-COMPARISON.md; research/test_prior_study.py
    checks the doc against the JSON it was written from)."""
    from audit_engine.audit.verdict import wilson_interval

    a, b = report["a"], report["b"]
    real = report["svc_confident_heldout"]
    n = report["n_samples"]

    def confident(r):
        lo, hi = wilson_interval(round(r["svc_confident_samples"] * n), n)
        return (
            f"{r['svc_confident_samples']:.3f} (95% CI {lo:.3f}-{hi:.3f}); "
            f"{r['svc_confident_samples'] / real:.3f} of real digits' {real:.3f}"
        )

    def classes(r):
        return (
            f"{sum(c > 0 for c in r['class_proportions'])} of 10; largest deviation from "
            f"1/10: {r['class_proportion_max_deviation']:.3f}"
        )

    def memo(r):
        m = r["memorization"]
        return (
            f"{m['samples_near_copies']:.1%} near-copies (held-out digits: "
            f"{m['heldout_near_copies']:.1%}); median distance to the nearest training "
            f"digit {m['samples_nearest_train_median']:.2f} (held-out digits: "
            f"{m['heldout_nearest_train_median']:.2f})"
        )

    rows = [
        ("prior", lambda r: f"`{local(r['prior'])}`"),
        (
            "parameters; weights",
            lambda r: f"{r['parameters'] / 1e6:.2f} M; {r['weights_mb']:.1f} MB",
        ),
        (f"confident samples (SVC probability > 0.9, {n} DDPM samples)", confident),
        ("classes among the samples", classes),
        (
            "Frechet distance to held-out digits (classifier features; lower is closer)",
            lambda r: f"{r['frechet_classifier_features']:.1f}",
        ),
        ("memorization", memo),
        (
            "first audit (9 budgets, default tries; median of 3, s)",
            lambda r: f"{r['first_audit_s_median']:.2f}",
        ),
    ]
    for mu in report["mus"] if report["n_heldout"] else []:
        rows += [
            (
                f"mu {mu:g}: held-out digits recognisable (partly)",
                lambda r, m=mu: (
                    f"{r['reconstruction'][str(m)]['recognisable']:.1%} "
                    f"({r['reconstruction'][str(m)]['partly']:.1%})"
                ),
            ),
            (
                f"mu {mu:g}: class revealed",
                lambda r, m=mu: f"{r['reconstruction'][str(m)]['attribute']:.1%}",
            ),
        ]
    lines = [
        f"`{local(report['command'])}` (SVC held-out accuracy {report['svc_heldout_accuracy']:.3f}; "
        f"{report['n_heldout']} held-out digits audited; {report['threads']} thread(s))",
        "",
        "| measure | a | b |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {fmt(a)} | {fmt(b)} |" for name, fmt in rows]
    if "paired" in report:
        lines += [
            "",
            f"Paired, digit by digit (the same digits, seeds {report['seeds']} and noise "
            "draws for both priors): successes of 8 tries per digit, mean, and b - a with "
            "its 95% interval.",
            "",
            "| mu | identification a / b | b - a | class a / b | b - a |",
            "|---|---|---|---|---|",
        ]
        for m, row in report["paired"].items():
            cells = []
            for key in ("id_successes", "attr_successes"):
                r = row[key]
                cells += [
                    f"{r['a']:.2f} / {r['b']:.2f}",
                    f"{r['diff']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]",
                ]
            lines.append(f"| {float(m):g} | " + " | ".join(cells) + " |")
    reasons = report.get("not_replaced_because", [])
    lines += [
        "",
        "**Decision: b replaces a.**"
        if not reasons
        else "**Decision: b does not replace a**: " + "; ".join(reasons) + ".",
    ]
    return "\n".join(lines)


def write_block(doc: Path, name: str, body: str) -> None:
    """Replace the doc's generated block ``name`` with ``body``."""
    fill_file(doc, {name: body}, every=False)


def diagnostic_main(description: str, out: Path, where, render, run, add_arguments) -> None:
    """The command line of a script that compares two priors (--a, the shipped one by
    default, and --b) and writes its JSON (--out) and, with --doc, its table between the
    doc's generated block named where(args); --render rewrites the table from an earlier
    run's JSON. add_arguments(parser) adds the script's own options; run(args) returns the
    report, to which the command that ran it is added first."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--a", type=Path, default=ROOT / "audit_engine" / "assets" / "prior-mnist32")
    ap.add_argument("--b", type=Path)
    add_arguments(ap)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only write --doc from this JSON of an earlier run",
    )
    args = ap.parse_args()
    if args.render:
        if args.doc is None:
            ap.error("--render needs --doc")
        write_block(args.doc, where(args), render(json.loads(args.render.read_text())))
        return
    if args.b is None:
        ap.error("--b is required")
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {"command": " ".join(["python"] + sys.argv), **run(args)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.doc:
        write_block(args.doc, where(args), render(report))


def add_arguments(ap) -> None:
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument(
        "--n-heldout",
        type=int,
        default=500,
        help="held-out digits audited at mu 2, 5, 10 (0: sample quality and speed only)",
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="audit seeds (each audits every held-out digit again with fresh draws)",
    )
    ap.add_argument("--calibration", choices=["svc", "platt-cv"], default="svc")
    ap.add_argument(
        "--block",
        default="",
        help="with --doc, write the generated block comparison-BLOCK instead of "
        "the main candidate's (an experiment kept beside it)",
    )


def compare(args) -> dict:
    """The report of one side-by-side run (the module docstring says what it measures)."""
    train = training_digits(args.a)
    heldout = np.load(args.a / "heldout.npz")
    held = (heldout["images"], heldout["labels"])  # all of them for sample quality; the
    # first n_heldout for the audits
    model = svc(*train, args.calibration)
    proba = svc_proba(model, held[0])
    report = {
        "calibration": args.calibration,
        "svc_heldout_accuracy": float((proba.argmax(1) == held[1]).mean()),
        "svc_confident_heldout": confident(proba),
        "n_samples": args.n_samples,
        "n_heldout": args.n_heldout,
        "mus": list(MUS),
        "seeds": args.seeds,
        "threads": torch.get_num_threads(),
    }
    for key, folder in (("a", args.a), ("b", args.b)):
        print(f"evaluating {folder}", flush=True)
        report[key] = evaluate(
            folder, args.n_samples, args.n_heldout, model, train, held, tuple(args.seeds)
        )
        print(
            json.dumps({k: v for k, v in report[key].items() if k != "per_image"}, indent=1),
            flush=True,
        )
    if args.n_heldout:
        report["paired"] = paired(report["a"], report["b"])
    report["not_replaced_because"] = decision(report)
    return report


def main() -> None:
    diagnostic_main(
        __doc__.splitlines()[0],
        ROOT / "research" / "data" / "prior-comparison.json",
        lambda args: block_name(args.block),
        render,
        compare,
        add_arguments,
    )


if __name__ == "__main__":
    main()
