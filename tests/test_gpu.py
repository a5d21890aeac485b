"""GPU checks (marker gpu: `python -m pytest -m gpu` on a CUDA machine): the engine with the
google/ddpm-celebahq-256 architecture (random weights) in float16 against float32, and the
8-budget ladder's time (target under 5 s)."""

import time

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return "cuda"


def test_celebahq_half_matches_float32_and_ladder_is_fast(cuda):
    from audit_engine.attacker.metrics import similarity
    from audit_engine.attacker.reconstruct import reconstruct
    from bench.common import ladder_inputs, random_prior

    p32 = random_prior("google/ddpm-celebahq-256", device=cuda, dtype=torch.float32)
    p16 = random_prior("google/ddpm-celebahq-256", device=cuda, dtype=torch.float16)
    x = torch.rand(3, 256, 256, generator=torch.Generator().manual_seed(0))
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    _, obs, matches = ladder_inputs(p32, x, xi)
    a = reconstruct(p32, obs, matches, steps=20)
    reconstruct(p16, obs, matches, steps=20)  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    b = reconstruct(p16, obs, matches, steps=20)
    torch.cuda.synchronize()
    ladder_s = time.perf_counter() - t
    diff = (a - b).abs()
    ssim = [r["ssim"] for r in similarity(a[0], b[:1])]
    print(
        f"float16 vs float32: max |diff| {diff.max():.4f}, mean {diff.mean():.5f}, "
        f"SSIM {ssim[0]:.4f}; 8-budget ladder in float16: {ladder_s:.2f} s"
    )
    assert diff.mean() < 0.01 and ssim[0] > 0.98
    assert ladder_s < 5.0
