"""Shared helpers for the benchmarks: timing, held-out digits, random-weight UNets with the
architectures of the public priors. Benchmarks print ratios measured side by side in one
run; absolute times vary between machines."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("AUDIT_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent

import torch

from audit_engine.attacker.priors import Prior

# UNet2DModel configurations of the public priors (from their config.json on the Hub).
_GOOGLE_COMMON = dict(
    act_fn="silu",
    center_input_sample=False,
    downsample_padding=0,
    flip_sin_to_cos=False,
    freq_shift=1,
    in_channels=3,
    out_channels=3,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-6,
    norm_num_groups=32,
    time_embedding_type="positional",
)
ARCHITECTURES = {
    "google/ddpm-cifar10-32": dict(
        _GOOGLE_COMMON,
        sample_size=32,
        block_out_channels=(128, 256, 256, 256),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    ),
    "google/ddpm-celebahq-256": dict(
        _GOOGLE_COMMON,
        sample_size=256,
        block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    ),
}


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"python {platform.python_version()}"
    )


def random_prior(arch: str, *, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Prior:
    """A prior with the architecture of a public one and random weights (timing only)."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(**ARCHITECTURES[arch]).to(device=device).eval()
    if dtype != torch.float32:
        unet = unet.to(dtype=dtype)
    unet.requires_grad_(False)
    sched = DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear"
    )
    return Prior(
        name=f"{arch} (random weights)",
        source=arch,
        unet=unet,
        alphas_cumprod=sched.alphas_cumprod.double(),
        prediction_type="epsilon",
        scheduler_config=dict(sched.config),
        device=torch.device(device),
        dtype=dtype,
    )


def ladder_inputs(prior: Prior, x: torch.Tensor, xi: torch.Tensor):
    """(mus, observations, timestep matches) of the dashboard's 8-budget ladder for image x
    (C, H, W), privatized with the standard-normal draw xi at every budget."""
    from audit_engine.attacker import pipeline
    from audit_engine.session.ladder import ladder_mus

    mus = ladder_mus(float(x.norm()))
    obs = pipeline.observe(
        prior,
        x.expand(len(mus), *x.shape),
        mus,
        clip_norm=float(x.norm()),
        xi=xi.expand(len(mus), *x.shape),
    )  # C = ||x||: nothing clipped
    return mus, obs.images, obs.matches


def heldout(n: int):
    """n held-out digits of the embedded prior (N, 1, 32, 32) in [0, 1] and their labels,
    the classes taken in turn (as the reproduction does)."""
    from audit_engine.attacker.priors import load_prior
    from audit_engine.reproduce import heldout_images

    return heldout_images(load_prior(device="cpu"), n)


def median_of(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env_extra: dict | None = None, log=None) -> subprocess.Popen:
    """``python app.py`` on a loopback port (embedded prior, offline); returns once it answers.
    ``log``: an open file that receives the server's stdout and stderr."""
    env = dict(
        os.environ,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        AUDIT_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        **(env_extra or {}),
    )
    import tempfile

    log = log or tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"app exited: {log.read()[-2000:]!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("app did not answer within 120 s")


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) in MiB from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    kb = lambda k: float(fields[k].split()[0]) / 1024
    return kb("VmRSS"), kb("VmHWM")
