"""The prior study's documents come from its runs' files (research/README.md says what was
asked and found). Outside the default run: python -m pytest -m research research/"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from audit_engine.docblocks import block as block_text
from research import compare_priors, identification_estimators, sample_split
from scripts import model_card

pytestmark = pytest.mark.research

HERE = Path(__file__).resolve().parent
DOC = HERE / "PRIOR-COMPARISON.md"
DATA = HERE / "data"


def test_prior_comparison_doc_matches_its_runs_and_its_rule():
    """Each comparison table of docs/PRIOR-COMPARISON.md (the main candidate's, and each
    named experiment's, ``comparison-NAME``) is what its JSON gives, and its decision is the
    rule applied to the JSON's numbers; each candidate's training section is written from its
    training.json."""
    import re

    script = compare_priors
    card = model_card
    doc = DOC.read_text()
    blocks = re.findall(r"<!-- generated:comparison(?:-([a-z0-9]+))? -->", doc)
    assert "" in blocks
    for block in blocks:
        suffix = f"-{block}" if block else ""
        report = json.loads((DATA / f"prior-comparison{suffix}.json").read_text())
        assert block_text(doc, script.block_name(block)).strip() == script.render(report).strip(), (
            block
        )
        assert script.decision(report) == report["not_replaced_because"]
        assert report["n_heldout"] == 500 and len(report["seeds"]) >= 2
        for mu in report["mus"]:
            for key in ("id_successes", "attr_successes"):
                assert report["paired"][str(mu)][key]["n"] == 500 * len(report["seeds"])
        info = json.loads((DATA / f"prior-candidate-training{suffix}.json").read_text())
        assert card.fill(doc, info, candidate=True, block=block) == doc, (
            f"regenerate: python scripts/model_card.py --training ... --candidate --block {block}"
        )


def test_domain_doc_claim_about_the_candidate_holds():
    """DOMAIN.md: the candidate prior's denoising profile alone let a flat image through;
    with the image statistics every flat image is flagged."""
    data = json.loads((DATA / "domain-check-candidate.json").read_text())
    flat = next(r for r in data["rows"] if r["set"].startswith("flat"))
    assert flat["flagged_profile_only"] < flat["n"] == flat["flagged"]


def test_identification_estimators_table_matches_its_run():
    script = identification_estimators
    report = json.loads((DATA / "identification-estimators.json").read_text())
    doc = DOC.read_text()
    assert block_text(doc, script.BLOCK).strip() == script.render(report).strip()
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
    script = identification_estimators
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
    report = json.loads((DATA / "identification-estimators.json").read_text())
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
    script = sample_split
    report = json.loads((DATA / "sample-split.json").read_text())
    doc = DOC.read_text()
    assert block_text(doc, script.BLOCK).strip() == script.render(report).strip()
    compared = json.loads((DATA / "prior-comparison-dropout.json").read_text())
    assert (report["a"], report["b"]) == (compared["a"]["prior"], compared["b"]["prior"])
    rate = {r["split"]: r["confident"] for r in report["rows"]}
    assert math.isclose(
        rate[report["num_train_timesteps"]], compared["a"]["svc_confident_samples"], abs_tol=1e-12
    )
    assert math.isclose(rate[0], compared["b"]["svc_confident_samples"], abs_tol=1e-12)
    # and the same digits and releases as the estimators' run: its exact identification
    estimated = json.loads((DATA / "identification-estimators.json").read_text())
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
    script = sample_split

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
