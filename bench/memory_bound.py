"""Resident memory of the server at its bounds: one visitor's state (a default audit's ladder
and EXACT_CACHE_SIZE exact budgets) measured, then MAX_SESSIONS of them held at once.

    python -m bench.memory_bound [--sessions 100] [--json docs/memory-bound.json --doc docs/DEPLOYMENT.md]

Each held state is a deep copy of the measured one (its tensors are real memory, not
shared), which is what a server at its session capacity holds.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import sys
from pathlib import Path

import torch

from bench.common import ROOT, machine, memory_mb

BLOCK = "memory-bound"


def tensor_bytes(obj, seen=None) -> int:
    """Bytes of the tensors reachable from ``obj`` (each storage counted once)."""
    seen = set() if seen is None else seen
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, torch.Tensor):
            key = o.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += o.untyped_storage().nbytes()
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.extend(vars(o).values())
        elif hasattr(o, "items") and callable(o.items):
            stack.extend(v for _, v in o.items())
    return total


def run(sessions: int) -> dict:
    from audit_engine.attacker.metrics import get_lpips
    from audit_engine.session import ladder as db
    from audit_engine.session.views import figures, ladder_image

    digit = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
    settings = db.Settings()
    get_lpips("alex")
    s = db.compute_ladder(str(digit), settings, current_mu=1.0)
    figures(s, "eps", 1.0), ladder_image(s)
    for k in range(db.EXACT_CACHE_SIZE):  # the most exact budgets one visitor keeps
        s, _ = db.compute_exact(s, 0.3 * 1.2**k)
    gc.collect()
    # the prior's reference images are one tensor shared by every visitor's results (the
    # reference set in memory): held once, never copied per visitor
    results = [s.ladder] + [r for _, r in s.exact.items()]
    shared = {
        id(r.reference_images): r.reference_images
        for r in results
        if r.reference_images is not None
    }
    start = memory_mb(os.getpid())[0]
    held = [copy.deepcopy(s, dict(shared)) for _ in range(sessions)]
    gc.collect()
    end = memory_mb(os.getpid())[0]
    return {
        "machine": machine(),
        "sessions": sessions,
        "exact": db.EXACT_CACHE_SIZE,
        "tensor_mb": round(
            tensor_bytes(
                s,
                {id(t) for t in shared.values()}
                | {t.untyped_storage().data_ptr() for t in shared.values()},
            )
            / 2**20,
            2,
        ),
        "rss_one_mb": round(start),
        "rss_bound_mb": round(end),
        "per_session_mb": round((end - start) / sessions, 2),
        "held": len(held),
    }


def render(r: dict) -> str:
    return (
        f"`python -m bench.memory_bound --sessions {r['sessions']}` ({r['machine']}): one "
        f"visitor's state (a default audit's ladder and {r['exact']} exact budgets) holds "
        f"{r['tensor_mb']:.2f} MB of tensors of its own (the prior's reference images are "
        f"shared by all) and adds {r['per_session_mb']:.2f} MB of "
        f"resident memory; the process with the embedded prior, LPIPS and one such state: "
        f"{r['rss_one_mb']} MB; with {r['sessions']} states (the default AUDIT_MAX_SESSIONS): "
        f"{r['rss_bound_mb']} MB."
    )


def main() -> None:
    os.environ.setdefault("AUDIT_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--doc", type=Path, default=None)
    a = ap.parse_args()
    r = run(a.sessions)
    text = render(r)
    print(text)
    if a.json:
        import json

        a.json.write_text(json.dumps(r, indent=1) + "\n")
    if a.doc:
        from audit_engine.docblocks import fill_file

        fill_file(a.doc, {BLOCK: text}, every=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
