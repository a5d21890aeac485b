"""Metrics against closed forms; LPIPS plumbing on a random backbone; graceful unavailability."""

import math

import pytest
import torch

from audit_engine.attacker import metrics
from audit_engine.attacker.metrics import get_lpips, similarity


@pytest.fixture()
def pair():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3, 32, 32, generator=g)
    noisy = (ref + 0.1 * torch.randn(3, 32, 32, generator=g)).clamp(0, 1)
    return ref, noisy


def test_mse_and_psnr_closed_form(pair):
    ref, noisy = pair
    row = similarity(ref, noisy[None])[0]
    mse = float(((ref.double() - noisy.double()) ** 2).mean())
    assert row["mse"] == pytest.approx(mse, rel=1e-9)
    assert row["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-9)
    assert row["lpips"] is None


def test_ssim_ordering_and_identity(pair):
    ref, noisy = pair
    worse = (ref + 0.4 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(1))).clamp(
        0, 1
    )
    same, a, b = similarity(ref, torch.stack([ref, noisy, worse]))
    assert same["ssim"] == pytest.approx(1.0) and same["mse"] == 0 and same["psnr"] == math.inf
    assert 1 > a["ssim"] > b["ssim"]


def _ssim_by_hand(a, b, win: int) -> float:
    """Wang et al. 2004, eq. 13, over every win x win window inside the image (uniform
    weights, sample covariances, C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1), averaged."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    pa = sliding_window_view(np.asarray(a, float), (win, win)).reshape(-1, win * win)
    pb = sliding_window_view(np.asarray(b, float), (win, win)).reshape(-1, win * win)
    ma, mb = pa.mean(1), pb.mean(1)
    va, vb = pa.var(1, ddof=1), pb.var(1, ddof=1)
    cov = ((pa - ma[:, None]) * (pb - mb[:, None])).sum(1) / (win * win - 1)
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


@pytest.mark.parametrize("side", [5, 6, 9])
def test_ssim_on_gray_and_tiny_images_against_the_formula(side):
    """Tiny gray images (the window shrinks to the largest odd size that fits, at most 7)
    against SSIM computed from its definition."""
    g = torch.Generator().manual_seed(side)
    ref = torch.rand(1, side, side, generator=g)
    for other in (1 - ref, (ref + 0.2 * torch.randn(ref.shape, generator=g)).clamp(0, 1)):
        row = similarity(ref, other[None])[0]
        win = min(7, side if side % 2 else side - 1)
        assert row["ssim"] == pytest.approx(_ssim_by_hand(ref[0], other[0], win), abs=1e-9)


def test_inputs_are_clipped_to_unit_range(pair):
    ref, _ = pair
    out = similarity(ref, (ref + 5)[None])[0]  # clipped to all ones
    assert out["mse"] == pytest.approx(float(((ref - 1) ** 2).mean()), rel=1e-6)


def test_lpips_code_path_with_random_backbone(pair):
    ref, noisy = pair
    lp = get_lpips("alex", random_backbone=True)
    assert lp.available and "plumbing" in lp.label
    d_same, d_noisy = lp(ref, torch.stack([ref, noisy]))
    assert d_same == pytest.approx(0.0, abs=1e-6) and d_noisy > 0
    gray = lp(ref[:1], noisy[None, :1])  # 1-channel images are replicated to RGB
    assert len(gray) == 1 and gray[0] > 0
    rows = similarity(ref, noisy[None], lpips_metric=lp)
    assert rows[0]["lpips"] == pytest.approx(d_noisy, rel=1e-5)


def test_vgg_variant_with_random_backbone(pair):
    ref, noisy = pair
    lp = get_lpips("vgg", random_backbone=True)
    assert lp(ref, noisy[None])[0] > 0


def test_lpips_unavailable_is_reported_and_others_still_work(pair, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics, "_LPIPS", metrics._LPIPS.empty_copy())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no cached backbone
    monkeypatch.setenv("AUDIT_OFFLINE", "1")
    lp = get_lpips("alex")
    assert not lp.available and "alexnet-owt-7be5be79.pth" in lp.reason
    ref, noisy = pair
    row = similarity(ref, noisy[None], lpips_metric=lp)[0]
    assert row["lpips"] is None and row["ssim"] < 1 and row["mse"] > 0


@pytest.fixture()
def online_without_backbone(monkeypatch, tmp_path):
    """No cached LPIPS backbone, and no offline flag: get_lpips may try to download."""
    monkeypatch.setattr(metrics, "_LPIPS", metrics._LPIPS.empty_copy())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("AUDIT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_lpips_download_failure_is_caught_and_retried_later(monkeypatch, online_without_backbone):
    """A failed download does not raise; the failure is remembered (no new attempt for every
    audit) and tried again once caches.RETRY_S has passed; the message says where to put the
    weights."""
    import lpips

    from audit_engine import caches

    monkeypatch.setattr(metrics, "_reachable", lambda host, timeout=3.0: True)
    attempts = []

    def boom(*a, **k):
        attempts.append(k.get("net"))
        raise OSError("network unreachable")

    monkeypatch.setattr(lpips, "LPIPS", boom)
    lp = get_lpips("vgg")
    assert not lp.available and lp.reason.startswith("LPIPS unavailable")
    assert "vgg16-397923af.pth" in lp.reason and "OSError" in lp.reason
    assert get_lpips("vgg") is lp and attempts == ["vgg"]  # remembered
    later = metrics._LPIPS.clock() + caches.RETRY_S + 1
    metrics._LPIPS.clock = lambda: later
    get_lpips("vgg")
    assert attempts == ["vgg", "vgg"]  # tried again after the retry interval


def test_unknown_net_rejected():
    with pytest.raises(ValueError, match="net="):
        get_lpips("resnet")


def test_lpips_unreachable_host_is_not_waited_for(monkeypatch, online_without_backbone):
    monkeypatch.setattr(metrics, "_reachable", lambda host, timeout=3.0: False)
    lp = get_lpips("alex")
    assert not lp.available and "cannot be reached" in lp.reason
