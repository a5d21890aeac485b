"""Reproduce the source paper's findings (Schwethelm et al., TMLR 2025) on any prior.

    python -m audit_engine reproduce --prior embedded --n-images 200 --out runs/repro
    python -m audit_engine reproduce --prior P --images DIR [--ood DIR ...] --out runs/repro

config.py (what is asked), data.py (image sets), experiment.py (the release and the attacks),
stats.py (summary and intervals), figures.py (each figure described once, drawn by plotly
and matplotlib), tables.py (the doc's numbers, generated), write.py (the files).
"""

from ..attacker.attacks import noise_aware_labels
from .config import DEFAULT_MUS, ReproConfig
from .data import IN_DOMAIN, candidate_sets, folder_images, heldout_images, ood_sets
from .experiment import (
    Reproduction,
    clip_to,
    nearest_candidate_draws,
    nearest_norm_draws,
    run_reproduction,
)
from .stats import cluster_interval, read_csv, summarize
from .tables import tables
from .write import run_info, write_reproduction

__all__ = [
    "DEFAULT_MUS",
    "IN_DOMAIN",
    "ReproConfig",
    "Reproduction",
    "candidate_sets",
    "clip_to",
    "cluster_interval",
    "folder_images",
    "heldout_images",
    "nearest_candidate_draws",
    "nearest_norm_draws",
    "noise_aware_labels",
    "ood_sets",
    "read_csv",
    "run_info",
    "run_reproduction",
    "summarize",
    "tables",
    "write_reproduction",
]
