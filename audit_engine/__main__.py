"""Command line: ``python -m audit_engine audit IMAGE --eps 10 100 1000 --out DIR``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m audit_engine",
                                 description="Visual privacy auditing with diffusion models.")
    sub = ap.add_subparsers(dest="command", required=True)

    a = sub.add_parser("audit", help="privatize an image at several budgets and reconstruct it")
    a.add_argument("image", type=Path, help="any image file (converted to the prior's size/channels)")
    budget = a.add_mutually_exclusive_group(required=True)
    budget.add_argument("--eps", type=float, nargs="+", help="(eps, delta)-DP budgets")
    budget.add_argument("--mu", type=float, nargs="+", help="mu-GDP budgets")
    a.add_argument("--delta", type=float, default=1e-5, help="delta for eps (default 1e-5)")
    a.add_argument("--prior", default=None,
                   help="registry key, local diffusers folder or Hub id (default: embedded)")
    a.add_argument("--seeds", type=_positive_int, default=1, help="number of seeds (default 1)")
    a.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    a.add_argument("--steps", type=_positive_int, default=None,
                   help="reverse steps from t* (default: 20 for DDIM, all for DDPM)")
    a.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    a.add_argument("--mechanism", choices=["analytic", "dpsgd"], default="analytic",
                   help="analytic Gaussian law (default) or a real Opacus DP-SGD step")
    a.add_argument("--lpips", choices=["alex", "vgg", "none"], default="alex")
    a.add_argument("--out", type=Path, required=True, help="output folder")

    sub.add_parser("priors", help="list the registered priors and whether they can be used here")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .priors import REGISTRY, PriorUnavailable, prior_status

    if args.command == "priors":
        for key, spec in REGISTRY.items():
            state, why = prior_status(key)
            print(f"{key:30s} {state:15s} {spec.title}: {why}")
        return 0

    from .audit import run_audit
    from .images import ImageError
    from .report import format_table, write_outputs

    steps = args.steps if args.steps is not None else (20 if args.sampler == "ddim" else None)

    def progress(frac: float, msg: str) -> None:
        print(f"\r[{frac * 100:5.1f}%] {msg:40s}", end="", file=sys.stderr, flush=True)

    try:
        result = run_audit(
            args.image, mus=args.mu, epsilons=args.eps, delta=args.delta, prior=args.prior,
            seeds=args.seeds, seed=args.seed, sampler=args.sampler, steps=steps,
            mechanism=args.mechanism, lpips=None if args.lpips == "none" else args.lpips,
            progress=progress,
        )
    except (ValueError, ImageError, PriorUnavailable) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    paths = write_outputs(result, args.out)
    print(f"prior: {result.prior_name} ({result.prior_source}); sampler {result.sampler}, "
          f"steps {result.steps or 'all'}; mechanism {result.mechanism}; {result.lpips}")
    print(format_table(result))
    print(f"wrote {paths['grid']}, {paths['json']}, {paths['csv']} in {result.elapsed_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
