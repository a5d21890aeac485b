"""The reproduction: attacks checked against brute force and closed forms, outputs complete."""

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from audit_engine.maths import bounds
from audit_engine.maths.mechanism import privatize
from audit_engine.reproduce import (
    IN_DOMAIN,
    ReproConfig,
    candidate_sets,
    clip_to,
    cluster_interval,
    heldout_images,
    nearest_candidate_draws,
    nearest_norm_draws,
    noise_aware_labels,
    ood_sets,
    read_csv,
    run_info,
    run_reproduction,
    summarize,
    tables,
    write_reproduction,
)


def test_candidate_and_norm_attacks_match_a_brute_force_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 6, 6, generator=g)
    idx, pos = candidate_sets(5, 3, np.random.default_rng(0))
    assert all(idx[i, pos[i]] == i and len(set(idx[i])) == 3 for i in range(5))
    c_norm = 2.5  # below some norms: those images are clipped
    xc = clip_to(x, c_norm)
    assert float(xc.flatten(1).norm(dim=1).max()) <= c_norm + 1e-6
    cand = xc[torch.from_numpy(idx)]
    xi = torch.randn(5, 7, 1, 6, 6, generator=g)
    s = c_norm / 2.0
    succ, chosen = nearest_candidate_draws(xc, cand, pos, s, xi)
    norm_succ = nearest_norm_draws(xc, cand, pos, s, xi)
    for i in range(5):
        for k in range(7):
            obs = xc[i] + s * xi[i, k]
            d = [float(((obs - c) ** 2).sum()) for c in cand[i]]
            assert chosen[i, k] == int(np.argmin(d))
            assert succ[i, k] == (chosen[i, k] == pos[i])
            est = float(obs.double().pow(2).sum()) - obs.numel() * s * s
            gap = [abs(float(c.double().pow(2).sum()) - est) for c in cand[i]]
            if sorted(gap)[1] - min(gap) > 1e-6:  # clipped candidates can tie at norm C
                assert norm_succ[i, k] == (int(np.argmin(gap)) == pos[i])


def test_the_norm_attack_exploits_per_image_scaling_and_not_a_public_clip_norm():
    """The self-check can fail: with noise scaled by each image's own norm, ||x~|| reveals
    ||x|| and the norm attack beats the ReRo bound; with a public clip norm it cannot."""
    from audit_engine.attacker.priors import load_prior

    x = heldout_images(load_prior(device="cpu"), 200)[0].double()
    idx, pos = candidate_sets(len(x), 10, np.random.default_rng(0))
    xi = torch.randn(
        len(x), 16, *x.shape[1:], generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    mu = 0.5
    # per-image scale: obs = x + (||x|| / mu) xi, i.e. a norm attack that divides it out
    norms = x.flatten(1).norm(dim=1)
    obs_norm2 = (x.flatten(1)[:, None] + (norms / mu)[:, None, None] * xi.flatten(2)).pow(2).sum(-1)
    est = obs_norm2 / (1 + x[0].numel() / mu**2)
    cn = norms[torch.from_numpy(idx)].pow(2)
    leak = ((cn[:, None, :] - est[:, :, None]).abs().argmin(-1).numpy() == pos[:, None]).mean()
    assert leak > bounds.rero_bound_gdp(mu, 0.1) + 0.2
    c_norm = float(norms.max())
    xc = clip_to(x, c_norm)
    public = nearest_norm_draws(xc, xc[torch.from_numpy(idx)], pos, c_norm / mu, xi).mean()
    assert public < bounds.rero_bound_gdp(mu, 0.1)


def test_noise_aware_classifier_matches_a_brute_force_bayes_rule():
    g = torch.Generator().manual_seed(3)
    pool = torch.rand(12, 1, 4, 4, generator=g, dtype=torch.float64)
    labels = np.arange(12) % 3
    obs = pool[:5] + 0.3 * torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64)
    got = noise_aware_labels(obs, 0.3, pool, labels, exclude=np.arange(5))
    for i in range(5):
        post = np.zeros(3)
        for j in range(12):
            if j != i:
                post[labels[j]] += math.exp(-float((obs[i] - pool[j]).pow(2).sum()) / (2 * 0.09))
        assert got[i] == int(np.argmax(post))
    # with little noise it reads the class of the nearest other image of the class
    near = noise_aware_labels(pool[:5] + 1e-4, 1e-3, pool, labels)
    assert (near == labels[:5]).all()


