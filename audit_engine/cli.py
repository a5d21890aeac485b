"""Command line: ``privacy-audit COMMAND`` or ``python -m audit_engine COMMAND``.

python -m audit_engine audit IMAGE --eps 10 100 1000 --out DIR
python -m audit_engine batch DIR --eps 1 8 100 --out OUT [--engine local|ray]
python -m audit_engine solve IMAGE [--level "not recognisable"|"no attribute"] --out DIR
python -m audit_engine batch DIR --solve [--max-fraction 0.05] --out OUT
python -m audit_engine reproduce --prior embedded --n-images 200 --out DIR
python -m audit_engine prepare [PRIOR ...]
python -m audit_engine priors
python -m audit_engine train-prior DIR --out PRIOR [--size 32] [--init PRIOR] [--resume]
                                   [--attribute NAME] [--labels auto|none|subfolders|CSV]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _release_args(p: argparse.ArgumentParser) -> None:
    """The release's clipping bound and the evidence rule's settings (audit, solve, batch)."""
    p.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        help="the clipping bound C of the release clip_C(x) + (C/mu) xi, in the image's "
        "units (an image's L2 norm in [0, 1] pixels at the prior's resolution): "
        "your training run's clipping bound (default: the median norm of the "
        "prior's reference images)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.10,
        help="a protection claim needs the success rate's 95%% upper bound within "
        "chance + this (default 0.10)",
    )
    p.add_argument(
        "--max-trials",
        type=_positive_int,
        default=None,
        help="cap of the sequential rule's tries per budget (default 8 x --trials)",
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=(
            "privacy-audit"
            if Path(sys.argv[0]).name == "privacy-audit"
            else "python -m audit_engine"
        ),
        description="Visual privacy auditing with diffusion models.",
    )
    sub = ap.add_subparsers(dest="command", required=True)

    a = sub.add_parser("audit", help="privatize an image at several budgets and reconstruct it")
    a.add_argument(
        "image", type=Path, help="any image file (converted to the prior's size/channels)"
    )
    budget = a.add_mutually_exclusive_group(required=True)
    budget.add_argument("--eps", type=float, nargs="+", help="(eps, delta)-DP budgets")
    budget.add_argument("--mu", type=float, nargs="+", help="mu-GDP budgets")
    a.add_argument("--delta", type=float, default=1e-5, help="delta for eps (default 1e-5)")
    a.add_argument(
        "--prior",
        default=None,
        help="registry key, local diffusers folder or Hub id (default: embedded)",
    )
    a.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        help="trials per budget: fresh privatization draws (and DDPM noise) "
        "(default 8 for priors up to 64 pixels, 4 above)",
    )
    a.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed of the noise streams (keyed with the image; default 0)",
    )
    a.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="folder of images of the prior's kind for look-alikes, baseline and "
        "domain check (default: shipped held-out images, or samples of the prior)",
    )
    a.add_argument(
        "--save-samples",
        action="store_true",
        help="also write samples.npz: every release exactly as the attacker receives "
        "it (pixel scale, unclipped), the clipping bound, the look-alikes of each "
        "try and the reconstructions, so anyone can run their own attack",
    )
    _release_args(a)
    a.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="reverse steps from t* (default: 10 for DDIM, all for DDPM)",
    )
    a.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    a.add_argument(
        "--mechanism",
        choices=["analytic", "dpsgd"],
        default="analytic",
        help="analytic Gaussian law (default) or a real Opacus DP-SGD step",
    )
    a.add_argument("--lpips", choices=["alex", "vgg", "none"], default="alex")
    a.add_argument("--out", type=Path, required=True, help="output folder")

    b = sub.add_parser(
        "batch",
        help="audit every image of a folder (resumable; locally or on "
        "Ray) and summarise the data set",
    )
    b.add_argument(
        "folder",
        type=Path,
        help="folder of images (files that are not images are listed in errors.csv)",
    )
    bb = b.add_mutually_exclusive_group(required=True)
    bb.add_argument("--eps", type=float, nargs="+", help="(eps, delta)-DP budgets")
    bb.add_argument("--mu", type=float, nargs="+", help="mu-GDP budgets")
    bb.add_argument(
        "--solve",
        action="store_true",
        help="instead of fixed budgets: each image's largest safe budget (as the "
        "solve command), then the data set's: the largest at which at most "
        "--max-fraction of the images fail the level (95%% upper bound)",
    )
    b.add_argument(
        "--level",
        choices=["not recognisable", "no attribute"],
        default="not recognisable",
        help="with --solve: the level to keep",
    )
    b.add_argument(
        "--max-fraction",
        type=float,
        default=0.05,
        help="with --solve: the largest fraction of images allowed to fail the "
        "level, held to its 95%% upper confidence bound (default 0.05)",
    )
    b.add_argument("--delta", type=float, default=1e-5, help="delta for eps (default 1e-5)")
    b.add_argument("--prior", default=None, help="registry key, local folder or Hub id")
    b.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        help="tries per budget (default 8 up to 64 pixels, 4 above)",
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--steps", type=_positive_int, default=None, help="DDIM steps from t* (default 10)"
    )
    b.add_argument(
        "--lpips",
        choices=["alex", "vgg", "none"],
        default="none",
        help="LPIPS in the per-image metrics (default none: it dominates CPU time)",
    )
    _release_args(b)
    b.add_argument("--engine", choices=["local", "ray"], default="local")
    b.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="CPU threads per audit, in both engines (default 1: the same count "
        "gives the same numbers locally and on Ray)",
    )
    b.add_argument("--workers", type=_positive_int, default=2, help="Ray actors (default 2)")
    b.add_argument(
        "--address", default=None, help="an existing Ray cluster (default: start a local one)"
    )
    b.add_argument("--out", type=Path, required=True, help="output folder (rerun to resume)")

    r = sub.add_parser(
        "reproduce",
        help="reproduce the source paper's findings on images of the "
        "prior's domain (figures A, B, C, attribute disclosure)",
    )
    r.add_argument(
        "--prior", default=None, help="registry key, Hub id or local folder (default: embedded)"
    )
    r.add_argument(
        "--images",
        type=Path,
        default=None,
        help="folder of target images of the prior's domain that it was not trained "
        "on (default: the held-out images shipped with the prior)",
    )
    r.add_argument(
        "--ood",
        type=Path,
        action="append",
        default=None,
        help="folder of out-of-domain images for Figure B (repeatable; default: "
        "faces and natural patches that ship with scikit-image)",
    )
    r.add_argument(
        "--n-images", type=_positive_int, default=200, help="target images at most (default 200)"
    )
    r.add_argument(
        "--mu",
        type=float,
        nargs="+",
        default=None,
        help="budgets (default 0.5 1 2 5 10 20 50 100 200)",
    )
    r.add_argument(
        "--n-candidates",
        type=_positive_int,
        default=None,
        help="candidate set size n of the prior-aware attack; kappa = 1/n "
        "(default: 10, or the number of target images if fewer)",
    )
    r.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        help="public clipping norm C of the release clip_C(x) + (C/mu) xi (default: "
        "the largest image norm of each set, so nothing is clipped)",
    )
    r.add_argument(
        "--mechanism",
        choices=["analytic", "dpsgd"],
        default="analytic",
        help="analytic Gaussian law (default) or a real Opacus DP-SGD step for the "
        "diffusion and noisy attacks",
    )
    r.add_argument(
        "--doc",
        type=Path,
        default=None,
        help="a Markdown file whose generated blocks are refreshed from this run "
        "(docs/REPRODUCTION.md)",
    )
    r.add_argument(
        "--n-draws",
        type=_positive_int,
        default=64,
        help="privatization draws per image for the candidate attack (default 64)",
    )
    r.add_argument(
        "--n-ood",
        type=int,
        default=100,
        help="images per out-of-domain set for Figure B, 0 to skip (default 100)",
    )
    r.add_argument(
        "--steps", type=_positive_int, default=10, help="DDIM steps from t* (default 10)"
    )
    r.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="the UNet's precision (default float32: the committed tables reproduce "
        "on any x86 CPU)",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--lpips", choices=["alex", "vgg", "none"], default="alex")
    r.add_argument("--out", type=Path, required=True, help="output folder")

    v = sub.add_parser(
        "solve",
        help="the largest budget at which an image stays unrecognisable "
        "(or keeps its attribute) against the prior",
    )
    v.add_argument("image", type=Path)
    v.add_argument("--prior", default=None, help="registry key, local folder or Hub id")
    v.add_argument("--delta", type=float, default=1e-5, help="delta for eps (default 1e-5)")
    v.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        help="tries per budget (default 8 up to 64 pixels, 4 above)",
    )
    v.add_argument(
        "--level", choices=["not recognisable", "no attribute"], default="not recognisable"
    )
    v.add_argument("--seed", type=int, default=0)
    v.add_argument(
        "--steps", type=_positive_int, default=None, help="DDIM steps from t* (default 10)"
    )
    v.add_argument(
        "--attack",
        choices=["both", "gallery", "prior"],
        default="both",
        help="hold the level against both attackers (default), or only the one who "
        "holds the image among 10 candidates (gallery), or only the one who "
        "reconstructs it (prior)",
    )
    _release_args(v)
    v.add_argument("--out", type=Path, required=True, help="output folder (solve.json, grid.csv)")

    pp = sub.add_parser(
        "prepare",
        help="prepare priors ahead of time: weights, reference set, "
        "domain calibration, baseline, cost per evaluation",
    )
    pp.add_argument(
        "priors",
        nargs="*",
        default=["embedded"],
        help="registry keys, local folders or Hub ids (default: embedded)",
    )
    pp.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="folder of images of the prior's kind to use as its reference set",
    )

    sub.add_parser(
        "priors",
        help="list the registered priors (and those under AUDIT_PRIORS_DIR) "
        "and whether they can be used here",
    )

    t = sub.add_parser(
        "train-prior",
        help="train or fine-tune a prior on a folder of images, "
        "ready to audit with (reference set, fitness report, model card)",
    )
    t.add_argument(
        "folder",
        type=Path,
        help="images of your kind (read recursively; files that "
        "are not images are listed in OUT/errors.csv)",
    )
    t.add_argument("--out", type=Path, required=True, help="the prior folder to write")
    t.add_argument(
        "--size",
        type=int,
        default=32,
        help="image size (16, 32, 64, 128 or 256; default 32; with --init, the init prior's)",
    )
    t.add_argument(
        "--channels",
        type=int,
        choices=[1, 3],
        default=None,
        help="1 (grayscale) or 3 (colour); default: from the images",
    )
    t.add_argument(
        "--init",
        default=None,
        help="fine-tune this prior (embedded, a local folder "
        "or a Hub id) at its own resolution instead of training from scratch",
    )
    length = t.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="optimizer steps (default 1000: about 15 minutes at 32 pixels on a 2-core CPU)",
    )
    length.add_argument("--epochs", type=float, default=None, help="passes over the images")
    t.add_argument("--batch-size", type=_positive_int, default=64)
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default 5e-4 from scratch, 1e-4 when fine-tuning)",
    )
    t.add_argument("--ema-decay", type=float, default=0.999)
    t.add_argument(
        "--holdout",
        type=float,
        default=0.1,
        help="fraction of the images held out (chosen by content hash; never trained "
        "on; they make the reference set), default 0.1",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=_positive_int, default=200)
    t.add_argument(
        "--mixed-precision",
        choices=["auto", "no", "fp16", "bf16"],
        default="auto",
        help="auto: bf16 or fp16 on a GPU, none on a CPU (accelerate's setting)",
    )
    t.add_argument(
        "--resume", action="store_true", help="continue a run that stopped, from OUT/checkpoint"
    )
    t.add_argument(
        "--attribute",
        default=None,
        metavar="NAME",
        help="what the folder's labels are ('diagnosis', 'digit class'): a "
        "classifier of it is trained beside the prior and audited; default "
        "'class' when labels are found, none otherwise",
    )
    t.add_argument(
        "--labels",
        default="auto",
        metavar="WHERE",
        help="where the labels are: auto (DIR/labels.csv, else class subfolders "
        "DIR/LABEL/IMAGE), subfolders, none, or a CSV file of file,label rows",
    )
    t.add_argument(
        "--attribute-steps",
        type=_positive_int,
        default=None,
        help="the attribute classifier's training steps (default: 20 epochs, 400 to 3,000 steps)",
    )
    return ap


_last_stage = [""]


def _progress(frac: float, msg: str) -> None:
    """A live line on a terminal; one line per stage when stderr is a file or pipe."""
    if sys.stderr.isatty():
        print(f"\r[{frac * 100:5.1f}%] {msg:50s}", end="", file=sys.stderr, flush=True)
        return
    stage = msg.split(", step")[0].split(" step ")[0]
    if stage != _last_stage[0]:
        _last_stage[0] = stage
        print(f"[{frac * 100:5.1f}%] {stage}", file=sys.stderr, flush=True)


def _prepare(args) -> int:
    from .attacker.priors import PriorUnavailable
    from .audit.prepare import prepare
    from .audit.reference import ReferenceUnavailable

    failed = 0
    for name in args.priors:
        print(f"{name}:", file=sys.stderr)
        try:
            p = prepare(name, reference=args.reference, progress=_progress)
        except (PriorUnavailable, ReferenceUnavailable, ValueError, OSError) as exc:
            print(f"\nerror: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(file=sys.stderr)
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in p.seconds.items())
        print(
            f"{p.prior}: ready on {p.device} ({p.dtype}); reference: {p.reference}; "
            f"{p.per_eval_s * 1000:.1f} ms per UNet evaluation; {phases}"
        )
    return 2 if failed else 0


def _reproduce(args) -> int:
    from .attacker.priors import PriorUnavailable
    from .reproduce import (
        DEFAULT_MUS,
        IN_DOMAIN,
        ReproConfig,
        run_reproduction,
        summarize,
        write_reproduction,
    )

    cfg = ReproConfig(
        prior=args.prior,
        images=str(args.images) if args.images else None,
        ood=tuple(str(p) for p in args.ood or ()),
        n_images=args.n_images,
        mus=tuple(args.mu) if args.mu else DEFAULT_MUS,
        n_candidates=args.n_candidates,
        n_draws=args.n_draws,
        n_ood=args.n_ood,
        steps=args.steps,
        seed=args.seed,
        clip_norm=args.clip_norm,
        mechanism=args.mechanism,
        dtype=args.dtype,
        lpips=None if args.lpips == "none" else args.lpips,
    )
    try:
        rep = run_reproduction(cfg, progress=_progress)
        print(file=sys.stderr)
        paths = write_reproduction(rep, args.out, doc=args.doc)
    except (ValueError, PriorUnavailable, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    nan = float("nan")
    print(
        f"{'mu':>6} {'SSIM diff':>9} {'noisy':>6} {'cand':>6} | {'cand':>6} {'norm':>6} "
        f"{'diff id':>7} {'bound':>6} | {'label diff':>10} {'aware':>6}"
    )
    for s in summarize(rep):
        if s["set"] != IN_DOMAIN:
            continue
        print(
            f"{s['mu']:6g} {s['recon_ssim']:9.3f} {s['noisy_ssim']:6.3f} "
            f"{s['candidate_ssim']:6.3f} | {s['candidate_success']:6.3f} "
            f"{s['norm_attack_success']:6.3f} {s['recon_identification_success']:7.3f} "
            f"{s['rero_bound_candidate']:6.3f} | {s.get('attr_recon', nan):10.3f} "
            f"{s.get('attr_noise_aware', nan):6.3f}"
        )
    print(f"LPIPS: {rep.lpips_note}")
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {rep.elapsed_s:.0f} s")
    return 0


def _bar(frac: float, msg: str) -> None:
    """A progress bar with the time left (one line per image when stderr is not a terminal)."""
    width = 30
    fill = int(width * frac)
    line = f"[{'#' * fill}{'.' * (width - fill)}] {msg}"
    if sys.stderr.isatty():
        print(f"\r{line[:120]:120s}", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def _batch(args) -> int:
    from .attacker.priors import PriorUnavailable
    from .batch.config import BatchConfig
    from .batch.run import run_batch

    cfg = BatchConfig(
        mus=args.mu,
        epsilons=args.eps,
        delta=args.delta,
        prior=args.prior,
        trials=args.trials,
        seed=args.seed,
        steps=args.steps,
        lpips=None if args.lpips == "none" else args.lpips,
        threads=args.threads,
        solve=args.solve,
        level=args.level,
        max_fraction=args.max_fraction,
        clip_norm=args.clip_norm,
        tolerance=args.tolerance,
        max_trials=args.max_trials,
    )
    try:
        r = run_batch(
            args.folder,
            args.out,
            cfg,
            engine=args.engine,
            workers=args.workers,
            address=args.address,
            progress=_bar,
        )
    except (ValueError, PriorUnavailable, RuntimeError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: complete images are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(file=sys.stderr)
    print(
        f"{r['files']} files: {r['audited']} audited now, {r['skipped_complete']} already "
        f"complete, {r['errors']} unreadable (errors.csv); {r['elapsed_s']:.1f} s"
    )
    if args.solve:
        import json

        print(json.loads((args.out / "solve.json").read_text())["sentence"])
        print(
            f"wrote {args.out / 'solve.json'}, {args.out / 'budgets.csv'}, "
            f"{args.out / 'summary.csv'}, {args.out / 'report.html'}"
        )
        return 0
    print(f"wrote {args.out / 'summary.csv'}, {args.out / 'report.html'}")
    return 0


def _solve(args) -> int:
    from .attacker.priors import PriorUnavailable, load_prior
    from .attacker.reconstruct import DEFAULT_DDIM_STEPS
    from .audit.run import default_trials
    from .audit.solve import NotSolvable, refusal, solve_budget, write_solve
    from .images import ImageError

    if not args.image.is_file():
        print(f"error: no such image file: {args.image}", file=sys.stderr)
        return 2
    try:
        prior = load_prior(args.prior)
        result = solve_budget(
            args.image,
            prior=prior,
            level=args.level,
            delta=args.delta,
            trials=args.trials,
            seed=args.seed,
            attack=args.attack,
            max_trials=args.max_trials,
            clip_norm=args.clip_norm,
            tolerance=args.tolerance,
            steps=args.steps or DEFAULT_DDIM_STEPS,
            progress=_progress,
        )
    except NotSolvable as exc:
        print(f"\nrefused: {exc}", file=sys.stderr)
        write_solve(
            args.out,
            refused=refusal(
                prior.name, args.level, args.delta, args.trials or default_trials(prior), exc
            ),
        )
        return 3
    except (ValueError, ImageError, PriorUnavailable, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    paths = write_solve(args.out, result)
    print(result.sentence())
    most = max(g["trials"] for g in result.grid)
    print(
        f"bracket: mu {result.bracket}; {result.evaluations} budgets audited, {result.trials} "
        f"to {most} tries each (the sequential rule), {result.elapsed_s:.1f} s"
    )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _train_prior(args) -> int:
    import shlex

    from .attacker.priors import PriorUnavailable
    from .training.train import TrainConfig, train_prior

    command = "privacy-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cfg = TrainConfig(
        size=args.size,
        channels=args.channels,
        init=args.init,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=args.ema_decay,
        holdout=args.holdout,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        mixed_precision=args.mixed_precision,
        attribute=args.attribute,
        labels=args.labels,
        attribute_steps=args.attribute_steps,
        extra={"command": command},
    )
    try:
        info = train_prior(args.folder, args.out, cfg, resume=args.resume, progress=_bar)
    except (ValueError, PriorUnavailable, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if not info:
        return 0  # not the main process of a distributed run
    d, f = info["data"], info["fitness"]
    print(
        f"\n{d['train']} images trained on, {d['heldout']} held out, {d['unreadable']} "
        f"unreadable (errors.csv); {info['time']['training_s'] / 60:.1f} min, "
        f"{info['time']['images_per_s']:.1f} images/s on {info['hardware']['device']}"
    )
    print(
        "held-out images inside its domain: "
        + ("n/a" if f["heldout_in_domain"] is None else f"{f['heldout_in_domain']:.0%}")
        + f"; flat images outside: {f['flat_flagged']:.0%}; photographs outside: "
        f"{f['photos_flagged']:.0%}; samples that are near-copies of a training image: "
        + ("n/a" if f["near_copies"] is None else f"{f['near_copies']:.0%}")
    )
    print(f["sentence"])
    a = info.get("attribute") or {}
    if a.get("trained"):
        h = a["heldout"]
        print(
            f"attribute '{a['attribute']}' ({len(a['labels'])} labels from "
            f"{a['labels_from']}): "
            + (
                f"held-out accuracy {h['accuracy']:.1%} on "
                f"{h['images']} images, calibration error {h['calibration_error']:.3f}, "
                f"{h['confident_share']:.0%} read confidently"
                if h["images"]
                else "no labelled held-out image to measure it on"
            )
        )
    elif a:
        print(f"no attribute to audit: {a['why']}")
    print(f"wrote {args.out} (model card: {args.out / 'README.md'}); audit with --prior {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .attacker.priors import REGISTRY, PriorUnavailable, prior_status

    if args.command == "priors":
        from .attacker.priors import local_priors

        for spec in local_priors():
            REGISTRY.setdefault(spec.key, spec)
        for key, spec in REGISTRY.items():
            state, why = prior_status(key)
            print(f"{key:30s} {state:15s} {spec.title}: {why}")
        return 0
    if args.command == "prepare":
        return _prepare(args)
    if args.command == "reproduce":
        return _reproduce(args)
    if args.command == "batch":
        return _batch(args)
    if args.command == "solve":
        return _solve(args)
    if args.command == "train-prior":
        return _train_prior(args)

    from .attacker.priors import load_prior
    from .attacker.reconstruct import DEFAULT_DDIM_STEPS
    from .audit.reference import baseline_for
    from .audit.run import run_audit
    from .images import ImageError
    from .outputs.report import format_table, write_outputs, write_report

    if not args.image.is_file():
        print(f"error: no such image file: {args.image}", file=sys.stderr)
        return 2
    steps = (
        args.steps
        if args.steps is not None
        else (DEFAULT_DDIM_STEPS if args.sampler == "ddim" else None)
    )

    try:
        result = run_audit(
            args.image,
            mus=args.mu,
            epsilons=args.eps,
            delta=args.delta,
            prior=args.prior,
            trials=args.trials,
            seed=args.seed,
            sampler=args.sampler,
            steps=steps,
            reference=args.reference,
            clip_norm=args.clip_norm,
            tolerance=args.tolerance,
            max_trials=args.max_trials,
            mechanism=args.mechanism,
            lpips=None if args.lpips == "none" else args.lpips,
            progress=_progress,
        )
    except (ValueError, ImageError, PriorUnavailable, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    paths = write_outputs(result, args.out, save_samples=args.save_samples)
    paths["report"] = write_report(
        result,
        args.out,
        mode="mu" if args.mu else "eps",
        baseline=baseline_for(load_prior(args.prior)),
    )
    print(
        f"prior: {result.prior_name} ({result.prior_source}); sampler {result.sampler}, "
        f"steps {result.steps or 'all'}; mechanism {result.mechanism}; {result.trials} trials "
        f"per budget; {result.lpips_note}"
    )
    print(f"reference: {result.reference}")
    print(
        f"release: clip_C(x) + (C / mu) xi with C = {result.clip_norm:.4g} "
        f"({result.clip_source}); mu-GDP for adding or removing the image"
    )
    if result.attribute is not None:
        a = result.attribute
        print(
            f"attribute: {a['name']}; the classifier reads your image as: {a['original']} "
            f"(confidence {a['confidence']:.2f}); column attr: tries naming it (* revealed, "
            "- not revealed, ? undetermined)"
        )
    if result.attribute_note():
        print(result.attribute_note())
    if result.domain is not None and not result.domain.in_domain:
        print("WARNING: " + result.domain.warning())
    print(format_table(result))
    if result.no_verdict_reason() is None:  # what eps means for this image, per budget
        for v in result.verdicts:
            print(v.budgets_sentence())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {result.elapsed_s:.1f} s")
    return 0
