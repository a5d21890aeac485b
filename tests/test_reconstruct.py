"""The explicit reverse process against diffusers' own DDIM and DDPM schedulers."""

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from audit_engine.attacker.reconstruct import count_unet_calls, reconstruct, timestep_grid
from audit_engine.images import to_unit
from audit_engine.maths import streams
from audit_engine.maths.schedule import TimestepMatch, match_timesteps


def test_timestep_grid():
    assert timestep_grid(900, 10) == list(range(900, -1, -100))
    assert timestep_grid(5, None) == [5, 4, 3, 2, 1, 0]
    assert timestep_grid(5, 50) == [5, 4, 3, 2, 1, 0]
    assert timestep_grid(0, 20) == [0]
    assert timestep_grid(37, 1) == [37]
    g = timestep_grid(613, 20)
    assert len(g) == 20 and g[0] == 613 and g[-1] == 0 and g == sorted(set(g), reverse=True)
    assert count_unet_calls([g, [3, 2, 1, 0]]) == (20, 24)


def _match(t, abar):
    a = float(abar[t])
    return TimestepMatch(
        t_star=t,
        sigma_dm=((1 - a) / a) ** 0.5,
        sigma_t=((1 - a) / a) ** 0.5,
        abar=a,
        beyond_range=False,
        below_range=False,
        sigma_max=157.0,
    )


def _observation_for_start(x_start, m):
    """The [0, 1] observation whose reverse process starts at exactly x_start."""
    return to_unit(x_start / m.start_scale)


def test_ddim_matches_diffusers_on_a_uniform_grid(tiny_prior64):
    tiny_prior = tiny_prior64
    sched = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="leading",
    )
    sched.set_timesteps(10)
    sched.alphas_cumprod = sched.alphas_cumprod.double()  # its scalar algebra in float64 too
    assert sched.timesteps.tolist() == list(range(900, -1, -100))
    torch.manual_seed(1)
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    ref = x.clone()
    with torch.no_grad():
        for t in sched.timesteps:
            eps = tiny_prior.unet(ref, t).sample
            ref = sched.step(eps, t, ref, eta=0.0).prev_sample
    m = _match(900, tiny_prior.alphas_cumprod)
    ours = reconstruct(tiny_prior, _observation_for_start(x, m), [m, m], sampler="ddim", steps=10)
    torch.testing.assert_close(ours, to_unit(ref).clamp(0, 1), atol=1e-9, rtol=0)


def test_ddpm_matches_diffusers_step_by_step(tiny_prior64):
    tiny_prior = tiny_prior64
    sched = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        clip_sample=True,
        variance_type="fixed_small",
    )
    sched.alphas_cumprod = sched.alphas_cumprod.double()  # its scalar algebra in float64 too
    t_star, seed = 40, 11
    torch.manual_seed(2)
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    ref, gen = x.clone(), streams.keyed(seed, streams.REVERSE)
    with torch.no_grad():
        for t in range(t_star, -1, -1):
            eps = tiny_prior.unet(ref, t).sample
            ref = sched.step(eps, t, ref, generator=gen).prev_sample
    m = _match(t_star, tiny_prior.alphas_cumprod)
    ours = reconstruct(
        tiny_prior, _observation_for_start(x, m), [m], sampler="ddpm", steps=None, seeds=[seed]
    )
    torch.testing.assert_close(ours, to_unit(ref).clamp(0, 1), atol=1e-9, rtol=0)


def _inputs(tiny_prior, n=4, sigmas=(0.05, 0.5, 3.0, 400.0)):
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(n, 1, 16, 16, generator=g) + 0.3 * torch.randn(n, 1, 16, 16, generator=g)
    matches = match_timesteps(sigmas[:n], tiny_prior.alphas_cumprod)
    return obs.to(tiny_prior.dtype), matches


