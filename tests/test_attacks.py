import pytest
import torch

from audit_engine.attacker.attacks import (
    candidate_attack,
    noisy_observation_attack,
    unrelated_baseline,
)


def test_noisy_observation_attack_clips():
    x = torch.tensor([[[-0.5, 0.3, 1.7]]])
    torch.testing.assert_close(noisy_observation_attack(x), torch.tensor([[[0.0, 0.3, 1.0]]]))


def test_candidate_attack_picks_the_nearest():
    g = torch.Generator().manual_seed(0)
    cands = torch.rand(10, 1, 8, 8, generator=g)
    obs = cands[7] + 0.01 * torch.randn(1, 8, 8, generator=g)
    assert candidate_attack(obs, cands) == 7


def test_unrelated_baseline_is_between_identity_and_noise():
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(20, 1, 16, 16, generator=g)
    b = unrelated_baseline(imgs, n_pairs=50)
    assert b["mse"] == pytest.approx(1 / 6, rel=0.15)  # E[(U - V)^2] for independent uniforms
    assert abs(b["ssim"]) < 0.2 and b["lpips"] is None
    with pytest.raises(ValueError):
        unrelated_baseline(imgs[:1])
