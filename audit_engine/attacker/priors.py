"""The attacker's prior: a registry of unconditional diffusion models and their loading.

A prior is a diffusers ``UNet2DModel`` plus the noise schedule of its own scheduler
config (never hard-coded). Sources:

- ``"embedded"`` (the default): the small MNIST prior this project trains and ships
  under ``assets/``; always available offline.
- a local folder in diffusers layout (``unet/`` + ``scheduler/``, or the flat layout
  of the original Google DDPM repositories with both configs at the root);
- a Hugging Face Hub id such as ``google/ddpm-cifar10-32``: read from the local Hub
  cache, or downloaded when the network allows. Offline, loading fails at once with
  an error that says what to do; it never hangs.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..caches import Memo, reachable

__all__ = [
    "ASSETS",
    "card_summary",
    "find_configs",
    "local_priors",
    "PRIORS_DIR",
    "EMBEDDED",
    "loaded_prior",
    "Prior",
    "PriorSpec",
    "PriorUnavailable",
    "REGISTRY",
    "configure_registry",
    "default_device",
    "default_dtype",
    "load_prior",
    "prior_status",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
EMBEDDED = "embedded"
_HUB_HOST = ("huggingface.co", 443)


class PriorUnavailable(RuntimeError):
    """A prior that cannot be loaded here; the message says why and what to do."""


@dataclass(frozen=True)
class PriorSpec:
    key: str
    title: str
    source: str  # local folder or Hub id
    domain: str
    resolution: int


REGISTRY: dict[str, PriorSpec] = {
    spec.key: spec
    for spec in [
        PriorSpec(
            EMBEDDED,
            "Embedded MNIST digits (32x32, trained by this project)",
            str(ASSETS / "prior-mnist32"),
            "handwritten digits",
            32,
        ),
        PriorSpec(
            "google/ddpm-cifar10-32",
            "CIFAR-10 (32x32, Ho et al. 2020)",
            "google/ddpm-cifar10-32",
            "small natural images",
            32,
        ),
        PriorSpec(
            "google/ddpm-celebahq-256",
            "CelebA-HQ faces (256x256)",
            "google/ddpm-celebahq-256",
            "faces",
            256,
        ),
        PriorSpec(
            "google/ddpm-ema-church-256",
            "LSUN churches (256x256)",
            "google/ddpm-ema-church-256",
            "churches",
            256,
        ),
        PriorSpec(
            "google/ddpm-ema-cat-256", "LSUN cats (256x256)", "google/ddpm-ema-cat-256", "cats", 256
        ),
        PriorSpec(
            "google/ddpm-ema-bedroom-256",
            "LSUN bedrooms (256x256)",
            "google/ddpm-ema-bedroom-256",
            "bedrooms",
            256,
        ),
    ]
}


def configure_registry(
    offered: str | None = None, directory: str | os.PathLike | None = None
) -> dict[str, PriorSpec]:
    """Restrict the registry to the priors a deployment offers (AUDIT_PRIORS), then add every
    prior folder under AUDIT_PRIORS_DIR (``local_priors``).

    ``offered``: registry keys, Hub ids or local folders separated by commas or spaces, in
    the order they are offered; entries not in the registry are added. The embedded prior always
    stays (first), so the app works offline whatever is configured.
    """
    offered = os.environ.get("AUDIT_PRIORS", "") if offered is None else offered
    keys = [k for k in re.split(r"[,\s]+", offered) if k]
    if keys:
        chosen = {EMBEDDED: REGISTRY[EMBEDDED]}
        for key in keys:
            chosen[key] = REGISTRY.get(key) or PriorSpec(
                key, key, key, "configured by AUDIT_PRIORS", 0
            )
        REGISTRY.clear()
        REGISTRY.update(chosen)
    for spec in local_priors(directory):
        REGISTRY.setdefault(spec.key, spec)
    return REGISTRY


PRIORS_DIR = "priors"  # AUDIT_PRIORS_DIR's default, relative to the working directory


def card_summary(folder: Path) -> str | None:
    """The ``summary:`` line of a prior folder's model card front matter (README.md), which
    ``privacy-audit train-prior`` writes; None without one."""
    card = Path(folder) / "README.md"
    try:
        text = card.read_text()
    except OSError:
        return None
    if not text.startswith("---\n"):
        return None
    for line in text.split("---\n")[1].splitlines():
        if line.startswith("summary:"):
            value = line.partition(":")[2].strip()
            try:
                return str(json.loads(value))
            except ValueError:
                return value
    return None


def local_priors(directory: str | os.PathLike | None = None) -> list[PriorSpec]:
    """Every prior folder directly under ``directory`` (default AUDIT_PRIORS_DIR, else
    priors/): a diffusers folder (unet/ and a scheduler config), such as
    ``privacy-audit train-prior`` writes, listed with its card's one-line summary."""
    root = Path(directory or os.environ.get("AUDIT_PRIORS_DIR") or PRIORS_DIR).expanduser()
    if not root.is_dir():
        return []
    specs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            unet_dir, _ = find_configs(folder)
            size = json.loads((unet_dir / "config.json").read_text()).get("sample_size", 0)
        except (PriorUnavailable, OSError, ValueError):
            continue
        size = int(size[0] if isinstance(size, (list, tuple)) else size or 0)
        summary = card_summary(folder)
        specs.append(
            PriorSpec(
                str(folder),
                f"{folder.name}: {summary or 'a local prior'}",
                str(folder),
                summary or "a local prior folder",
                size,
            )
        )
    return specs


