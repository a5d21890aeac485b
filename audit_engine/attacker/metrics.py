"""Similarity of a reconstruction to the original, all on [0, 1] images.

MSE, PSNR and SSIM come from scikit-image (``data_range=1``); LPIPS from the ``lpips``
package (Zhang et al. 2018), AlexNet by default and VGG as in the source paper.
LPIPS needs torchvision's ImageNet backbone weights, fetched from the internet on
first use; when they are not available the metric is reported as unavailable, with
the reason, and the other metrics are still computed.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ..caches import RETRY_S, Memo, reachable

__all__ = ["METRICS", "LPIPS_NETS", "LPIPSMetric", "get_lpips", "similarity", "mean_metrics"]

METRICS = ("mse", "psnr", "ssim", "lpips")
# torchvision's backbone checkpoints that lpips loads (file names fixed by torchvision)
LPIPS_NETS = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
LPIPS_MIN_SIDE = 32  # smaller images are upsampled (bilinear) before LPIPS


_WEIGHTS_HOST = ("download.pytorch.org", 443)


def _reachable(host: tuple[str, int], timeout: float = 3.0) -> bool:
    return reachable(*host, timeout=timeout)


def _backbone_path(net: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_NETS[net]


@dataclass
class LPIPSMetric:
    """LPIPS with a given backbone, or the reason it is unavailable (``model is None``)."""

    net: str
    model: torch.nn.Module | None
    reason: str | None = None
    random_backbone: bool = False

    @property
    def available(self) -> bool:
        return self.model is not None

    @property
    def label(self) -> str:
        return f"LPIPS ({self.net}{', random backbone: plumbing only' if self.random_backbone else ''})"

    @torch.inference_mode()
    def __call__(self, reference: torch.Tensor, images: torch.Tensor) -> list[float | None]:
        """LPIPS distance of each image (N, C, H, W) to the reference (C, H, W); 0 = same."""
        if self.model is None:
            return [None] * len(images)
        ref = reference.float().clamp(0, 1).expand_as(images)
        img = images.float().clamp(0, 1)
        if img.shape[1] == 1:  # the backbones take RGB: replicate gray
            ref, img = ref.repeat(1, 3, 1, 1), img.repeat(1, 3, 1, 1)
        side = min(img.shape[-2:])
        if side < LPIPS_MIN_SIDE:  # AlexNet's strides need >= 32 pixels: upsample tiny images
            size = [round(d * LPIPS_MIN_SIDE / side) for d in img.shape[-2:]]
            ref, img = (
                torch.nn.functional.interpolate(v, size=size, mode="bilinear", align_corners=False)
                for v in (ref, img)
            )
        d = self.model(ref, img, normalize=True)
        return [float(v) for v in d.flatten()]


# a metric without weights is built again after caches.RETRY_S seconds (the network may return)
_LPIPS: Memo[tuple[str, bool], LPIPSMetric] = Memo(
    failed=lambda m: not m.available, retry_after=RETRY_S
)


def get_lpips(net: str = "alex", *, random_backbone: bool = False) -> LPIPSMetric:
    """The LPIPS metric for ``net`` (cached), never raising when it cannot be built; when it
    could not be built, it is tried again after ``caches.RETRY_S`` seconds.

    ``random_backbone=True`` uses a randomly initialised backbone (``pnet_rand``): for
    testing the code path only, its scores mean nothing.
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS net must be one of {sorted(LPIPS_NETS)}, got net={net!r}")
    return _LPIPS.get((net, random_backbone), lambda: _build_lpips(net, random_backbone))


def _build_lpips(net: str, random_backbone: bool) -> LPIPSMetric:
    path = _backbone_path(net)
    offline = any(
        os.environ.get(v, "0").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "AUDIT_OFFLINE")
    )
    if not random_backbone and not path.is_file():
        if offline:
            return LPIPSMetric(
                net,
                None,
                f"LPIPS unavailable: the {net} backbone weights "
                f"({path.name}) are not in torch's hub cache and the app runs offline",
            )
        if not _reachable(_WEIGHTS_HOST):  # torch.hub's download has no timeout: never hang
            return LPIPSMetric(
                net,
                None,
                f"LPIPS unavailable: the {net} backbone weights "
                f"({path.name}) are not in torch's hub cache and {_WEIGHTS_HOST[0]} cannot be "
                "reached",
            )
    try:
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecation of pretrained=
            model = lpips.LPIPS(net=net, pnet_rand=random_backbone, verbose=False).eval()
        return LPIPSMetric(net, model, None, random_backbone)
    except Exception as exc:
        return LPIPSMetric(
            net,
            None,
            f"LPIPS unavailable: could not load the {net} backbone "
            f"weights ({type(exc).__name__}: {exc}); place {LPIPS_NETS[net]} "
            f"in {path.parent} to enable it",
        )


def _ssim(ref: np.ndarray, img: np.ndarray) -> float:
    h, w = ref.shape[:2]
    win = min(7, h if h % 2 else h - 1, w if w % 2 else w - 1)
    return float(
        structural_similarity(
            ref, img, data_range=1.0, win_size=win, channel_axis=2 if ref.ndim == 3 else None
        )
    )


def _hwc(x: torch.Tensor) -> np.ndarray:
    a = x.detach().double().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


def similarity(
    reference: torch.Tensor,
    images: torch.Tensor,
    *,
    lpips_metric: LPIPSMetric | None = None,
) -> list[dict[str, float | None]]:
    """MSE, PSNR (dB), SSIM and LPIPS of each image (N, C, H, W) against the reference.

    All images are clipped to [0, 1] first. PSNR of an exact copy is +inf. LPIPS is None
    when ``lpips_metric`` is None or unavailable.
    """
    ref = _hwc(reference)
    lp = lpips_metric(reference, images) if lpips_metric is not None else [None] * len(images)
    rows = []
    for img_t, lpips_value in zip(images, lp):
        img = _hwc(img_t)
        mse = float(mean_squared_error(ref, img))
        with np.errstate(divide="ignore"):
            psnr = (
                math.inf if mse == 0 else float(peak_signal_noise_ratio(ref, img, data_range=1.0))
            )
        rows.append({"mse": mse, "psnr": psnr, "ssim": _ssim(ref, img), "lpips": lpips_value})
    return rows


def mean_metrics(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """The mean of each metric over rows from ``similarity``, skipping None and non-finite
    values (unavailable LPIPS, the infinite PSNR of an exact copy); None when none is left."""
    out: dict[str, float | None] = {}
    for key in METRICS:
        vals = [r[key] for r in rows if r[key] is not None and math.isfinite(r[key])]
        out[key] = float(np.mean(vals)) if vals else None
    return out
