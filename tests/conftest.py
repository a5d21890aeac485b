"""Shared fixtures: a tiny seeded diffusion prior saved in diffusers layout (fast on a CPU)."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings

# reference sets sampled from test priors are cached here, never in the user's home
os.environ.setdefault("AUDIT_CACHE_DIR", tempfile.mkdtemp(prefix="audit-cache-"))
os.environ.setdefault("AUDIT_OFFLINE", "1")  # tests never reach for LPIPS weights online
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AUDIT_DEVICE", "cpu")
os.environ.setdefault("AUDIT_DTYPE", "float32")  # reference values; bfloat16 is tested explicitly

import pytest
import torch


def ring_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """n bright rings on black, (n, 1, size, size) in [0, 1]: centre, radii and brightness
    vary around digit_image's ring."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((4, n, 1, 1), generator=g)
    c = (size - 1) / 2 + 2 * u[0] - 1
    inner = size * (0.16 + 0.12 * u[1])
    width = size * (0.09 + 0.13 * u[2])
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    r = ((yy - c) ** 2 + (xx - c.transpose(1, 2)) ** 2).sqrt()
    return (((r > inner) & (r < inner + width)).float() * (0.8 + 0.2 * u[3])).unsqueeze(1)


def make_tiny_prior(
    folder, *, size: int = 16, channels: int = 1, layout: str = "pipeline", rings: int = 0
):
    """Save a tiny random UNet2DModel + linear DDPMScheduler; return the folder. ``rings``:
    ship that many ring images as the prior's held-out images of its kind (heldout.npz), as
    the embedded prior ships digits, so its domain check knows what it is meant for."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(4, 8),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    sched = DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear"
    )
    if layout == "pipeline":
        unet.save_pretrained(folder / "unet")
        sched.save_pretrained(folder / "scheduler")
    else:  # the flat layout of the original Google DDPM repositories
        unet.save_pretrained(folder)
        sched.save_pretrained(folder)
    if rings:
        import numpy as np

        x = ring_images(rings, size).expand(-1, channels, -1, -1)
        np.savez(folder / "heldout.npz", images=x.mul(255).round().to(torch.uint8).numpy())
    return folder


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory):
    return make_tiny_prior(tmp_path_factory.mktemp("tiny-prior"), rings=200)


@pytest.fixture(scope="session")
def tiny_prior(tiny_prior_dir):
    from audit_engine.attacker.priors import load_prior

    return load_prior(str(tiny_prior_dir), device="cpu")


@pytest.fixture()
def digit_image():
    """A 16x16 'digit-like' image in [0, 1]: a bright ring on black."""
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    r = ((yy - 7.5) ** 2 + (xx - 7.5) ** 2).sqrt()
    return ((r > 3.5) & (r < 6)).float().unsqueeze(0)


@pytest.fixture(scope="session")
def tiny_prior64(tiny_prior_dir):
    """The same tiny prior in float64: lets implementations be compared to 1e-9."""
    from audit_engine.attacker.priors import load_prior

    return load_prior(str(tiny_prior_dir), device="cpu", dtype=torch.float64)


@pytest.fixture(scope="session")
def app_server():
    """The dashboard on loopback (embedded prior), shared by the end-to-end tests."""
    import app

    _, url, _ = app.launch(prevent_thread_lock=True, server_port=None, quiet=True)
    yield url
    app.demo.close()


# ---------------------------------------------------------------- the real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]


def skip_loudly(why: str):
    msg = f"BROWSER TEST NOT RUN: {why}"
    warnings.warn(msg)
    print("\n" + "!" * 80 + f"\n{msg}\n" + "!" * 80)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_loudly("playwright is not installed (pip install -r requirements-dev.txt)")
    if CHROMIUM is None:
        skip_loudly("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()