def test_two_candidate_success_matches_its_closed_form_and_the_rero_bound():
    # x~ = x + s xi; the nearest of {x, x'} is x with probability Phi(||x - x'|| / (2 s))
    g = torch.Generator().manual_seed(2)
    x, x2 = torch.rand(2, 1, 8, 8, generator=g)
    mu = 1.5
    c = 2 * max(float(x.norm()), float(x2.norm()))  # nothing clipped
    s = c / mu
    trials = 20000
    obs = privatize(x.expand(trials, *x.shape), mu, clip_norm=c, generator=g)  # one call
    hit = ((obs - x).flatten(1).norm(dim=1) < (obs - x2).flatten(1).norm(dim=1)).double().mean()
    expected = stats.norm.cdf(float((x - x2).norm()) / (2 * s))
    assert float(hit) == pytest.approx(expected, abs=0.01)
    assert float(hit) <= bounds.rero_bound_gdp(mu, 0.5) + 0.01


def test_gdp_bound_is_never_looser_than_the_eps_delta_bound():
    from audit_engine.maths.accounting import eps_from_mu

    for mu in (0.1, 0.5, 1, 2, 5):
        for delta in (1e-8, 1e-5, 1e-2):
            for kappa in (0.001, 0.1, 0.5):
                eps = eps_from_mu(mu, delta)
                assert (
                    bounds.rero_bound_gdp(mu, kappa)
                    <= bounds.rero_bound_dp(eps, delta, kappa) + 1e-12
                )


def test_cluster_interval_covers_the_mean_and_follows_images():
    v = np.r_[np.ones(30), np.zeros(70)]
    lo, hi = cluster_interval(v, 2000, 0)
    assert lo < 0.3 < hi and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.21 / 100), abs=0.03)
    assert cluster_interval(np.ones(5), 100, 0) == (1.0, 1.0)


def test_ood_sets_are_offline_and_shaped():
    sets = ood_sets(7, size=16, channels=3, seed=0)
    assert len(sets) == 2
    for imgs in sets.values():
        assert imgs.shape == (7, 3, 16, 16) and 0 <= imgs.min() and imgs.max() <= 1
        assert imgs.std() > 0.01


@pytest.fixture(scope="module")
def prior_with_heldout(tiny_prior_dir, tmp_path_factory):
    from audit_engine.attacker.priors import load_prior

    folder = tmp_path_factory.mktemp("tiny-heldout")
    shutil.copytree(tiny_prior_dir, folder, dirs_exist_ok=True)
    rng = np.random.default_rng(0)
    images = (rng.random((8, 16, 16)) * 255).astype(np.uint8)
    np.savez(folder / "heldout.npz", images=images, labels=np.arange(8) % 10, indices=np.arange(8))
    return load_prior(str(folder), device="cpu")


def test_reproduction_writes_every_number_and_figure(prior_with_heldout, tmp_path):
    cfg = ReproConfig(
        n_images=8,
        mus=(1.0, 300.0),
        n_candidates=3,
        n_draws=4,
        n_ood=3,
        steps=2,
        lpips=None,
        n_boot=50,
    )
    rep = run_reproduction(cfg, prior=prior_with_heldout)
    assert len(rep.rows) == (8 + 3 + 3) * 2
    assert rep.kappa_candidate == pytest.approx(1 / 3) and 0 < rep.kappa_threshold < 1
    summary = summarize(rep)
    ind = [s for s in summary if s["set"] == IN_DOMAIN]
    assert [s["mu"] for s in ind] == [1.0, 300.0]
    c = rep.clip_norms[IN_DOMAIN]
    assert c == pytest.approx(
        float(max(x.norm() for x in heldout_images(prior_with_heldout, 8)[0]))
    )
    for s in ind:
        assert s["sigma"] == pytest.approx(c / s["mu"])  # one noise scale for every candidate
        assert s["rero_bound_candidate"] == pytest.approx(
            stats.norm.cdf(stats.norm.ppf(1 / 3) + s["mu"])
        )
        assert s["ziller_mse_law"] == pytest.approx(
            stats.gamma.cdf(rep.eta, a=rep.pixels / 2, scale=2 * s["sigma"] ** 2 / rep.pixels)
        )
        for key in (
            "candidate_success",
            "norm_attack_success",
            "recon_identification_success",
            "recon_threshold_success",
            "noisy_unclipped_mse_success",
        ):
            assert 0 <= s[f"{key}_lo"] <= s[key] <= s[f"{key}_hi"] <= 1
        assert s["recon_psnr"] == pytest.approx(10 * math.log10(1 / s["recon_mse"]))
    # at mu = 300 the observation is almost the image: the candidate attack always succeeds
    assert ind[1]["candidate_success"] == 1.0 and ind[1]["noisy_mse"] < 1.3 * (c / 300) ** 2
    paths = write_reproduction(rep, tmp_path)
    for key in (
        "rows",
        "summary",
        "run",
        "tables",
        "html",
        "figure_a",
        "figure_b",
        "figure_c",
        "examples",
    ):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    rows = list(csv.DictReader(paths["rows"].open()))
    assert len(rows) == len(rep.rows) and "norm_attack_success" in rows[0]
    run = json.loads(paths["run"].read_text())
    assert run["config"]["n_images"] == 8 and run["kappa_candidate"] == pytest.approx(1 / 3)
    assert "plotly" in paths["html"].read_text()[:20000].lower()
    # the tables regenerate from the written files alone
    assert tables(read_csv(paths["summary"]), run) == tables(summary, run_info(rep))


