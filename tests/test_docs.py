"""Numbers in docs come from the run's files: the committed tables match the committed data."""
import json
import math
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_domain_table_matches_its_json():
    script = _script("evaluate_domain")
    data = json.loads((ROOT / "docs" / "domain-check.json").read_text())
    text = (ROOT / "docs" / "DOMAIN.md").read_text()
    table = text.split("<!-- domain-table:start -->")[1].split("<!-- domain-table:end -->")[0]
    assert table.strip().splitlines() == script.domain_table(data["rows"])
    for row in data["rows"]:
        assert 0 <= row["flagged"] <= row["n"]
        assert row["flagged_rate"] == row["flagged"] / row["n"]


def test_reproduction_doc_matches_its_run():
    """Every generated block of docs/REPRODUCTION.md is what the committed summary.csv and
    run.json give, and every eps in them is the accounting's eps of its mu."""
    from audit_engine import accounting
    from audit_engine.reproduce import fill_doc, read_csv, tables

    run_dir = ROOT / "docs" / "reproduction"
    summary = read_csv(run_dir / "summary.csv")
    info = json.loads((run_dir / "run.json").read_text())
    doc = (ROOT / "docs" / "REPRODUCTION.md").read_text()
    assert doc.count("<!-- generated:") >= 7
    assert fill_doc(doc, tables(summary, info)) == doc, "regenerate: python -m audit_engine reproduce ... --doc docs/REPRODUCTION.md"
    for row in summary:
        assert row["eps"] == accounting.eps_from_mu(row["mu"], info["config"]["delta"])
    assert info["set_sizes"]["in-domain (held-out)"] >= 200


def test_model_card_training_section_matches_training_json():
    """The embedded prior's training stages, times and commands are written from its
    training.json (scripts/model_card.py), never typed."""
    card = _script("model_card")
    folder = ROOT / "assets" / "prior-mnist32"
    info = json.loads((folder / "training.json").read_text())
    text = (folder / "README.md").read_text()
    assert card.fill(text, info) == text, "regenerate: python scripts/model_card.py"
    stages = card.stages(info)
    assert info["total_epochs_all_stages"] == sum(s["epochs"] for s in stages)
    assert math.isclose(info["total_training_minutes_all_stages"],
                        sum(s["training_minutes"] for s in stages))


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prior_comparison_doc_matches_its_runs_and_its_rule():
    """Each comparison table of docs/PRIOR-COMPARISON.md (the main candidate's, and each
    named experiment's, ``comparison-NAME``) is what its JSON gives, and its decision is the
    rule applied to the JSON's numbers; each candidate's training section is written from its
    training.json."""
    import re

    script = _script("compare_priors")
    card = _script("model_card")
    doc = (ROOT / "docs" / "PRIOR-COMPARISON.md").read_text()
    blocks = re.findall(r"<!-- comparison(?:-([a-z0-9]+))?:start -->", doc)
    assert "" in blocks
    for block in blocks:
        suffix = f"-{block}" if block else ""
        report = json.loads((ROOT / "docs" / f"prior-comparison{suffix}.json").read_text())
        start, end = script.markers(block)
        assert doc.split(start)[1].split(end)[0].strip() == script.render(report).strip(), block
        assert script.decision(report) == report["not_replaced_because"]
        assert report["n_heldout"] == 500 and len(report["seeds"]) >= 2
        for mu in report["mus"]:
            for key in ("id_successes", "attr_successes"):
                assert report["paired"][str(mu)][key]["n"] == 500 * len(report["seeds"])
        info = json.loads((ROOT / "docs" / f"prior-candidate-training{suffix}.json").read_text())
        assert card.fill(doc, info, candidate=True, block=block) == doc, \
            f"regenerate: python scripts/model_card.py --training ... --candidate --block {block}"


def test_domain_doc_claim_about_the_candidate_holds():
    """DOMAIN.md: the candidate prior's denoising profile alone let a flat image through;
    with the image statistics every flat image is flagged."""
    data = json.loads((ROOT / "docs" / "domain-check-candidate.json").read_text())
    flat = next(r for r in data["rows"] if r["set"].startswith("flat"))
    assert flat["flagged_profile_only"] < flat["n"] == flat["flagged"]


