"""run_audit end to end on the tiny prior, and the command line."""

import json

import numpy as np
import pytest
import torch

from audit_engine.audit.run import run_audit
from audit_engine.cli import main
from audit_engine.images import array_to_pil
from audit_engine.maths import accounting


def test_run_audit_records(tiny_prior, digit_image):
    res = run_audit(
        digit_image, mus=[0.5, 5, 50], prior=tiny_prior, trials=2, max_trials=2, steps=5, lpips=None
    )
    recs = res.records()
    assert len(recs) == 6 and res.trials == 2 and len(res.verdicts) == 3
    assert res.clip_norm > 0 and "median norm" in res.clip_source and res.looks == [2]
    for r, s in zip(recs, res.samples):
        assert r["eps"] == pytest.approx(accounting.eps_from_mu(r["mu"], 1e-5))
        assert r["sigma"] == pytest.approx(res.clip_norm / r["mu"], rel=1e-6)  # public
        assert set(r["noisy"]) == set(r["recon"]) == {"mse", "psnr", "ssim", "lpips"}
        assert s.reconstruction.shape == digit_image.shape
        assert 0 <= float(s.privatized.min()) and float(s.privatized.max()) <= 1
    # t* decreases as the budget grows (less noise)
    t = [r["t_star"] for r in recs if r["trial"] == 0]
    assert t[0] > t[1] > t[2]
    json.dumps(recs)  # serialisable


