"""Fetch what the app needs from the internet, where the network allows (Docker build, Space):
the Hub priors (into the Hugging Face cache) and the LPIPS backbone weights (into torch's
cache). Never fails the build: what cannot be fetched is reported, and the app then says
plainly that it is unavailable (the embedded prior always works).

    python scripts/fetch_assets.py --priors google/ddpm-cifar10-32 google/ddpm-celebahq-256 --lpips alex vgg
"""

from __future__ import annotations

import argparse
import sys


def fetch_prior(repo_id: str) -> str:
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.bin"])
    return f"prior {repo_id}: {path}"


def fetch_lpips(net: str) -> str:
    import torch

    from audit_engine.attacker.metrics import LPIPS_NETS

    url = f"https://download.pytorch.org/models/{LPIPS_NETS[net]}"
    torch.hub.load_state_dict_from_url(url, progress=False, check_hash=False)
    return f"LPIPS backbone {net}: {LPIPS_NETS[net]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", nargs="*", default=[], help="Hub ids of priors to cache")
    ap.add_argument("--lpips", nargs="*", default=["alex"], choices=["alex", "vgg"])
    ap.add_argument("--strict", action="store_true", help="exit 1 if anything is missing")
    args = ap.parse_args(argv)
    missing = 0
    jobs = [(fetch_prior, p) for p in args.priors if p and p != "embedded"]
    jobs += [(fetch_lpips, n) for n in args.lpips]
    for fn, item in jobs:
        try:
            print("fetched", fn(item), flush=True)
        except Exception as exc:  # offline, rate-limited, gone: report and carry on
            missing += 1
            print(f"not fetched: {item} ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
    print(f"{len(jobs) - missing} of {len(jobs)} assets fetched")
    return 1 if (missing and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
