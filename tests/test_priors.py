"""Loading priors from folders and the Hub, offline, with clear errors."""
import json
import time

import pytest
import torch
from diffusers import DDPMScheduler

from audit_engine import priors
from audit_engine.priors import PriorUnavailable, load_prior, prior_status
from conftest import make_tiny_prior


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
    expected = DDPMScheduler(num_train_timesteps=500, beta_schedule="squaredcos_cap_v2").alphas_cumprod
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
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    t0 = time.perf_counter()
    with pytest.raises(PriorUnavailable) as err:
        load_prior("google/ddpm-cifar10-32", device="cpu")
    assert time.perf_counter() - t0 < 10
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
    # A folder found in the local Hub cache loads without any network.
    monkeypatch.setattr(priors, "_hub_cached_folder", lambda repo: tiny_prior_dir)
    p = load_prior("someone/tiny-ddpm", device="cpu")
    assert p.source == "someone/tiny-ddpm" and p.sample_size == 16
    assert prior_status("someone/tiny-ddpm")[0] == "ready"


def test_registry_lists_embedded_first():
    assert list(priors.REGISTRY)[0] == priors.EMBEDDED
    assert "google/ddpm-cifar10-32" in priors.REGISTRY


def test_predict_eps_converts_prediction_types(tiny_prior):
    from dataclasses import replace

    x = torch.randn(2, 1, 16, 16)
    t = torch.tensor([10, 500])
    out = tiny_prior.unet(x, t).sample
    abar = tiny_prior.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    as_sample = replace(tiny_prior, prediction_type="sample").predict_eps(x, t)
    torch.testing.assert_close(as_sample, (x - abar.sqrt() * out) / (1 - abar).sqrt())
    as_v = replace(tiny_prior, prediction_type="v_prediction").predict_eps(x, t)
    torch.testing.assert_close(as_v, abar.sqrt() * out + (1 - abar).sqrt() * x)
