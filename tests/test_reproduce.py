"""The reproduction: attacks checked against brute force and closed forms, outputs complete."""
import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from audit_engine import bounds
from audit_engine.mechanism import privatize
from audit_engine.reproduce import (IN_DOMAIN, ReproConfig, _candidate_attack_rates,
                                    _candidate_sets, _wilson, heldout_images, ood_sets,
                                    run_reproduction, summarize, write_reproduction)


def test_candidate_attack_matches_a_brute_force_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 6, 6, generator=g)
    idx, pos = _candidate_sets(5, 3, np.random.default_rng(0))
    assert all(idx[i, pos[i]] == i and len(set(idx[i])) == 3 for i in range(5))
    cand = x[torch.from_numpy(idx)]
    xi = torch.randn(5, 7, 1, 6, 6, generator=g)
    succ, chosen = _candidate_attack_rates(x, cand, pos, 2.0, xi)
    for i in range(5):
        s = float(x[i].norm()) / 2.0
        for k in range(7):
            obs = x[i] + s * xi[i, k]
            d = [float(((obs - c) ** 2).sum()) for c in cand[i]]
            assert chosen[i, k] == int(np.argmin(d))
            assert succ[i, k] == (chosen[i, k] == pos[i])


def test_two_candidate_success_matches_its_closed_form_and_the_rero_bound():
    # x~ = x + s xi; the nearest of {x, x'} is x with probability Phi(||x - x'|| / (2 s))
    g = torch.Generator().manual_seed(2)
    x, x2 = torch.rand(2, 1, 8, 8, generator=g)
    mu = 1.5
    s = float(x.norm()) / mu
    trials = 20000
    obs = torch.stack([privatize(x, mu, generator=g) for _ in range(trials)])
    hit = ((obs - x).flatten(1).norm(dim=1) < (obs - x2).flatten(1).norm(dim=1)).double().mean()
    expected = stats.norm.cdf(float((x - x2).norm()) / (2 * s))
    assert float(hit) == pytest.approx(expected, abs=0.01)
    assert float(hit) <= bounds.rero_bound_gdp(mu, 0.5) + 0.01


def test_gdp_bound_is_never_looser_than_the_eps_delta_bound():
    from audit_engine.accounting import eps_from_mu

    for mu in (0.1, 0.5, 1, 2, 5):
        for delta in (1e-8, 1e-5, 1e-2):
            for kappa in (0.001, 0.1, 0.5):
                eps = eps_from_mu(mu, delta)
                assert bounds.rero_bound_gdp(mu, kappa) <= bounds.rero_bound_dp(eps, delta, kappa) + 1e-12


def test_wilson_interval_known_values():
    lo, hi = _wilson(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert _wilson(0, 20)[0] == 0.0 and _wilson(20, 20)[1] == 1.0


def test_ood_sets_are_offline_and_shaped():
    sets = ood_sets(7, size=16, channels=3, seed=0)
    assert len(sets) == 2
    for imgs in sets.values():
        assert imgs.shape == (7, 3, 16, 16) and 0 <= imgs.min() and imgs.max() <= 1
        assert imgs.std() > 0.01


@pytest.fixture(scope="module")
def prior_with_heldout(tiny_prior_dir, tmp_path_factory):
    from audit_engine.priors import load_prior

    folder = tmp_path_factory.mktemp("tiny-heldout")
    shutil.copytree(tiny_prior_dir, folder, dirs_exist_ok=True)
    rng = np.random.default_rng(0)
    images = (rng.random((8, 16, 16)) * 255).astype(np.uint8)
    np.savez(folder / "heldout.npz", images=images, labels=np.arange(8) % 10, indices=np.arange(8))
    return load_prior(str(folder), device="cpu")


def test_reproduction_writes_every_number_and_figure(prior_with_heldout, tmp_path):
    cfg = ReproConfig(n_images=8, mus=(1.0, 300.0), n_candidates=3, n_draws=4, n_ood=3,
                      steps=2, lpips=None)
    rep = run_reproduction(cfg, prior=prior_with_heldout)
    assert len(rep.rows) == (8 + 3 + 3) * 2
    assert rep.kappa_candidate == pytest.approx(1 / 3) and 0 < rep.kappa_threshold < 1
    summary = summarize(rep)
    ind = [s for s in summary if s["set"] == IN_DOMAIN]
    assert [s["mu"] for s in ind] == [1.0, 300.0]
    for s in ind:
        assert s["rero_bound_candidate"] == pytest.approx(
            stats.norm.cdf(stats.norm.ppf(1 / 3) + s["mu"]))
        for key in ("candidate_success", "diffusion_identification_success",
                    "diffusion_threshold_success"):
            assert 0 <= s[f"{key}_lo"] <= s[key] <= s[f"{key}_hi"] <= 1
    # at mu = 300 the observation is almost the image: the candidate attack always succeeds
    assert ind[1]["candidate_success"] == 1.0 and ind[1]["noisy_mse"] < 1e-3
    paths = write_reproduction(rep, tmp_path)
    for key in ("rows", "summary", "run", "html", "figure_a", "figure_b", "figure_c", "examples"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    rows = list(csv.DictReader(paths["rows"].open()))
    assert len(rows) == len(rep.rows) and "candidate_success" in rows[0]
    run = json.loads(paths["run"].read_text())
    assert run["config"]["n_images"] == 8 and run["kappa_candidate"] == pytest.approx(1 / 3)
    assert "plotly" in paths["html"].read_text()[:20000].lower()


def test_missing_heldout_is_a_clear_error(tiny_prior):
    with pytest.raises(ValueError, match="held-out"):
        heldout_images(tiny_prior, 4)
    with pytest.raises(ValueError, match="n_candidates"):
        ReproConfig(n_images=4, n_candidates=9).validate()


def test_cli_reproduce_on_the_embedded_prior(tmp_path):
    from audit_engine.__main__ import main

    rc = main(["reproduce", "--n-images", "6", "--n-ood", "2", "--mu", "5", "50",
               "--n-candidates", "3", "--n-draws", "4", "--steps", "2", "--lpips", "none",
               "--out", str(tmp_path)])
    assert rc == 0
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(summary) == 2 * 3
    ind = [r for r in summary if r["set"] == IN_DOMAIN]
    # the embedded prior ships a digit classifier: attribute disclosure is measured
    assert all(0 <= float(r["attr_diffusion"]) <= 1 for r in ind)
    assert (tmp_path / "figure_attribute.png").is_file()
    assert not math.isnan(float(ind[1]["diffusion_ssim"]))


def test_heldout_subsets_are_balanced_across_classes():
    from audit_engine.priors import load_prior

    x, labels = heldout_images(load_prior(device="cpu"), 30)
    assert x.shape == (30, 1, 32, 32) and np.bincount(labels).tolist() == [3] * 10
