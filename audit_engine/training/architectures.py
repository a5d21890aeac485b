"""The UNet trained for each image size, and the noise schedule every prior here uses.

| size | block channels | blocks with attention | layers per block | parameters (1 channel) |
|---|---|---|---|---|
| 16, 32 | 32, 64, 64 | the lowest | 1 | about 1.1 M (the embedded prior's) |
| 64 | 32, 64, 128, 128 | the lowest | 1 | about 4.7 M |
| 128, 256 | 64, 64, 128, 128, 256 | the lowest | 1 | about 13 M |

Small on purpose: a prior must train on a laptop CPU in minutes at 32 pixels and audit fast;
an organisation with a GPU and many images fine-tunes a public prior instead
(``--init google/ddpm-celebahq-256``), which keeps that prior's own architecture. The
schedule is DDPM's linear one (1,000 steps, beta 1e-4 to 0.02; Ho et al. 2020), as the
embedded prior and Google's public priors use.
"""

from __future__ import annotations

__all__ = ["SIZES", "unet_config", "build_unet", "build_scheduler"]

SIZES = (16, 32, 64, 128, 256)

_TABLE = {
    16: ((32, 64, 64), 16),
    32: ((32, 64, 64), 16),
    64: ((32, 64, 128, 128), 16),
    128: ((64, 64, 128, 128, 256), 32),
    256: ((64, 64, 128, 128, 256), 32),
}


def unet_config(size: int, channels: int) -> dict:
    """The UNet2DModel arguments for images of ``size`` x ``size`` with ``channels``."""
    if size not in _TABLE:
        raise ValueError(f"--size must be one of {SIZES} (the architecture table), got {size}")
    if channels not in (1, 3):
        raise ValueError(f"--channels must be 1 or 3, got {channels}")
    blocks, groups = _TABLE[size]
    n = len(blocks)
    return dict(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=blocks,
        norm_num_groups=groups,
        down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
    )


def build_unet(size: int, channels: int, dropout: float = 0.0):
    from diffusers import UNet2DModel

    return UNet2DModel(dropout=dropout, **unet_config(size, channels))


def build_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        prediction_type="epsilon",
        clip_sample=True,
    )
