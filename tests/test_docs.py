"""Numbers in docs come from the run's files: the committed tables match the committed data."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_domain_table_matches_its_json():
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_domain",
                                                  ROOT / "scripts" / "evaluate_domain.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
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
