"""Compute the unrelated-image baseline of a shipped prior and store it as baseline.json.

Mean MSE / PSNR / SSIM (and LPIPS where its backbone is available) over random pairs of
distinct images of the prior's held-out data: the similarity at which a reconstruction
says nothing about its target. The dashboard draws it as the dashed line and anchors its
verdicts on it (audit_engine/audit/verdict.py).

    python scripts/compute_baseline.py --prior audit_engine/assets/prior-mnist32
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from audit_engine.attacker.attacks import unrelated_baseline
from audit_engine.attacker.metrics import get_lpips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", type=Path, default=Path("audit_engine/assets/prior-mnist32"))
    ap.add_argument("--pairs", type=int, default=2000)
    args = ap.parse_args()
    held = np.load(args.prior / "heldout.npz")
    x = torch.from_numpy(held["images"]).float().div(255).unsqueeze(1)
    lp = get_lpips("alex")
    b = unrelated_baseline(x, n_pairs=args.pairs, lpips_metric=lp if lp.available else None)
    b["data"] = f"{len(x)} held-out images of {args.prior.name}"
    b["lpips_note"] = None if lp.available else lp.reason
    (args.prior / "baseline.json").write_text(json.dumps(b, indent=2) + "\n")
    print(json.dumps(b, indent=2))


if __name__ == "__main__":
    main()