def test_common_random_numbers_across_budgets(tiny_prior, digit_image):
    res = run_audit(
        digit_image,
        mus=[1, 10, 100],
        prior=tiny_prior,
        steps=2,
        lpips=None,
        trials=2,
        verdicts=False,
        clip_norm=2 * float(digit_image.norm()),
    )
    xis = [
        (s.observation - digit_image) / s.sigma
        for s in res.at(1) + res.at(10) + res.at(100)
        if s.trial == 0
    ]
    for xi in xis[1:]:
        torch.testing.assert_close(xi, xis[0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(res.at(1)[1].observation, res.at(1)[0].observation)  # trials differ
    other = run_audit(
        digit_image,
        mus=[1],
        prior=tiny_prior,
        steps=2,
        lpips=None,
        seed=1,
        trials=1,
        verdicts=False,
    )
    assert not torch.allclose((other.samples[0].observation - digit_image), xis[0])


def test_eps_budgets_and_dpsgd_mechanism(tiny_prior, digit_image):
    res = run_audit(
        digit_image,
        epsilons=[10, 1000],
        delta=1e-6,
        prior=tiny_prior,
        steps=2,
        mechanism="dpsgd",
        lpips=None,
    )
    for s, e in zip(res.samples, [10, 1000]):
        assert s.eps == e and s.delta == 1e-6
        assert s.mu == pytest.approx(accounting.mu_from_eps(e, 1e-6))
    # the real DP-SGD step leaks noise of the analytic size
    resid = res.samples[1].observation - digit_image
    assert float(resid.pow(2).mean().sqrt()) == pytest.approx(res.samples[1].sigma, rel=0.25)


def test_sequential_rule_adds_tries_only_where_undetermined(tiny_prior, digit_image):
    """First look: 2 tries everywhere; more only at budgets whose headline is undetermined
    by the prior attacker, never beyond the cap; first_look_only stops after the first look
    and continue_audit finishes it to the same result (a new one; the first is unchanged)."""
    from audit_engine.audit.run import continue_audit

    kw = dict(mus=[0.05, 3.0, 300.0], prior=tiny_prior, steps=2, lpips=None, trials=2, max_trials=8)
    full = run_audit(digit_image, **kw)
    assert full.looks == [2, 4, 8]
    for v in full.verdicts:
        n = len(full.at(v.mu))
        assert n in (2, 4, 8) and v.trials == n
        if n > 2:  # tries were added: the first look left it undetermined by the prior attacker
            assert v.gallery.level != "recognisable"
        if n < 8:
            assert v.verdict != "undetermined" or v.identification.level != "undetermined"
    assert full.verdict_at(0.05).identification.proven  # the DP bound decides at once
    part = run_audit(digit_image, **kw, first_look_only=True)
    assert all(len(part.at(m)) == 2 for m in part.budgets())
    before = part.verdicts_json()
    done = continue_audit(part)
    assert done.verdicts_json()["budgets"] == full.verdicts_json()["budgets"]
    assert part.verdicts_json() == before  # a result is a value: continuing returns a new one


def test_lpips_random_backbone_in_audit(tiny_prior, digit_image):
    from audit_engine.attacker.metrics import get_lpips

    res = run_audit(
        digit_image,
        mus=[2],
        prior=tiny_prior,
        steps=2,
        lpips=get_lpips("alex", random_backbone=True),
    )
    assert res.lpips_available and res.samples[0].recon["lpips"] is not None


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(mus=[1], epsilons=[1]), "either"),
        (dict(mus=[]), "no budgets"),
        (dict(mus=[-1]), "mu=-1"),
        (dict(epsilons=[float("nan")]), "eps="),
        (dict(mus=[1], delta=0), "delta=0"),
        (dict(mus=[1], trials=0), "trials"),
        (dict(mus=[1], trials=10**6), "trials"),
        (dict(mus=[1], steps=0), "steps"),
        (dict(mus=[1], sampler="euler"), "sampler"),
        (dict(mus=[1], mechanism="laplace"), "mechanism"),
    ],
)
def test_bad_arguments(tiny_prior, digit_image, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        run_audit(digit_image, prior=tiny_prior, lpips=None, **kwargs)


def test_cli_writes_grid_and_metrics(tiny_prior_dir, digit_image, tmp_path, capsys):
    img = tmp_path / "digit.png"
    array_to_pil(digit_image).resize((40, 40)).convert("RGB").save(img)
    out = tmp_path / "out"
    rc = main(
        [
            "audit",
            str(img),
            "--eps",
            "10",
            "100",
            "1000",
            "--prior",
            str(tiny_prior_dir),
            "--steps",
            "3",
            "--trials",
            "2",
            "--max-trials",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    recs = json.loads((out / "metrics.json").read_text())
    assert len(recs) == 6
    for r in recs:
        for key in ("mu", "eps", "delta", "t_star", "trial", "beyond_range"):
            assert key in r
        for who in ("noisy", "recon"):
            assert set(r[who]) >= {"mse", "psnr", "ssim", "lpips"}
    assert (out / "grid.png").stat().st_size > 0 and (out / "metrics.csv").read_text().count(
        "\n"
    ) == 7
    from PIL import Image

    assert Image.open(out / "grid.png").size[0] > 5 * 16
    printed = capsys.readouterr().out
    assert "SSIM rec" in printed and "wrote" in printed and "clip_C(x) + (C / mu) xi" in printed
    # the same self-contained report as the dashboard's, every budget in it
    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and "data:image/png;base64," in report
    assert all(f"{e:g}" in report for e in (10, 100, 1000)) and "report.html" in printed
    assert str(tiny_prior_dir) not in report and str(tmp_path) not in report  # no server paths


def test_cli_reports_errors(tmp_path, tiny_prior_dir, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("<html>not an image</html>")
    rc = main(
        ["audit", str(bad), "--mu", "1", "--prior", str(tiny_prior_dir), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be read as an image" in err and "bad.png" not in err
    rc = main(["audit", str(tmp_path / "missing.png"), "--mu", "1", "--out", str(tmp_path)])
    assert rc == 2 and "no such image file" in capsys.readouterr().err
    rc = main(["audit", str(bad), "--mu", "1", "--prior", "nope/nothing", "--out", str(tmp_path)])
    assert rc == 2


def test_cli_writes_verdicts_and_samples(tiny_prior_dir, digit_image, tmp_path):
    img = tmp_path / "digit.png"
    array_to_pil(digit_image).save(img)
    out = tmp_path / "out"
    rc = main(
        [
            "audit",
            str(img),
            "--mu",
            "0.5",
            "50",
            "--prior",
            str(tiny_prior_dir),
            "--steps",
            "2",
            "--trials",
            "3",
            "--save-samples",
            "--lpips",
            "none",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    v = json.loads((out / "verdicts.json").read_text())
    assert v["prior"] == str(tiny_prior_dir)
    assert set(v["domain"]) >= {"in_domain", "score", "percentile", "method"}
    assert isinstance(v["domain"]["in_domain"], bool)
    assert [b["mu"] for b in v["budgets"]] == [0.5, 50]
    assert v["release"]["clip_norm"] > 0 and "add or remove" in v["release"]["adjacency"]
    assert v["looks"] == [3, 6, 12, 24] and v["tolerance"] == 0.1
    for b in v["budgets"]:
        assert set(b) >= {
            "mu",
            "eps",
            "delta",
            "trials",
            "identification",
            "gallery",
            "attribute",
            "verdict",
            "by",
        }
        i, g = b["identification"], b["gallery"]
        assert i["trials"] == b["trials"] and b["trials"] in (3, 6, 12, 24)
        assert i["candidates"] == 10 and i["chance"] >= 0.1 and g["trials"] == 4096
        for a in (i, g):
            assert 0 <= a["ci95"][0] <= a["rate"] <= a["ci95"][1] <= 1
            assert a["lower"] <= a["rate"] <= a["upper"]
        assert b["attribute"] is None  # the tiny prior ships no classifier
        assert (
            b["verdict"]
            in ("recognisable", "partly recognisable", "undetermined", "not recognisable")
            and b["by"]
        )
    import numpy as np

    z = np.load(out / "samples.npz")
    n = sum(b["trials"] for b in v["budgets"])
    assert z["original"].shape == (1, 16, 16) and sorted(set(z["mu"].tolist())) == [0.5, 50]
    assert z["releases"].shape == z["reconstructions"].shape == (n, 1, 16, 16)
    assert z["lookalikes"].shape == (n, 9, 1, 16, 16) and z["releases"].dtype == np.float32
    assert z["releases"].min() < 0 or z["releases"].max() > 1  # unclipped, as received
    c = float(z["clip_norm"])
    assert c == pytest.approx(v["release"]["clip_norm"])
    np.testing.assert_allclose(z["sigma"], c / z["mu"], rtol=1e-9)
    # anyone can run their own attack: the release minus the clipped image is N(0, sigma^2)
    x = z["original"]
    xc = x * min(1.0, c / float(np.linalg.norm(x)))
    resid = (z["releases"] - xc) / z["sigma"][:, None, None, None]
    assert abs(float(resid.std()) - 1) < 0.05 and z["reconstructions"].max() <= 1
    assert not list(out.glob(".*.tmp"))  # written atomically, no leftovers


def test_results_depend_on_image_and_seed_only(tiny_prior, digit_image):
    a = run_audit(digit_image, mus=[2], prior=tiny_prior, steps=2, lpips=None, trials=2)
    b = run_audit(digit_image.clone(), mus=[2], prior=tiny_prior, steps=2, lpips=None, trials=2)
    for s, t in zip(a.samples, b.samples):
        assert torch.equal(s.observation, t.observation)
        assert torch.equal(s.reconstruction, t.reconstruction)
    assert a.verdicts_json()["budgets"] == b.verdicts_json()["budgets"]


def test_image_statistics_against_numpy():
    """The domain check's image statistics, computed again with numpy on the grey image."""
    from audit_engine.audit.reference import image_statistics

    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    x[2] = 0.25  # a flat image: contrast log(1/255)
    got = image_statistics(x)
    grey = x.numpy().astype(np.float64).mean(axis=1).reshape(3, -1)
    assert np.allclose(got[:, 0], grey.mean(axis=1))
    assert np.allclose(got[:, 1], np.log(grey.std(axis=1) + 1 / 255))
    assert got[2, 1] == pytest.approx(-np.log(255))
