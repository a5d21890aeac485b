"""Load (marker slow: `python -m pytest -m slow tests/test_load.py`): a three-minute soak
(bench/soak.py); 20 concurrent
gradio_client clients x 5 requests, each with its own image, against the app on loopback;
and a full queue answering "busy". The same code is bench/load_test.py."""

import pytest

pytestmark = pytest.mark.slow


def test_twenty_clients_get_their_own_results():
    from bench.load_test import run_load_test

    r = run_load_test(clients=20, requests=5, steps=5)
    assert r["errors"] == [] and r["lost"] == 0 and r["wrong_image"] == 0
    assert r["answered_own_image"] == 100 and r["server_alive"]
    assert r["growth"] < 0.10, f"server memory grew {r['growth']:.1%}"


def test_a_full_queue_answers_busy():
    from bench.load_test import queue_check

    r = queue_check(waiting=2, clients=8)
    ok = r["outcomes"].count("ok")
    busy = [o for o in r["outcomes"] if "queue" in o.lower() and "full" in o.lower()]
    assert ok >= 1 and busy, r["outcomes"]
    assert ok + len(busy) == len(r["outcomes"]), r["outcomes"]
    assert r["server_alive"]


def test_a_three_minute_soak_keeps_the_main_job():
    """bench/soak.py for three minutes, with a CPU-hungry process beside the server and a
    cost store that says 100x the real cost: no refusal of the embedded audit, no unexpected
    error, memory not rising in the last third."""
    from bench.soak import render, run_soak

    r = run_soak(3, clients=3, poison=100)
    print(render(r))
    assert r["server_alive"] and r["unexpected"] == 0, r["unexpected_examples"]
    assert r["refused_audits"] == 0
    assert (
        sum(o["outcomes"].get("ok", 0) for a, o in r["actions"].items() if a.startswith("audit"))
        >= 3
    )
    assert not r["memory_rising"], r["memory_mb"]
