"""t* against a direct computation on the scheduler's own alphas_cumprod."""

import math

import numpy as np
import pytest
from diffusers import DDIMScheduler, DDPMScheduler

from audit_engine.maths.schedule import match_timestep, match_timesteps


def brute_force_t(sigma, abar):
    best, best_d = None, math.inf
    for t, a in enumerate(abar):
        d = abs((1 - a) / a - sigma**2)
        if d < best_d:
            best, best_d = t, d
    return best


SCHEDULES = {
    "linear": DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02
    ).alphas_cumprod,
    "cosine": DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"
    ).alphas_cumprod,
    "scaled_linear_500": DDIMScheduler(
        num_train_timesteps=500, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    ).alphas_cumprod,
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_matches_brute_force(name):
    abar = SCHEDULES[name].double().numpy().tolist()
    sigmas = np.geomspace(1e-3, 300, 157).tolist() + [0.0, 0.5, 1.0, 2.0, 10.0]
    for m, sigma in zip(match_timesteps(sigmas, SCHEDULES[name]), sigmas):
        assert m.t_star == brute_force_t(sigma, abar), sigma


def test_linear_schedule_range_and_flags():
    abar = SCHEDULES["linear"]
    top = match_timestep(1e6, abar)
    assert top.beyond_range and top.t_star == 999
    assert top.sigma_max == pytest.approx(math.sqrt((1 - float(abar[-1])) / float(abar[-1])))
    assert 157 < top.sigma_max < 158  # sqrt((1 - abar_T) / abar_T) for this schedule: about 157
    # beyond the range the start is rescaled to the variance x_T may have
    assert top.start_scale * top.sigma_dm == pytest.approx(math.sqrt(1 - top.abar))
    low = match_timestep(0.001, abar)
    assert low.below_range and low.t_star == 0 and not low.beyond_range
    mid = match_timestep(2.0, abar)
    assert not mid.beyond_range and not mid.below_range
    assert mid.sigma_t == pytest.approx(2.0, rel=0.01)
    assert mid.start_scale == pytest.approx(math.sqrt(mid.abar))
    assert "beyond the prior's range" in top.describe()


def test_rejects_bad_noise():
    with pytest.raises(ValueError):
        match_timesteps([float("nan")], SCHEDULES["linear"])
    with pytest.raises(ValueError):
        match_timesteps([-1.0], SCHEDULES["linear"])