def test_missing_heldout_is_a_clear_error(tmp_path):
    from conftest import make_tiny_prior

    from audit_engine.attacker.priors import load_prior

    bare = load_prior(str(make_tiny_prior(tmp_path / "bare")), device="cpu")  # no heldout.npz
    with pytest.raises(ValueError, match="--images"):
        heldout_images(bare, 4)
    with pytest.raises(ValueError, match="n_candidates"):
        ReproConfig(n_images=4, n_candidates=1).validate()
    with pytest.raises(ValueError, match="candidate set of 9"):
        candidate_sets(4, 9, np.random.default_rng(0))


def test_reproduce_on_a_folder_with_any_prior(tiny_prior_dir, digit_image, tmp_path):
    """A prior that ships nothing but its weights, on a folder of images (one unreadable),
    with out-of-domain folders, the DP-SGD mechanism and a small n."""
    from PIL import Image

    from audit_engine.cli import main
    from audit_engine.images import array_to_pil

    targets, ood = tmp_path / "targets", tmp_path / "ood"
    targets.mkdir(), ood.mkdir()
    rng = np.random.default_rng(1)
    for k in range(5):
        img = np.roll(digit_image.numpy()[0], k, axis=1)
        array_to_pil(torch.from_numpy(img)[None]).save(targets / f"t{k}.png")
        Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).save(ood / f"o{k}.png")
    (targets / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    rc = main(
        [
            "reproduce",
            "--prior",
            str(tiny_prior_dir),
            "--images",
            str(targets),
            "--ood",
            str(ood),
            "--n-images",
            "8",
            "--n-ood",
            "3",
            "--mu",
            "2",
            "40",
            "--n-draws",
            "3",
            "--steps",
            "2",
            "--lpips",
            "none",
            "--mechanism",
            "dpsgd",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["set_sizes"] == {IN_DOMAIN: 5, "out of domain: ood": 3}
    assert run["n_candidates"] == 5 and len(run["skipped"]) == 1 and "broken" in run["skipped"][0]
    summary = read_csv(out / "summary.csv")
    assert {r["set"] for r in summary} == {IN_DOMAIN, "out of domain: ood"}
    assert all(r["norm_attack_success"] is not None for r in summary if r["set"] == IN_DOMAIN)


def test_doc_blocks_are_filled_and_checked():
    from audit_engine.docblocks import block, fill

    doc = "a\n<!-- generated:x -->\nold\n<!-- /generated -->\nb\n<!-- generated:w -->\nw\n<!-- /generated -->\n"
    new = fill(doc, {"x": "new", "w": "w2", "y": "unused"})
    assert new == doc.replace("old", "new").replace("\nw\n", "\nw2\n")
    assert block(new, "x") == "new" and block(new, "w") == "w2"
    with pytest.raises(ValueError, match="z"):
        fill(doc + "<!-- generated:z -->\n<!-- /generated -->", {"x": "new", "w": ""})
    assert fill(doc, {"x": "new"}, every=False) == doc.replace("old", "new")


def test_cli_reproduce_on_the_embedded_prior(tmp_path):
    from audit_engine.cli import main

    rc = main(
        [
            "reproduce",
            "--n-images",
            "6",
            "--n-ood",
            "2",
            "--mu",
            "5",
            "50",
            "--n-draws",
            "4",
            "--steps",
            "2",
            "--lpips",
            "none",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(summary) == 2 * 3
    ind = [r for r in summary if r["set"] == IN_DOMAIN]
    # the embedded prior ships a digit classifier: attribute disclosure is measured
    assert all(0 <= float(r["attr_recon"]) <= 1 for r in ind)
    assert all(0 <= float(r["attr_noise_aware"]) <= 1 for r in ind)
    assert json.loads((tmp_path / "run.json").read_text())["n_candidates"] == 6  # min(10, 6)
    assert (tmp_path / "figure_attribute.png").is_file()
    assert not math.isnan(float(ind[1]["recon_ssim"]))


def test_heldout_subsets_are_balanced_across_classes():
    from audit_engine.attacker.priors import load_prior

    x, labels = heldout_images(load_prior(device="cpu"), 30)
    assert x.shape == (30, 1, 32, 32) and np.bincount(labels).tolist() == [3] * 10
