"""The shipped embedded prior: present, small, loads offline fast, and reconstructs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audit_engine.attacker.priors import ASSETS, EMBEDDED, REGISTRY, load_prior, prior_status
from audit_engine.audit.verdict import domain_check, domain_threshold
from audit_engine.caches import Memo

FOLDER = ASSETS / "prior-mnist32"
ROOT = ASSETS.parent.parent


def test_weights_are_safetensors_and_small():
    weights = FOLDER / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 10 * 2**20
    assert not list(FOLDER.rglob("*.bin"))
    cfg = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    assert (cfg["beta_start"], cfg["beta_end"], cfg["beta_schedule"]) == (1e-4, 0.02, "linear")
    assert cfg["num_train_timesteps"] == 1000 and cfg["prediction_type"] == "epsilon"


def test_split_is_recorded_and_held_out():
    split = json.loads((FOLDER / "split.json").read_text())
    test = split["test_indices"]
    assert len(test) == len(set(test)) >= 500
    held = np.load(FOLDER / "heldout.npz")
    assert held["indices"].tolist() == test and held["images"].shape == (len(test), 32, 32)
    assert np.bincount(held["labels"]).tolist() == [len(test) // 10] * 10


def test_default_prior_is_embedded_and_ready():
    assert list(REGISTRY)[0] == EMBEDDED
    assert prior_status(EMBEDDED)[0] == "ready"


def test_loads_offline_in_a_fresh_process():
    """A fresh process with every socket refused loads the embedded prior (no network at all;
    the load time is measured in docs/PRIOR.md and bench/, not asserted here)."""
    code = (
        "import socket, time\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "import torch, diffusers; from diffusers import UNet2DModel\n"
        "t = time.perf_counter()\n"
        "from audit_engine.attacker.priors import load_prior; p = load_prior(device='cpu')\n"
        "print(time.perf_counter() - t, p.sample_size, p.channels)"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", AUDIT_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    ).stdout.split()
    seconds, size, channels = float(out[-3]), int(out[-2]), int(out[-1])
    assert (size, channels) == (32, 1)
    print(f"loaded in {seconds:.2f} s")


def test_reconstruction_beats_the_noisy_observation():
    from audit_engine.audit.run import run_audit

    held = np.load(FOLDER / "heldout.npz")
    prior = load_prior(device="cpu")
    gains = []
    for img in held["images"][:6]:
        x = torch.from_numpy(img).float().div(255).unsqueeze(0)
        res = run_audit(x, mus=[20.0], prior=prior, steps=10, lpips=None)
        s = res.samples[0]
        gains.append(s.recon["ssim"] - s.noisy["ssim"])
    assert np.mean(gains) > 0.1, gains


def test_classifier_is_shipped():
    from audit_engine.attacker.attributes import classify, load_classifier

    clf = load_classifier(FOLDER)
    held = np.load(FOLDER / "heldout.npz")
    x = torch.from_numpy(held["images"][:100]).float().div(255).unsqueeze(1)
    labels, _ = classify(clf, x)
    assert (labels.numpy() == held["labels"][:100]).mean() > 0.9


def test_verdicts_on_held_out_digits_low_and_high_budget():
    """At mu 0.2 the attack does not beat guessing, at mu 60 it recognises the digit and its
    class; the verdicts, the HTML report and the records carry it."""
    from audit_engine.audit.run import run_audit
    from audit_engine.outputs.report import html_report

    held = np.load(FOLDER / "heldout.npz")
    prior = load_prior(device="cpu")
    for i in (3, 260):
        x = torch.from_numpy(held["images"][i]).float().div(255).unsqueeze(0)
        res = run_audit(x, mus=[0.2, 60.0], prior=prior, lpips=None)
        assert res.domain.in_domain and res.attribute["index"] == int(held["labels"][i])
        assert (
            res.attribute["original"] == str(held["labels"][i])
            and res.attribute["name"] == "digit class"
        )
        weak, strong = res.verdicts
        # mu 0.2: the DP bound itself proves both attackers within chance + 0.10
        assert weak.verdict == "not recognisable" and not weak.attribute.revealed
        assert weak.identification.proven and weak.gallery.proven
        assert strong.verdict == "recognisable" and strong.attribute.revealed
        assert strong.identification.trials == 8 == weak.attribute.trials
        assert strong.by == ("prior", "gallery") and strong.gallery.rate > 0.9
        assert "attribute" in res.records()[0]
        # the noise-aware baseline reads the release alone: no better than the guess at
        # mu 0.2, and the class is plain in the release at mu 60
        # (the prior-free attacker, 1024 tries a budget, against its own base rate)
        assert weak.attribute.release.level == "not revealed" and weak.attribute.release.proven
        assert strong.attribute.release.level == "revealed"
        assert strong.attribute.release.rate > 0.8 > weak.attribute.release.rate
        assert res.verdicts_json()["budgets"][1]["attribute"]["release"]["successes"] >= 0.8 * 1024
    page = html_report(res)
    assert "revealed" in page and "verdict (the evidence below)" in page and "noise-aware" in page


def test_different_digits_get_different_low_budget_reconstructions():
    """The noise stream is keyed by the image: two digits at the same seed do not share a
    draw, so at a budget that carries nothing they do not reconstruct to the same picture."""
    from audit_engine.audit.run import run_audit

    held = np.load(FOLDER / "heldout.npz")
    prior = load_prior(device="cpu")
    recons = []
    for i in (0, 100, 350):
        x = torch.from_numpy(held["images"][i]).float().div(255).unsqueeze(0)
        res = run_audit(x, mus=[0.2], prior=prior, lpips=None, trials=1, verdicts=False)
        recons.append(res.samples[0].reconstruction)
    for a in range(3):
        for b in range(a + 1, 3):
            assert (recons[a] - recons[b]).abs().mean() > 0.05


def test_out_of_domain_images_get_no_attribute_claim():
    from audit_engine.audit.run import run_audit

    prior = load_prior(device="cpu")
    for name in ("ood-cat.png", "ood-text.png"):
        res = run_audit(
            ROOT / "assets" / "examples" / name, mus=[60.0], prior=prior, lpips=None, trials=2
        )
        assert not res.domain.in_domain and res.domain.score > res.domain.threshold
        assert all(v.attribute is None for v in res.verdicts)


def test_simple_images_the_prior_denoises_well_are_still_outside_its_domain():
    """Flat grey squares and white printed words on black: a prior can rate them typical
    (its denoising error is low); their brightness and contrast keep them out. The word is
    one the denoising profile alone let through (docs/DOMAIN.md)."""
    from PIL import Image, ImageDraw, ImageFont

    from audit_engine.audit.reference import reference_for, typicality

    prior = load_prior(device="cpu")
    ref = reference_for(prior)
    word = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(word).text((6, 30), "privacy", fill=255, font=ImageFont.load_default(size=24))
    images = torch.stack(
        [torch.full((1, 32, 32), v) for v in (0.0, 0.1, 0.5)] + [prior.load_image(word)]
    )
    profiles = typicality(prior, images)
    assert not any(domain_check(ref, p[None]).in_domain for p in profiles)
    alone = _profile_only(ref)
    # what the profile alone missed
    assert alone.distance(profiles[3:, :-2])[0] <= domain_threshold(alone.distances)
    # and real digits stay inside (these are reference images: a sanity check; the two-fold
    # rate, no digit judging itself, is in docs/DOMAIN.md)
    held = typicality(prior, ref.images[:50])
    assert sum(domain_check(ref, p[None]).in_domain for p in held) >= 49


def _profile_only(ref):
    from audit_engine.audit.reference import Reference

    return Reference(
        images=ref.images[:1],
        samples=ref.samples[:1],
        profiles=ref.profiles[:, :-2],
        source="the denoising profile alone",
    )


def test_shipped_reference_matches_the_shipped_prior(monkeypatch, tmp_path):
    """reference.npz was built from these weights (its tag says so): nothing is recomputed,
    whatever precision the prior is loaded in."""
    import audit_engine.audit.reference as ref_mod

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path))  # no other cached copy to fall back on
    monkeypatch.setattr(ref_mod, "_MEMORY", Memo())
    monkeypatch.setattr(
        ref_mod,
        "build_reference",
        lambda *a, **k: pytest.fail("the shipped reference.npz is stale"),
    )
    ref = ref_mod.reference_for(load_prior(device="cpu"))
    assert (
        len(ref.images) == 500 and len(ref.samples) == 500 and domain_threshold(ref.distances) > 0
    )
    assert ref.sample_classes is not None and len(ref.image_classes) == 500
    monkeypatch.setattr(ref_mod, "_MEMORY", Memo())
    ref_mod.reference_for(load_prior(device="cpu", dtype=torch.bfloat16))


def test_bfloat16_keeps_the_reconstruction_quality():
    """bfloat16 is the default on CPUs that compute it natively: on the trained prior it must
    score the same SSIM as float32 (docs/PERFORMANCE.md: -0.3% on 500 reconstructions)."""
    from audit_engine.attacker import pipeline
    from audit_engine.attacker.metrics import similarity

    held = np.load(FOLDER / "heldout.npz")
    x = torch.from_numpy(held["images"][::50][:10]).float().div(255).unsqueeze(1)
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    obs = pipeline.observe(
        load_prior(device="cpu"), x, 10.0, xi=xi, clip_norm=float(x.flatten(1).norm(dim=1).median())
    )
    ssim = {}
    for dtype in (torch.float32, torch.bfloat16):
        rec = pipeline.attack(load_prior(device="cpu", dtype=dtype), obs, steps=10)
        ssim[dtype] = np.mean([similarity(a, b[None])[0]["ssim"] for a, b in zip(x, rec)])
    assert abs(ssim[torch.bfloat16] - ssim[torch.float32]) < 0.02, ssim