@pytest.mark.parametrize("sampler,steps", [("ddim", 8), ("ddpm", 8), ("ddpm", None)])
def test_batched_equals_one_by_one_and_is_deterministic(tiny_prior64, sampler, steps):
    # float64, so that batch composition cannot hide behind float32 rounding
    tiny_prior = tiny_prior64
    sigmas = (
        (0.05, 0.5, 3.0, 400.0) if steps else (0.02, 0.05, 0.1, 0.2)
    )  # all steps: keep t* small
    obs, matches = _inputs(tiny_prior, sigmas=sigmas)
    seeds = [3, 3, 4, 5]
    batched = reconstruct(tiny_prior, obs, matches, sampler=sampler, steps=steps, seeds=seeds)
    again = reconstruct(tiny_prior, obs, matches, sampler=sampler, steps=steps, seeds=seeds)
    torch.testing.assert_close(batched, again, atol=0, rtol=0)
    single = torch.cat(
        [
            reconstruct(
                tiny_prior,
                obs[i : i + 1],
                [matches[i]],
                sampler=sampler,
                steps=steps,
                seeds=[seeds[i]],
            )
            for i in range(4)
        ]
    )
    torch.testing.assert_close(batched, single, atol=1e-9, rtol=0)
    chunked = reconstruct(
        tiny_prior, obs, matches, sampler=sampler, steps=steps, seeds=seeds, batch_size=3
    )
    torch.testing.assert_close(batched, chunked, atol=1e-9, rtol=0)
    assert batched.shape == obs.shape and batched.min() >= 0 and batched.max() <= 1


def test_ddpm_seeds_give_different_posterior_samples(tiny_prior):
    obs, matches = _inputs(tiny_prior, 3)
    a = reconstruct(tiny_prior, obs, matches, sampler="ddpm", steps=10, seeds=[0, 0, 0])
    b = reconstruct(tiny_prior, obs, matches, sampler="ddpm", steps=10, seeds=[1, 1, 1])
    assert (a - b).abs().max() > 1e-3


def test_progress_callback_counts_unet_calls(tiny_prior):
    obs, matches = _inputs(tiny_prior)
    calls = []
    reconstruct(tiny_prior, obs, matches, steps=6, progress=lambda f, m: calls.append((f, m)))
    rounds, _ = count_unet_calls([timestep_grid(m.t_star, 6) for m in matches])
    assert calls == [
        (k / rounds, f"reverse diffusion step {k}/{rounds}") for k in range(1, rounds + 1)
    ]


def test_each_sample_starts_at_its_own_t_star(tiny_prior, monkeypatch):
    obs, matches = _inputs(tiny_prior)
    seen = []
    real = tiny_prior.predict_eps
    monkeypatch.setattr(
        tiny_prior, "predict_eps", lambda x, t: (seen.append(t.tolist()), real(x, t))[1]
    )
    reconstruct(tiny_prior, obs, matches, steps=5)
    assert seen[0] == [m.t_star for m in matches]  # the first call: every sample at its own t*
    assert all(ts[-1] == 0 for ts in seen[-1:])


def test_rejects_bad_arguments(tiny_prior):
    obs, matches = _inputs(tiny_prior)
    with pytest.raises(ValueError, match="sampler"):
        reconstruct(tiny_prior, obs, matches, sampler="euler")
    with pytest.raises(ValueError, match="expects"):
        reconstruct(tiny_prior, torch.rand(4, 3, 16, 16), matches)
    with pytest.raises(ValueError, match="matches"):
        reconstruct(tiny_prior, obs, matches[:2])


def test_unconditional_samples_are_seeded(tiny_prior):
    from audit_engine.attacker.reconstruct import sample

    a = sample(tiny_prior, 3, steps=4, seed=5)
    b = sample(tiny_prior, 3, steps=4, seed=5)
    c = sample(tiny_prior, 3, steps=4, seed=6)
    assert a.shape == (3, 1, 16, 16) and 0 <= float(a.min()) and float(a.max()) <= 1
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.testing.assert_close(a[1:], c[:2], atol=1e-4, rtol=0)  # sample i uses seed + i (float32)
    d = sample(tiny_prior, 2, sampler="ddpm", steps=4, seed=5)
    assert (d - a[:2]).abs().max() > 1e-4


def test_default_batch_is_bounded_in_pixels_and_chunks_change_nothing(tiny_prior64, monkeypatch):
    """A 256-pixel prior gets 16 samples per UNet call by default (its ladder would ask for
    tens of gigabytes at once on a CPU); chunked sampling gives the same samples."""
    from types import SimpleNamespace

    from audit_engine.attacker import reconstruct as rec

    assert rec.default_batch(SimpleNamespace(sample_size=256)) == 16
    assert rec.default_batch(SimpleNamespace(sample_size=32)) == 1024
    whole = rec.sample(tiny_prior64, 5, sampler="ddpm", steps=4, seed=3)
    calls = []
    real = rec._reverse
    monkeypatch.setattr(rec, "_reverse", lambda p, x, *a: calls.append(len(x)) or real(p, x, *a))
    monkeypatch.setattr(rec, "MAX_BATCH_PIXELS", 2 * 16 * 16)  # 2 samples per call
    chunked = rec.sample(tiny_prior64, 5, sampler="ddpm", steps=4, seed=3)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(chunked, whole, atol=1e-9, rtol=0)
