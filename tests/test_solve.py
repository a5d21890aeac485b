"""Solving for the budget: the search's rule, the data set's bound, the command line, the
batch and the dashboard's action."""

import json
import math
from pathlib import Path

import pytest

from audit_engine.audit import solve
from audit_engine.audit.run import run_audit
from audit_engine.audit.solve import NotSolvable, dataset_budget, level_holds, solve_budget

ROOT = Path(__file__).resolve().parent.parent
Z = 1.959963984540054


def _wilson_upper(k: int, n: int) -> float:
    """Wilson's upper end written out here from its definition (not verdict.py's code)."""
    p = k / n
    return (p + Z * Z / (2 * n) + Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))) / (
        1 + Z * Z / n
    )


def test_first_failure_from_below_is_the_answer():
    """Between neighbouring budgets a verdict may waver; the answer stops below the first
    failure even when a larger budget holds again."""
    rows = {
        0.5: {"holds": True},
        1.0: {"holds": True},
        2.0: {"holds": False},
        3.0: {"holds": True},
        8.0: {"holds": False},
    }
    assert solve._answer(rows) == (1.0, 2.0)
    assert solve._answer({1.0: {"holds": False}}) == (None, 1.0)
    assert solve._answer({1.0: {"holds": True}, 2.0: {"holds": True}}) == (2.0, None)


def test_dataset_budget_holds_the_upper_bound_to_the_fraction():
    budgets = [float(v) for v in range(1, 201)]  # 200 images, mu_max 1 .. 200
    out = dataset_budget(budgets, max_fraction=0.05)
    allowed = max(k for k in range(201) if _wilson_upper(k, 200) <= 0.05)
    assert out["allowed_failures"] == allowed and out["mu_max"] == budgets[allowed]
    # at the answer, exactly `allowed` images fail (mu > their mu_max) and the bound holds
    failing = sum(b < out["mu_max"] for b in budgets)
    assert failing == allowed and _wilson_upper(failing, 200) <= 0.05
    # one more failing image would break it
    assert _wilson_upper(allowed + 1, 200) > 0.05
    # images that fail at every budget count as failing everywhere
    assert dataset_budget([None] * 20 + budgets, max_fraction=0.05)["mu_max"] is None


def test_dataset_budget_refuses_a_data_set_too_small_for_the_bound():
    out = dataset_budget([10.0] * 20, max_fraction=0.05)
    need = next(n for n in range(1, 1000) if _wilson_upper(0, n) <= 0.05)
    assert out["mu_max"] is None and f"at least {need} images" in out["reason"] and need == 73
    assert dataset_budget([3.0, 5.0, 9.0], max_fraction=0.6)["mu_max"] == 3.0  # 0 of 3 may fail


def test_solve_on_the_tiny_prior_brackets_the_level(tiny_prior, digit_image):
    res = solve_budget(digit_image, prior=tiny_prior, trials=6, steps=2)
    grid = {g["mu"]: g for g in res.grid}
    assert res.evaluations == len(grid) and res.trials == 6 and res.in_domain
    lo, hi = res.bracket
    assert res.mu_max == lo and grid[lo]["holds"]
    # protection shown at the answer and everywhere below it, for both attackers, each budget
    # measured with the same rule (passing budgets get the sequential tries too)
    for m, g in grid.items():
        if m <= lo:
            assert g["holds"] and g["gallery_level"] == g["prior_level"] == "not recognisable"
        assert g["prior_trials"] in (6, 12, 24, 48)
    if hi is not None:
        assert not grid[hi]["holds"] and hi / lo <= 1.25 + 1e-9
    if res.disclosure is not None:
        assert res.disclosure["mu"] > lo and res.disclosure["disclosed"]
    # an audit at the answer with the same seed and tries reaches the same verdict
    again = run_audit(digit_image, mus=[lo], prior=tiny_prior, trials=6, steps=2, lpips=None)
    assert level_holds(again.verdicts[0], "not recognisable")
    assert "Up to eps =" in res.sentence() and "95% confidence" in res.sentence()
    only = solve_budget(digit_image, prior=tiny_prior, trials=6, steps=2, attack="gallery")
    assert only.attackers == ["gallery"] and only.mu_max >= lo  # one attacker: never lower


def test_out_of_domain_is_refused_not_answered(tmp_path):
    from audit_engine.cli import main

    cat = ROOT / "assets" / "examples" / "ood-cat.png"
    with pytest.raises(NotSolvable, match="outside what the prior knows"):
        solve_budget(cat)
    assert main(["solve", str(cat), "--out", str(tmp_path)]) == 3
    data = json.loads((tmp_path / "solve.json").read_text())
    assert data["mu_max"] is None and data["in_domain"] is False and "outside" in data["refused"]


def test_solve_command_writes_solve_json(tmp_path):
    from audit_engine.cli import main

    digit = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
    assert main(["solve", str(digit), "--trials", "4", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "solve.json").read_text())
    assert set(data) >= {
        "prior",
        "level",
        "delta",
        "mu_max",
        "eps_max",
        "bracket",
        "evaluations",
        "trials",
        "in_domain",
    }
    assert data["prior"] == "embedded" and data["trials"] == 4 and data["in_domain"] is True
    grid = (tmp_path / "grid.csv").read_text().splitlines()
    assert 1 < len(grid) <= data["evaluations"] + 1 and grid[0].startswith("mu,eps,holds")
    with pytest.raises(SystemExit):
        main(["solve", str(digit), "--level", "safe", "--out", str(tmp_path)])


def test_batch_solve_gives_the_data_set_budget(tiny_prior_dir, digit_image, tmp_path):
    from audit_engine.batch.config import BatchConfig
    from audit_engine.batch.run import run_batch
    from audit_engine.images import array_to_pil

    folder = tmp_path / "in"
    folder.mkdir()
    for k, shift in enumerate((0, 2, 4)):
        array_to_pil(digit_image.roll(shift, dims=-1)).save(folder / f"d{k}.png")
    (folder / "bad.png").write_bytes(b"not an image")
    cfg = BatchConfig(prior=str(tiny_prior_dir), trials=4, steps=2, solve=True, max_fraction=0.6)
    r = run_batch(folder, tmp_path / "out", cfg)
    assert r["audited"] == 3 and r["errors"] == 1
    answer = json.loads((tmp_path / "out" / "solve.json").read_text())
    per_image = [
        json.loads((tmp_path / "out" / "images" / f"d{k}.png" / "solve.json").read_text())
        for k in range(3)
    ]
    # 0 of 3 failing keeps the upper bound under 0.6, one failing does not: the smallest
    # per-image budget is the data set's
    assert answer["mu_max"] == min(p["mu_max"] for p in per_image)
    assert "Up to eps" in answer["sentence"]
    rows = (tmp_path / "out" / "budgets.csv").read_text().splitlines()
    assert len(rows) == 4 and (tmp_path / "out" / "report.html").is_file()
    assert "still_holding_fraction" in (tmp_path / "out" / "summary.csv").read_text()
    # a rerun skips the complete images
    assert run_batch(folder, tmp_path / "out", cfg)["skipped_complete"] == 3