def test_retraining_commands_carry_each_stages_dropout():
    """train_prior.py keeps the --init prior's dropout unless told otherwise, so a stage's
    command names --dropout exactly where its dropout differs from the weights it starts
    from; a stage written before dropout existed had none."""
    card = _script("model_card")
    base = {"epochs": 1, "steps": 71, "lr": 2e-4, "warmup": 100, "ema_decay": 0.999, "seed": 0,
            "threads": 1, "training_minutes": 1.0, "final_loss_avg_last_200": 0.02,
            "batch_size": 64, "torch": "x"}
    info = {**base, "dropout": 0.0, "previous_stages": [
        dict(base), {**base, "dropout": 0.1}, {**base, "dropout": 0.1}]}
    commands = [line for line in card.render(info).splitlines() if "train_prior.py" in line]
    flags = [c.split("--dropout ")[1] if "--dropout" in c else None for c in commands]
    assert flags == [None, "0.1", None, "0"]
    table = [line for line in card.render(info).splitlines() if line.startswith("| 2 ")][0]
    assert "| 0.1 |" in table


def test_identification_estimators_table_matches_its_run():
    script = _script("identification_estimators")
    report = json.loads((ROOT / "docs" / "identification-estimators.json").read_text())
    doc = (ROOT / "docs" / "PRIOR-COMPARISON.md").read_text()
    assert doc.split(script.START)[1].split(script.END)[0].strip() == script.render(report).strip()
    assert len(report["rows"]) == len(report["mus"]) * len(script.ESTIMATORS)
    assert len(report["closeness"]) == len(report["mus"]) * len(script.CLOSENESS)
    for row in report["rows"] + report["closeness"]:
        assert math.isclose(row["diff"], row["b"] - row["a"], abs_tol=1e-9)
        assert row["ci95"][0] <= row["diff"] <= row["ci95"][1]


def test_closeness_of_a_reconstruction_to_its_digit_and_its_look_alikes():
    """closeness() on made-up digits: a perfect reconstruction correlates 1 with its digit and
    is identified whatever the decoys; one that copies another digit of its class correlates
    1 with that look-alike, not with the digit, and is identified at most when the look-alike
    is not among the 9 decoys drawn from the 29 others (probability 20/29)."""
    script = _script("identification_estimators")
    g = torch.Generator().manual_seed(0)
    held = torch.rand(30, 1, 8, 8, generator=g)
    labels = np.arange(30) % 3
    exact = script.closeness(held[[4, 4]], 4, held, labels)
    assert math.isclose(exact["target"], 1.0, abs_tol=1e-9)
    assert exact["identified_any_decoys"] == 1.0
    assert max(exact["closest_same_class"], exact["closest_other_class"]) < 0.99
    copy = script.closeness(held[[7]], 4, held, labels)  # 7 is of 4's class (7 % 3 == 4 % 3)
    assert math.isclose(copy["closest_same_class"], 1.0, abs_tol=1e-9)
    assert copy["target"] < 0.99 and copy["identified_any_decoys"] <= 20 / 29 + 1e-12


def test_prior_comparison_reading_of_the_closeness_table_holds():
    """The prose under the estimators table reads directions off the run: at mu 5 the
    candidate's reconstruction is closer to the digit (interval above 0), closer still to the
    closest same-class look-alike, which beats the digit itself for both priors, and the
    exact identification falls (interval below 0); at mu 2 it is no closer to the digit
    (interval across 0) and closer to digits of other classes."""
    report = json.loads((ROOT / "docs" / "identification-estimators.json").read_text())
    row = {(r["mu"], r["measure"]): r for r in report["closeness"]}
    target, same = row[(5.0, "target")], row[(5.0, "closest_same_class")]
    assert target["ci95"][0] > 0 and same["diff"] > target["diff"]
    assert same["a"] > target["a"] and same["b"] > target["b"]
    assert row[(5.0, "identified_any_decoys")]["ci95"][1] < 0
    lo, hi = row[(2.0, "target")]["ci95"]
    assert lo < 0 < hi and row[(2.0, "closest_other_class")]["ci95"][0] > 0


