"""Write the training section of the embedded prior's model card
(audit_engine/assets/prior-mnist32/README.md) from its training.json: every stage's settings, times and
loss, and the commands that retrain it (the writer is audit_engine/training/card.py, the
one that writes every model card; this is its command). tests/test_docs.py checks the card.

    python scripts/model_card.py [--prior audit_engine/assets/prior-mnist32]
    python scripts/model_card.py --training research/data/prior-candidate-training.json \
        --card research/PRIOR-COMPARISON.md --candidate   # a candidate's stages, in another doc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audit_engine.training.card import (  # noqa: F401  (the writer; tests call it here)
    fill_training_section as fill,
)
from audit_engine.training.card import stages  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--prior", type=Path, default=ROOT / "audit_engine" / "assets" / "prior-mnist32"
    )
    ap.add_argument("--training", type=Path, default=None, help="default: PRIOR/training.json")
    ap.add_argument("--card", type=Path, default=None, help="default: PRIOR/README.md")
    ap.add_argument(
        "--candidate",
        action="store_true",
        help="a candidate's stages: end with comparing it, not with shipping it",
    )
    ap.add_argument(
        "--block",
        default="",
        help="write the generated block training-BLOCK (a second candidate in the same doc)",
    )
    args = ap.parse_args()
    card = args.card or args.prior / "README.md"
    info = json.loads((args.training or args.prior / "training.json").read_text())
    card.write_text(fill(card.read_text(), info, candidate=args.candidate, block=args.block))
    print(f"wrote the training section of {card}")


if __name__ == "__main__":
    main()
