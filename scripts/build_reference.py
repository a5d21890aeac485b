"""Build the reference set shipped with a prior folder (audit_engine/assets/prior-mnist32/reference.npz):
the prior's own samples and the typicality profiles of its held-out images, computed in
float32 (audit_engine/audit/reference.py). Rerun after retraining the prior.

    python scripts/build_reference.py
"""

from __future__ import annotations

import os
import sys

os.environ["AUDIT_DTYPE"] = "float32"
os.environ.setdefault("AUDIT_DEVICE", "cpu")
from audit_engine.attacker.priors import load_prior
from audit_engine.audit.reference import write_shipped_reference

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "embedded"
    path = write_shipped_reference(
        load_prior(name),
        progress=lambda f, m: (
            print(f"[{f * 100:5.1f}%] {m}", flush=True)
            if m.startswith(("drawing", "scoring"))
            else None
        ),
    )
    print(f"wrote {path}")
