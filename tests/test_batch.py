"""Batch audits of a folder: outputs per image, errors, summary and report; resuming after a
rerun or an interruption; the same numbers locally and on a local Ray cluster."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from audit_engine.batch import run as batch_run
from audit_engine.batch.config import BatchConfig
from audit_engine.batch.run import run_batch
from audit_engine.images import array_to_pil


@pytest.fixture()
def folder(tmp_path, digit_image):
    """Three images (one of them a large photo-like PNG) and a text file posing as a PNG."""
    d = tmp_path / "images"
    d.mkdir()
    for k in range(3):
        array_to_pil(digit_image.roll(k, dims=2)).save(d / f"img-{k}.png")
    (d / "broken.png").write_text("not an image")
    return d


def _cfg(tiny_prior_dir) -> BatchConfig:
    return BatchConfig(mus=[0.5, 50.0], prior=str(tiny_prior_dir), trials=2, steps=2)


def _numbers(out: Path) -> dict:
    return {
        d.name: (
            json.loads((d / "metrics.json").read_text()),
            json.loads((d / "verdicts.json").read_text()),
        )
        for d in sorted((out / "images").iterdir())
    }


def test_batch_writes_every_image_the_errors_the_summary_and_the_report(
    folder, tmp_path, tiny_prior_dir
):
    out = tmp_path / "out"
    r = run_batch(folder, out, _cfg(tiny_prior_dir))
    assert (r["files"], r["audited"], r["errors"]) == (4, 3, 1)
    for k in range(3):
        d = out / "images" / f"img-{k}.png"
        verdicts = json.loads((d / "verdicts.json").read_text())
        assert [b["mu"] for b in verdicts["budgets"]] == [0.5, 50.0]  # the audit's schema
        tries = sum(b["trials"] for b in verdicts["budgets"])  # the sequential rule's tries
        assert len(json.loads((d / "metrics.json").read_text())) == tries >= 2 * 2
    errors = list(csv.DictReader((out / "errors.csv").open()))
    assert [e["file"] for e in errors] == ["broken.png"] and "image" in errors[0]["reason"]
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [float(s["mu"]) for s in summary] == [0.5, 50.0]
    assert all(int(s["images"]) == 3 for s in summary)
    for s in summary:  # every level counted, over the images judged
        levels = [
            int(s[k])
            for k in ("recognisable", "partly_recognisable", "undetermined", "not_recognisable")
        ]
        assert sum(levels) == int(s["judged"])
        assert int(s["exposed"]) == levels[0] + levels[1]
        if s["exposed_fraction"]:
            assert float(s["exposed_lo"]) <= float(s["exposed_fraction"]) <= float(s["exposed_hi"])
    page = (out / "report.html").read_text()
    assert "<html lang='en'>" in page and "most exposed" in page and "plotly" in page.lower()
    assert not list(out.rglob(".*.tmp"))  # no temporary file left behind


def test_rerun_resumes_and_never_trusts_a_half_written_file(
    folder, tmp_path, tiny_prior_dir, monkeypatch
):
    out = tmp_path / "out"
    cfg = _cfg(tiny_prior_dir)
    calls = []
    real = batch_run.audit_image

    def interrupted(path, out_, cfg_, prior=None):
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second image is being audited
        calls.append(path.name)
        return real(path, out_, cfg_, prior)

    monkeypatch.setattr(batch_run, "audit_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_batch(folder, out, cfg)
    assert calls == ["broken.png"] or calls == ["img-0.png"]
    monkeypatch.setattr(batch_run, "audit_image", real)
    # a process killed while writing leaves a temporary file and no verdicts.json
    half = out / "images" / "img-2.png"
    half.mkdir(parents=True, exist_ok=True)
    (half / ".verdicts.json.tmp").write_text('{"budgets": [')
    (half / "metrics.json").write_text("[]")
    first = run_batch(folder, out, cfg)
    assert first["skipped_complete"] + first["audited"] + first["errors"] == 4
    assert (half / "verdicts.json").is_file()
    assert json.loads((half / "metrics.json").read_text())  # rewritten, not trusted
    again = run_batch(folder, out, cfg)
    assert (again["audited"], again["skipped_complete"], again["errors"]) == (0, 3, 1)


def test_ray_gives_the_same_numbers_as_local(folder, tmp_path, tiny_prior_dir):
    pytest.importorskip("ray")
    cfg = _cfg(tiny_prior_dir)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    run_batch(folder, local, cfg)
    r = run_batch(folder, on_ray, cfg, engine="ray", workers=2)
    assert (r["audited"], r["errors"]) == (3, 1)
    assert _numbers(on_ray) == _numbers(local)
    assert (on_ray / "summary.csv").read_text() == (local / "summary.csv").read_text()


def test_batch_command_line(folder, tmp_path, tiny_prior_dir, capsys):
    from audit_engine.cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "batch",
            str(folder),
            "--mu",
            "1",
            "--prior",
            str(tiny_prior_dir),
            "--trials",
            "1",
            "--steps",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "3 audited now" in capsys.readouterr().out
    assert main(["batch", str(tmp_path / "nowhere"), "--mu", "1", "--out", str(out)]) == 2


def test_the_summary_gives_the_images_budgets_distributions(tmp_path):
    """summary.csv's quantiles of the images' own and demonstrated budgets are those of the
    images' verdicts.json, and the report lists the images by their own budget."""
    import json

    from audit_engine.batch.summary import _own_budget_section, summarize_batch

    own = [2.0, 4.0, 6.0, 8.0]
    for k, o in enumerate(own):
        d = tmp_path / "images" / f"img{k}"
        d.mkdir(parents=True)
        budget = {
            "mu": 2.0,
            "eps": 8.0,
            "delta": 1e-5,
            "verdict": "not recognisable",
            "own_mu": o / 4,
            "own_eps": o,
            "attribute": None,
            "gallery": {"demonstrated_eps": o / 2},
            "identification": {"demonstrated_eps": 0.0},
        }
        (d / "verdicts.json").write_text(json.dumps({"budgets": [budget], "domain": None}))
        (d / "metrics.json").write_text(json.dumps([]))
    (row,) = summarize_batch(tmp_path)
    assert row["own_eps_p50"] == pytest.approx(np.quantile(own, 0.5))
    assert row["own_eps_p10"] == pytest.approx(np.quantile(own, 0.1))
    assert row["gallery_demonstrated_eps_p90"] == pytest.approx(np.quantile(own, 0.9) / 2)
    assert row["prior_demonstrated_eps_p50"] == 0.0
    images = [
        {"name": f"img{k}", "verdicts": {"budgets": [{"mu": 2.0, "own_mu": o / 4}]}}
        for k, o in enumerate(own)
    ]
    section = _own_budget_section(images, top=2)
    assert section.index("img3") < section.index("img2") and "img0" not in section
