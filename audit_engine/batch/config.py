"""A batch's settings (BatchConfig) and where its files go."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["ENGINES", "BatchConfig", "list_images", "image_dir", "is_complete"]

ENGINES = ("local", "ray")


@dataclass
class BatchConfig:
    mus: Sequence[float] | None = None
    epsilons: Sequence[float] | None = None
    delta: float = 1e-5
    prior: str | None = None
    trials: int | None = None
    seed: int = 0
    steps: int | None = None  # DDIM steps from t* (default: the engine's)
    lpips: str | None = None  # the batch skips LPIPS by default (it dominates CPU time)
    # CPU threads per audit, in both engines: float32 sums depend on the thread count, so
    # the same count gives the same numbers to the last digit locally and on Ray
    threads: int = 1
    # solve mode (--solve): each image's largest budget keeping `level`, then the data set's,
    # at which at most `max_fraction` of the images fail it (95% upper bound)
    solve: bool = False
    level: str = "not recognisable"
    max_fraction: float = 0.05
    # the release's clipping bound (None: the prior's default) and the evidence rule
    clip_norm: float | None = None
    tolerance: float = 0.10
    max_trials: int | None = None

    def audit_kwargs(self) -> dict:
        """run_audit's arguments besides the image and the prior (loaded once per worker)."""
        kw = dict(
            mus=self.mus,
            epsilons=self.epsilons,
            delta=self.delta,
            trials=self.trials,
            seed=self.seed,
            lpips=self.lpips,
            clip_norm=self.clip_norm,
            tolerance=self.tolerance,
            max_trials=self.max_trials,
        )
        if self.steps is not None:
            kw["steps"] = self.steps
        return kw

    def solve_kwargs(self) -> dict:
        """solve_budget's arguments besides the image and the prior."""
        kw = dict(
            level=self.level,
            delta=self.delta,
            trials=self.trials,
            seed=self.seed,
            clip_norm=self.clip_norm,
            tolerance=self.tolerance,
            max_trials=self.max_trials,
        )
        if self.steps is not None:
            kw["steps"] = self.steps
        return kw


def list_images(folder: Path) -> list[Path]:
    """Every visible file of the folder (not sub-folders), sorted by name: a file that is not
    an image is reported as an error, not silently skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def image_dir(out: Path, path: Path) -> Path:
    return Path(out) / "images" / path.name


def is_complete(out: Path, path: Path, cfg: BatchConfig | None = None) -> bool:
    last = "solve.json" if cfg is not None and cfg.solve else "verdicts.json"  # written last
    return (image_dir(out, path) / last).is_file()