def test_sample_split_table_matches_its_run_and_the_comparison():
    """The split table is the run's; its two ends (a's network everywhere, b's everywhere)
    are the same samples and classifier as the dropout comparison, so they must give its
    confident rates, and the same digits and releases as the estimators' run, so they must
    give its exact identification; and the doc's reading holds: b's network above t = 600
    gives less than a quarter of b's gain and leaves the identification as it is, above 400
    between a quarter and three quarters with no significant loss, above 200 more than
    three quarters with a loss."""
    script = _script("sample_split")
    report = json.loads((ROOT / "docs" / "sample-split.json").read_text())
    doc = (ROOT / "docs" / "PRIOR-COMPARISON.md").read_text()
    assert doc.split(script.START)[1].split(script.END)[0].strip() == script.render(report).strip()
    compared = json.loads((ROOT / "docs" / "prior-comparison-dropout.json").read_text())
    assert (report["a"], report["b"]) == (compared["a"]["prior"], compared["b"]["prior"])
    rate = {r["split"]: r["confident"] for r in report["rows"]}
    assert math.isclose(rate[report["num_train_timesteps"]],
                        compared["a"]["svc_confident_samples"], abs_tol=1e-12)
    assert math.isclose(rate[0], compared["b"]["svc_confident_samples"], abs_tol=1e-12)
    # and the same digits and releases as the estimators' run: its exact identification
    estimated = json.loads((ROOT / "docs" / "identification-estimators.json").read_text())
    exact = {r["mu"]: r for r in estimated["closeness"] if r["measure"] == "identified_any_decoys"}
    ends = report["rows"][0]["identified"], report["rows"][-1]["identified"]
    assert (report["n_digits"], report["seed"]) == (estimated["n"], estimated["seed"])
    assert math.isclose(ends[0]["b"], exact[report["mu"]]["a"], abs_tol=1e-12)
    assert math.isclose(ends[1]["b"], exact[report["mu"]]["b"], abs_tol=1e-12)
    T, real = report["num_train_timesteps"], report["svc_confident_heldout"]
    gain = rate[0] - rate[T]
    assert gain > 0 and rate[600] - rate[T] < gain / 4 and rate[200] - rate[T] > 3 * gain / 4
    assert gain / 4 < rate[400] - rate[T] < 3 * gain / 4 and rate[400] < 0.9 * real
    ident = {r["split"]: r["identified"] for r in report["rows"]}
    assert ident[800]["diff"] == ident[600]["diff"] == 0.0
    assert ident[400]["ci95"][0] < 0 < ident[400]["ci95"][1] and ident[200]["ci95"][1] < 0


def test_split_unet_takes_each_timestep_from_its_network():
    script = _script("sample_split")

    class Const(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value, self.config = value, {"value": value}

        def forward(self, x, t):
            assert (t >= 600).all() if self.value == 1 else (t < 600).all()
            return type("Out", (), {"sample": torch.full_like(x, self.value)})()

    net = script.SplitUNet(Const(1.0), Const(2.0), 600)
    x = torch.zeros(4, 1, 2, 2)
    out = net(x, torch.tensor([0, 599, 600, 999])).sample
    assert out[:, 0, 0, 0].tolist() == [2.0, 2.0, 1.0, 1.0]
    assert net(x, 600).sample.eq(1.0).all() and net(x, 5).sample.eq(2.0).all()
    assert net.config == {"value": 2.0}  # the shape and channels are the low network's


def test_verdict_error_rates_doc_is_generated_and_in_step():
    """docs/VERDICTS.md's table and docs/verdict-error-rates.json are what
    scripts/verdict_error_rates.py computes now, and both error rates hold in them."""
    import subprocess
    import sys as _sys

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([_sys.executable, str(root / "scripts" / "verdict_error_rates.py"),
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((root / "docs" / "verdict-error-rates.json").read_text())
    for row in data["rows"]:
        assert row["false_disclosure"] <= 0.025 and row["false_protection"] <= 0.05
