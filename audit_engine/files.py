"""Writing results safely, and what a run records about the software it ran on."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "package_versions", "RECORDED_PACKAGES"]

RECORDED_PACKAGES = (
    "torch",
    "diffusers",
    "opacus",
    "lpips",
    "scikit-image",
    "numpy",
    "scipy",
    "plotly",
    "gradio",
)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary path)``, then rename it into place: no half-written file survives."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)


def package_versions(names=RECORDED_PACKAGES) -> dict[str, str]:
    """The installed version of each package ("not installed" when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
