"""Load (marker slow: `python -m pytest -m slow tests/test_load.py`): 20 concurrent
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
