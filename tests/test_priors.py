"""Loading priors from folders and the Hub, offline, with clear errors."""

import json

import pytest
import torch
from conftest import make_tiny_prior
from diffusers import DDPMScheduler

from audit_engine.attacker import priors
from audit_engine.attacker.priors import PriorUnavailable, load_prior, prior_status


def test_loads_pipeline_layout_and_reads_schedule(tiny_prior_dir):
    p = load_prior(str(tiny_prior_dir), device="cpu")
    ref = DDPMScheduler.from_pretrained(tiny_prior_dir, subfolder="scheduler").alphas_cumprod
    torch.testing.assert_close(p.alphas_cumprod, ref.double())
    assert (p.sample_size, p.channels, p.num_train_timesteps) == (16, 1, 1000)
    assert p.prediction_type == "epsilon"
    assert load_prior(str(tiny_prior_dir), device="cpu") is p  # cached


def test_loads_flat_layout_and_a_non_default_schedule(tmp_path):
    folder = make_tiny_prior(tmp_path / "flat", channels=3, layout="flat")
    cfg = json.loads((folder / "scheduler_config.json").read_text())
    cfg.update(beta_schedule="squaredcos_cap_v2", num_train_timesteps=500)
    (folder / "scheduler_config.json").write_text(json.dumps(cfg))
    p = load_prior(str(folder), device="cpu")
    assert p.channels == 3 and p.num_train_timesteps == 500
    expected = DDPMScheduler(
        num_train_timesteps=500, beta_schedule="squaredcos_cap_v2"
    ).alphas_cumprod
    torch.testing.assert_close(p.alphas_cumprod, expected.double())


def test_missing_scheduler_is_a_clear_error(tmp_path):
    folder = make_tiny_prior(tmp_path / "nosched")
    for f in (folder / "scheduler").iterdir():
        f.unlink()
    with pytest.raises(PriorUnavailable, match="scheduler config"):
        load_prior(str(folder), device="cpu")
    assert prior_status(str(folder))[0] == "unavailable"


def test_unknown_name_is_a_clear_error():
    with pytest.raises(PriorUnavailable, match="not found"):
        load_prior("no such prior", device="cpu")


def test_hub_id_offline_fails_fast_with_advice(monkeypatch, tmp_path):
    """Offline with an empty cache: refused with advice, without trying to download (no
    download call is made, so nothing waits on a network timeout)."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = huggingface_hub.snapshot_download
    downloads = []

    def counting(repo_id, **kw):
        if not kw.get("local_files_only"):
            downloads.append(repo_id)
        return real(repo_id, **kw)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", counting)
    with pytest.raises(PriorUnavailable) as err:
        load_prior("google/ddpm-cifar10-32", device="cpu")
    assert downloads == []
    msg = str(err.value)
    assert "google/ddpm-cifar10-32" in msg and "embedded" in msg and "download" in msg
    state, why = prior_status("google/ddpm-cifar10-32")
    assert state == "unavailable" and "not cached" in why


def test_hub_unreachable_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(priors, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(PriorUnavailable, match="cannot be reached"):
        load_prior("google/ddpm-celebahq-256", device="cpu")
    assert prior_status("google/ddpm-celebahq-256")[0] == "unavailable"


def test_hub_cache_is_used(monkeypatch, tmp_path, tiny_prior_dir):
    """A model in the local Hub cache (the layout huggingface_hub writes: refs/main naming a
    snapshot) loads with the network unreachable."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-ddpm"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_prior_dir, repo / "snapshots" / commit)
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at import
    monkeypatch.setattr(priors, "_hub_reachable", lambda timeout=3.0: False)
    p = load_prior("someone/tiny-ddpm", device="cpu")
    assert p.source == "someone/tiny-ddpm" and p.sample_size == 16
    assert prior_status("someone/tiny-ddpm")[0] == "ready"


def test_registry_keeps_the_embedded_prior_first_whatever_is_configured():
    saved = dict(priors.REGISTRY)
    try:
        reg = priors.configure_registry("google/ddpm-cifar10-32, embedded, google/ddpm-cifar10-32")
        assert list(reg) == [priors.EMBEDDED, "google/ddpm-cifar10-32"]  # once each
    finally:
        priors.REGISTRY.clear()
        priors.REGISTRY.update(saved)


def test_predict_eps_converts_prediction_types(tiny_prior):
    """A round trip through x_t: for a known clean image x0 and noise eps, a UNet that
    predicts x0 ("sample") or v = sqrt(abar) eps - sqrt(1 - abar) x0 ("v_prediction", Salimans
    & Ho 2022) must give back eps. A sign or a square-root error fails here."""
    from dataclasses import replace
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1, torch.randn(2, 1, 16, 16, generator=g)
    t = torch.tensor([10, 500])
    a = tiny_prior.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps  # the forward process, q(x_t | x0)
    targets = {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}
    for kind, target in targets.items():
        unet = lambda x, tt, target=target: SimpleNamespace(sample=target)
        got = replace(tiny_prior, unet=unet, prediction_type=kind).predict_eps(x_t, t)
        torch.testing.assert_close(got, eps, atol=1e-5, rtol=0, msg=kind)
