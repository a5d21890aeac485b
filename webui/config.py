"""The deployment's settings, read once from the environment (docs/DEPLOYMENT.md's table)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

try:  # Hugging Face ZeroGPU: GPU work runs inside functions decorated with spaces.GPU
    import spaces
except ImportError:
    spaces = None

from audit_engine.attacker.priors import EMBEDDED, REGISTRY, configure_registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "assets" / "examples").glob("*.png"))
MAX_UPLOAD = os.environ.get("AUDIT_MAX_UPLOAD", "10mb")
QUEUE_SIZE = int(os.environ.get("AUDIT_QUEUE_SIZE", "32"))
TIME_LIMIT = float(os.environ.get("AUDIT_TIME_LIMIT", "300"))  # seconds per request
MODEL_CONCURRENCY = 1  # model runs at a time, over all users and events (one group, "model")
ZERO_GPU = spaces is not None and bool(os.environ.get("SPACES_ZERO_GPU"))
configure_registry()  # AUDIT_PRIORS: the priors this deployment offers (embedded always)
DEFAULT_PRIOR = os.environ.get("AUDIT_DEFAULT_PRIOR", EMBEDDED)
if DEFAULT_PRIOR not in REGISTRY:
    raise SystemExit(
        f"AUDIT_DEFAULT_PRIOR={DEFAULT_PRIOR!r} is not among the offered priors "
        f"({', '.join(REGISTRY)})"
    )
TEMP_DIR = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio"))
REPORT_DIR = TEMP_DIR / "reports"
IMAGE_DIR = TEMP_DIR / "audit-images"  # result images, named by content (files.png)
DATASET_DIR = TEMP_DIR / "datasets"  # per session: links to its uploads, and the batch outputs
# per-visitor state: a visitor's ladder is dropped SESSION_TTL seconds after it was last
# changed, and at most MAX_SESSIONS visitors' states are kept (the least recently active
# dropped first); their files (reports, data-set runs, uploads) go with them
SESSION_TTL = float(os.environ.get("AUDIT_SESSION_TTL", "3600"))
MAX_SESSIONS = int(os.environ.get("AUDIT_MAX_SESSIONS", "100"))
MAX_DATASET = int(os.environ.get("AUDIT_MAX_DATASET", "50"))  # images per data-set audit
DATASET_EPS = (1.0, 3.0, 8.0, 100.0, 1000.0)  # the budgets of a data-set audit


def check_launch_environment() -> None:
    """Address and port are Gradio's (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT); the retired
    AUDIT_HOST / AUDIT_PORT stop the app with a message rather than being ignored."""
    retired = [v for v in ("AUDIT_HOST", "AUDIT_PORT") if v in os.environ]
    if retired:
        raise SystemExit(
            f"{' and '.join(retired)} no longer choose the address: set Gradio's "
            "own GRADIO_SERVER_NAME (e.g. 0.0.0.0) and GRADIO_SERVER_PORT instead"
        )
