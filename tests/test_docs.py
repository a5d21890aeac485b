"""Numbers in docs come from the run's files: the committed tables match the committed data."""

import json
import math
from pathlib import Path

from audit_engine.docblocks import block

ROOT = Path(__file__).resolve().parent.parent


def test_domain_table_matches_its_json():
    script = _script("evaluate_domain")
    data = json.loads((ROOT / "docs" / "domain-check.json").read_text())
    text = (ROOT / "docs" / "DOMAIN.md").read_text()
    table = block(text, "domain-table")
    assert table.strip().splitlines() == script.domain_table(data["rows"])
    for row in data["rows"]:
        assert 0 <= row["flagged"] <= row["n"]
        assert row["flagged_rate"] == row["flagged"] / row["n"]


def test_reproduction_doc_matches_its_run():
    """Every generated block of docs/REPRODUCTION.md is what the committed summary.csv and
    run.json give, and every eps in them is the accounting's eps of its mu."""
    from audit_engine.docblocks import fill
    from audit_engine.maths import accounting
    from audit_engine.reproduce import read_csv, tables

    run_dir = ROOT / "docs" / "reproduction"
    summary = read_csv(run_dir / "summary.csv")
    info = json.loads((run_dir / "run.json").read_text())
    doc = (ROOT / "docs" / "REPRODUCTION.md").read_text()
    assert doc.count("<!-- generated:") >= 7
    assert fill(doc, tables(summary, info)) == doc, (
        "regenerate: python -m audit_engine reproduce ... --doc docs/REPRODUCTION.md"
    )
    for row in summary:
        assert row["eps"] == accounting.eps_from_mu(row["mu"], info["config"]["delta"])
    assert info["set_sizes"]["in-domain (held-out)"] >= 200


def test_model_card_training_section_matches_training_json():
    """The embedded prior's training stages, times and commands are written from its
    training.json (scripts/model_card.py), never typed."""
    card = _script("model_card")
    folder = ROOT / "audit_engine" / "assets" / "prior-mnist32"
    info = json.loads((folder / "training.json").read_text())
    text = (folder / "README.md").read_text()
    assert card.fill(text, info) == text, "regenerate: python scripts/model_card.py"
    stages = card.stages(info)
    assert info["total_epochs_all_stages"] == sum(s["epochs"] for s in stages)
    assert math.isclose(
        info["total_training_minutes_all_stages"], sum(s["training_minutes"] for s in stages)
    )


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retraining_commands_carry_each_stages_dropout():
    """The retired train_prior.py kept the --init prior's dropout unless told otherwise, so a stage's
    command names --dropout exactly where its dropout differs from the weights it starts
    from; a stage written before dropout existed had none."""
    from audit_engine.training.card import training_section

    base = {
        "epochs": 1,
        "steps": 71,
        "lr": 2e-4,
        "warmup": 100,
        "ema_decay": 0.999,
        "seed": 0,
        "threads": 1,
        "training_minutes": 1.0,
        "final_loss_avg_last_200": 0.02,
        "batch_size": 64,
        "torch": "x",
    }
    info = {
        **base,
        "dropout": 0.0,
        "previous_stages": [dict(base), {**base, "dropout": 0.1}, {**base, "dropout": 0.1}],
    }
    commands = [
        line
        for line in training_section(info).splitlines()
        if line.strip().startswith(".venv/bin/python scripts/train_prior.py")
    ]
    flags = [c.split("--dropout ")[1] if "--dropout" in c else None for c in commands]
    assert flags == [None, "0.1", None, "0"]
    table = [line for line in training_section(info).splitlines() if line.startswith("| 2 ")][0]
    assert "| 0.1 |" in table


