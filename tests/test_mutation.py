"""The mutation check (scripts/mutation_check.py): every mutant of maths/ and of the verdict
rule is killed by the tests that guard it, and no mutant's target has gone stale. Minutes:
run with ``python -m pytest -m mutation``."""

import pytest

pytestmark = pytest.mark.mutation


def test_every_mutant_is_killed(capsys):
    from scripts.mutation_check import main

    status = main([])
    out = capsys.readouterr().out
    assert status == 0, out
