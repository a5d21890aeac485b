"""Numbers in docs come from the run's files: the committed tables match the committed data."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_domain_table_matches_its_json():
    data = json.loads((ROOT / "docs" / "domain-check.json").read_text())
    text = (ROOT / "docs" / "DOMAIN.md").read_text()
    table = text.split("<!-- domain-table:start -->")[1].split("<!-- domain-table:end -->")[0]
    rows = [line for line in table.strip().splitlines()[2:]]
    assert len(rows) == len(data["rows"])
    for line, row in zip(rows, data["rows"]):
        assert line == (f"| {row['set']} | {'in' if row['in_domain_expected'] else 'out'} | "
                        f"{row['n']} | {row['flagged']} ({row['flagged_rate']:.1%}) |")