def test_verdict_error_rates_doc_is_generated_and_in_step():
    """docs/VERDICTS.md's table and docs/verdict-error-rates.json are what
    scripts/verdict_error_rates.py computes now, and both error rates hold in them."""
    import subprocess
    import sys as _sys

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(
        [_sys.executable, str(root / "scripts" / "verdict_error_rates.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((root / "docs" / "verdict-error-rates.json").read_text())
    for row in data["rows"]:
        assert row["false_disclosure"] <= 0.025 and row["false_protection"] <= 0.05
    for row in data["demonstrated_validity"]:  # a demonstrated budget is a valid lower bound
        assert min(row["valid"].values()) >= 0.975, row


def test_docs_link_only_to_files_in_the_repository():
    """Every relative link of the README, docs/ and research/ resolves to a file of the
    repository, and nothing names a file outside it (the design notes a clone lacks)."""
    import re

    pages = [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "research").glob("*.md"),
        ROOT / "audit_engine" / "assets" / "prior-mnist32" / "README.md",
    ]
    broken = []
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path = (page.parent / target).resolve()
            if not path.exists() or ROOT not in path.parents:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
        if "shared/DESIGN" in text or "../shared" in text:
            broken.append(f"{page.relative_to(ROOT)} names ../shared")
    assert not broken, broken


def test_readme_is_what_a_visitor_needs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 130
    commands = [
        line.strip() for line in text.splitlines() if line.startswith("    python3 -m venv")
    ]
    assert len(commands) == 2 and "app.py" in commands[0] and "pytest" in commands[1]
    assert "docs/dashboard.png" in text and (ROOT / "docs" / "dashboard.png").stat().st_size < 1e6


def test_the_embedded_prior_recipe_is_one_train_prior_command_in_step_everywhere():
    """docs/PRIOR.md and the model card print the same recipe, from training/digits.py."""
    from audit_engine.training.digits import RECIPE, recipe_markdown

    assert sum(line.startswith("privacy-audit train-prior") for line in RECIPE) == 1
    assert block((ROOT / "docs" / "PRIOR.md").read_text(), "recipe") == recipe_markdown()
    card = (ROOT / "audit_engine" / "assets" / "prior-mnist32" / "README.md").read_text()
    assert recipe_markdown() in card


def test_training_throughput_in_performance_doc_is_its_run():
    from bench.training import BLOCK, render

    data = json.loads((ROOT / "docs" / "training-throughput.json").read_text())
    assert block((ROOT / "docs" / "PERFORMANCE.md").read_text(), BLOCK) == render(data)
    assert data["rows"][0]["ratio"] == 1.0 and all(r["images_per_s"] > 0 for r in data["rows"])


def test_soak_and_memory_bound_in_the_docs_are_their_runs():
    """The soak's table in docs/PERFORMANCE.md and the memory at the bounds in
    docs/DEPLOYMENT.md are what the runs wrote (docs/soak.json, docs/memory-bound.json)."""
    from bench import memory_bound, soak

    data = json.loads((ROOT / "docs" / "soak.json").read_text())
    assert block((ROOT / "docs" / "PERFORMANCE.md").read_text(), soak.BLOCK) == soak.render(data)
    assert data["minutes"] >= 60 and data["passed"]
    mem = json.loads((ROOT / "docs" / "memory-bound.json").read_text())
    assert block(
        (ROOT / "docs" / "DEPLOYMENT.md").read_text(), memory_bound.BLOCK
    ) == memory_bound.render(mem)


def test_letters_table_in_the_domain_doc_is_its_run():
    """docs/DOMAIN.md's letters block and docs/letters.json are what
    scripts/evaluate_letters.py computes now; every class claim says what it assumes."""
    import subprocess
    import sys

    from audit_engine.audit.verdict import NEAR_DOMAIN_CAVEAT

    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate_letters.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((ROOT / "docs" / "letters.json").read_text())
    best = max(r["letters_rejected"] for r in data["candidates"].values())
    assert best < 0.9 and "docs/DOMAIN.md" in NEAR_DOMAIN_CAVEAT  # no check separates: said