def default_dtype(device: torch.device) -> torch.dtype:
    """The UNet's precision: float16 on CUDA; bfloat16 on CPUs that compute it natively
    (1.9x faster on the embedded prior at the same SSIM, docs/PERFORMANCE.md); float32
    elsewhere. AUDIT_DTYPE=float32|float16|bfloat16 overrides. The reverse process's own
    arithmetic stays float32 whatever the UNet's precision."""
    forced = os.environ.get("AUDIT_DTYPE", "").strip().lower()
    if forced:
        if forced not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"AUDIT_DTYPE must be float32, float16 or bfloat16, got {forced!r}")
        return getattr(torch, forced)
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and _cpu_has_fast_bfloat16():
        return torch.bfloat16
    return torch.float32


@functools.lru_cache(maxsize=1)
def _cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports)."""
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def default_device() -> torch.device:
    """CUDA if present, then Apple MPS, else the CPU (override with AUDIT_DEVICE)."""
    forced = os.environ.get("AUDIT_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Prior:
    """A loaded prior: the denoiser and its schedule."""

    name: str
    source: str
    unet: torch.nn.Module
    alphas_cumprod: torch.Tensor  # float64, CPU, from the scheduler config
    prediction_type: str
    scheduler_config: dict = field(repr=False)
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    folder: Path | None = None  # the resolved local folder (shipped extras live beside the UNet)
    content_size: int | None = None  # images were padded from this size (preprocess.json)

    def load_image(self, source) -> torch.Tensor:
        """Any image as this prior sees it: (C, H, W) in [0, 1] (images.to_prior_tensor)."""
        from ..images import to_prior_tensor

        return to_prior_tensor(
            source, size=self.sample_size, channels=self.channels, content_size=self.content_size
        )

    @property
    def sample_size(self) -> int:
        s = self.unet.config.sample_size
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    @property
    def channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.unet.parameters())

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The model's noise estimate eps_theta(x_t, t), whatever it was trained to predict."""
        out = self.unet(x_t.to(self.dtype), t).sample.to(x_t.dtype)
        if out.shape[1] != x_t.shape[1]:  # learned-variance models output 2C channels
            out = out[:, : x_t.shape[1]]
        if self.prediction_type == "epsilon":
            return out
        abar = self.alphas_cumprod.to(x_t.device, x_t.dtype)[t].view(-1, 1, 1, 1)
        if self.prediction_type == "sample":
            return (x_t - abar.sqrt() * out) / (1 - abar).sqrt()
        if self.prediction_type == "v_prediction":
            return abar.sqrt() * out + (1 - abar).sqrt() * x_t
        raise ValueError(f"unsupported prediction_type {self.prediction_type!r}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub answers a TCP connection (a failure is asked again after
    caches.RETRY_S seconds: an app started offline sees the network return)."""
    return reachable(*_HUB_HOST, timeout=timeout)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _hub_cached_folder(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def find_configs(folder: Path) -> tuple[Path, Path]:
    """(folder holding the UNet config + weights, scheduler config file)."""
    unet_dir = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
    if not (unet_dir / "config.json").is_file():
        raise PriorUnavailable(
            f"{folder} is not a diffusers model folder: no unet/config.json or config.json"
        )
    for sched in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json"):
        if sched.is_file():
            return unet_dir, sched
    raise PriorUnavailable(
        f"{folder} has no scheduler config (scheduler/scheduler_config.json "
        "or scheduler_config.json): the noise schedule must come from it"
    )


def prior_status(name: str) -> tuple[str, str]:
    """("ready" | "needs download" | "unavailable", explanation) without loading weights."""
    spec = REGISTRY.get(name)
    source = spec.source if spec else name
    path = Path(source).expanduser()
    if path.is_dir():
        try:
            find_configs(path)
        except PriorUnavailable as exc:
            return "unavailable", str(exc)
        return "ready", f"local folder {path}"
    if name == EMBEDDED:
        return "unavailable", f"the embedded prior is missing from {path}; reinstall the project"
    if not _looks_like_hub_id(source):
        return "unavailable", f"{source!r} is neither a local folder nor a Hub id (owner/name)"
    if _hub_cached_folder(source) is not None:
        return "ready", f"{source} in the local Hugging Face cache"
    if _offline():
        return "unavailable", f"{source} is not cached and HF_HUB_OFFLINE is set"
    if not _hub_reachable():
        return "unavailable", (
            f"{source} is not cached and the Hugging Face Hub cannot be "
            "reached from this machine (offline)"
        )
    return "needs download", f"{source} will be downloaded from the Hugging Face Hub on first use"


def _resolve_folder(name: str) -> tuple[str, Path]:
    spec = REGISTRY.get(name)
    source = spec.source if spec else name
    path = Path(source).expanduser()
    if path.is_dir():
        return source, path
    if name == EMBEDDED:
        raise PriorUnavailable(
            f"the embedded prior is missing from {path}; restore assets/ "
            "from the repository or reinstall the package"
        )
    if not _looks_like_hub_id(source):
        raise PriorUnavailable(
            f"prior {source!r} not found: give a local diffusers folder, a Hub "
            f"id (owner/name) or one of {', '.join(REGISTRY)}"
        )
    cached = _hub_cached_folder(source)
    if cached is not None:
        return source, cached
    advice = (
        f"download it where the network allows (`hf download {source}`, "
        "then copy the Hugging Face cache, or pass the downloaded folder as the prior), "
        f"or use the embedded prior ({EMBEDDED!r})"
    )
    if _offline():
        raise PriorUnavailable(
            f"{source} is not in the local cache and HF_HUB_OFFLINE is set: " + advice
        )
    if not _hub_reachable():
        raise PriorUnavailable(
            f"{source} is not in the local cache and the Hugging Face Hub "
            "cannot be reached from this machine: " + advice
        )
    from huggingface_hub import snapshot_download

    try:
        return source, Path(
            snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "*.bin"])
        )
    except Exception as exc:
        raise PriorUnavailable(
            f"downloading {source} failed ({type(exc).__name__}: {exc}): " + advice
        ) from None


def _content_size(folder: Path) -> int | None:
    """``preprocess.json``'s content_size: the prior's training images were this size, padded
    with black to the sample size (the embedded prior: 28, as MNIST)."""
    path = folder / "preprocess.json"
    if not path.is_file():
        return None
    return int(json.loads(path.read_text())["content_size"])


_PRIORS: Memo[tuple, Prior] = Memo()  # (name, device, dtype) -> loaded prior


def load_prior(
    name: str | os.PathLike | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Prior:
    """Load (once, then from memory) a prior by registry key, local folder or Hub id.
    ``device``/``dtype`` default to ``default_device()`` and ``default_dtype(device)``.
    Each prior loads under its own lock: a Hub download never delays a cached prior."""
    name = EMBEDDED if name is None else str(name)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype if dtype is not None else default_dtype(device)
    return _PRIORS.get((name, str(device), dtype), lambda: _load(name, device, dtype))


def loaded_prior(
    name: str | os.PathLike | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Prior | None:
    """The prior if it is already in memory (as ``load_prior`` would return it), else None:
    never loads, downloads or waits."""
    name = EMBEDDED if name is None else str(name)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype if dtype is not None else default_dtype(device)
    return _PRIORS.peek((name, str(device), dtype))


def _load(name: str, device: torch.device, dtype: torch.dtype) -> Prior:
    import diffusers

    source, folder = _resolve_folder(name)
    unet_dir, sched_file = find_configs(folder)
    sched_cfg = json.loads(sched_file.read_text())
    cls_name = sched_cfg.get("_class_name", "DDPMScheduler")
    sched_cls = getattr(diffusers, cls_name, None) or diffusers.DDPMScheduler
    try:
        scheduler = sched_cls.from_config(sched_cfg)
    except Exception:  # old configs (e.g. GaussianDDPMScheduler): same schedule keys
        scheduler = diffusers.DDPMScheduler.from_config(sched_cfg)
    unet_cfg = json.loads((unet_dir / "config.json").read_text())
    if unet_cfg.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise PriorUnavailable(
            f"{source}: only unconditional UNet2DModel priors are "
            f"supported, found {unet_cfg.get('_class_name')}"
        )
    unet = diffusers.UNet2DModel.from_pretrained(unet_dir, local_files_only=True, torch_dtype=dtype)
    unet = unet.to(device=device).eval().requires_grad_(False)
    return Prior(
        name=name,
        source=source,
        unet=unet,
        alphas_cumprod=scheduler.alphas_cumprod.detach().to(torch.float64).cpu(),
        prediction_type=scheduler.config.get("prediction_type", "epsilon"),
        scheduler_config=dict(scheduler.config),
        device=device,
        dtype=dtype,
        folder=Path(folder),
        content_size=_content_size(Path(folder)),
    )
