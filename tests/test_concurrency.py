"""One model run at a time, a fast slider, bounded session caches, per-prior loading and
network checks that recover: the dashboard under many threads."""

from __future__ import annotations

import dataclasses
import random
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from audit_engine import caches
from audit_engine.attacker import metrics, priors
from audit_engine.audit.run import run_audit
from audit_engine.caches import LRU, Memo
from audit_engine.session import ladder as db
from audit_engine.session import views

ROOT = Path(__file__).resolve().parent.parent
DIGITS = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def eager_threads():
    """Switch threads every microsecond (Python's default is 5 ms), so that a race between
    a reader and a writer shows within seconds instead of once in a while."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@pytest.fixture()
def model_runs(monkeypatch):
    """Every model run the dashboard starts, as (start, end) times; each run is held for
    0.2 s longer so that overlapping runs cannot slip between each other."""
    spans, real = [], db._run
    lock = threading.Lock()

    def instrumented(*args, **kwargs):
        start = time.perf_counter()
        try:
            time.sleep(0.2)
            return real(*args, **kwargs)
        finally:
            with lock:
                spans.append((start, time.perf_counter()))

    monkeypatch.setattr(db, "_run", instrumented)
    return spans


def _in_threads(fn, n: int) -> None:
    """fn(0), ..., fn(n - 1), each in its own thread, all at once; returns when all are done."""
    threads = [threading.Thread(target=fn, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)


def _overlaps(spans):
    spans = sorted(spans)
    return [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]


def test_two_model_runs_never_overlap(app_server, model_runs):
    """Audits, exact budgets and comparisons from three users at once: the model runs one
    at a time, whichever event asked for it."""
    from gradio_client import Client, handle_file

    errors = []

    def user(k):
        try:
            client = Client(app_server, verbose=False)
            client.predict(
                handle_file(str(DIGITS[k % len(DIGITS)])),
                "embedded",
                "eps",
                1e-5,
                2.0,
                "ddim",
                3,
                1,
                k,
                api_name="/audit",
            )
            jobs = [
                client.submit(1.5 + 0.1 * k, "eps", 1e-5, api_name="/exact_budget"),
                client.submit(["eps 8"], 1e-5, api_name="/compare"),
            ]
            for job in jobs:
                job.result(timeout=120)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    _in_threads(user, 3)
    assert not errors, errors
    assert len(model_runs) >= 6  # 3 audits, 3 exact budgets, 3 comparisons (some cached)
    assert not _overlaps(model_runs), _overlaps(model_runs)


def test_fast_slider_on_one_session_gives_no_error(app_server, eager_threads, monkeypatch):
    """Many /budget and /exact_budget calls of one session, interleaved from four threads,
    while exact budgets are being computed and stored. The model runs of exact budgets are
    replaced by a relabelled ladder budget, so that hundreds of them fit in seconds."""
    from concurrent.futures import CancelledError

    from gradio_client import Client, handle_file

    real, ladder = db._run, {}

    def fast(x, mus, settings, **kwargs):
        if not ladder:  # the audit's ladder: the real thing
            ladder["result"] = real(x, mus, settings, **kwargs)
            return ladder["result"]
        res = ladder["result"]
        first = res.at(res.budgets()[0])
        return dataclasses.replace(
            res,
            verdicts=[],
            samples=[dataclasses.replace(s, mu=float(m)) for m in mus for s in first],
        )

    monkeypatch.setattr(db, "_run", fast)
    client = Client(app_server, verbose=False)
    client.predict(
        handle_file(str(DIGITS[0])),
        "embedded",
        "eps",
        1e-5,
        2.0,
        "ddim",
        2,
        1,
        0,
        api_name="/audit",
    )
    errors, answers, superseded = [], [], []

    def drag(k):
        rng = random.Random(k)
        for i in range(50):
            value = round(rng.uniform(-1.0, 5.0), 3)
            api = "/exact_budget" if i % 2 else "/budget"
            try:
                out = client.predict(value, "eps", 1e-5, api_name=api)
                answers.append(out[4])
            except CancelledError:
                # trigger_mode="always_last": an exact budget still waiting when a newer one
                # of the same session arrives is dropped (what a dragged slider wants)
                superseded.append(api)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

    _in_threads(drag, 4)
    assert not errors, errors[:3]
    assert set(superseded) <= {"/exact_budget"}
    assert len(answers) + len(superseded) == 200 and all("eps =" in a for a in answers)
    assert len(answers) >= 100 + 1  # every move, and at least one exact budget


def _fake_runs(monkeypatch, session):
    """db._run answering at once with the ladder's first budget relabelled as the asked mu."""
    template = session.ladder.at(session.ladder.budgets()[0])

    def fake(x, mus, settings, **kwargs):
        samples = [dataclasses.replace(s, mu=float(m)) for m in mus for s in template]
        return dataclasses.replace(session.ladder, samples=samples, verdicts=[])

    monkeypatch.setattr(db, "_run", fake)


def test_session_cache_stays_bounded(tiny_prior, digit_image, monkeypatch):
    session = db.compute_ladder(
        digit_image, db.Settings(prior=tiny_prior.source, steps=2, trials=1, lpips=None)
    )
    _fake_runs(monkeypatch, session)
    for i in range(500):
        session, res = db.compute_exact(session, 0.5 + i * 0.01)
        assert len(session.exact) <= db.EXACT_CACHE_SIZE
    assert len(session.exact) == db.EXACT_CACHE_SIZE
    assert views.view_budget(session, 0.5 + 499 * 0.01).exact  # the latest ones are kept
    assert not views.view_budget(session, 0.5).exact  # the oldest were dropped


def test_slider_reads_while_budgets_are_stored(tiny_prior, digit_image, monkeypatch, eager_threads):
    """Slider moves read a session while another thread stores exact budgets into it (the
    race of a queue=False listener against a queued one)."""
    session = db.compute_ladder(
        digit_image, db.Settings(prior=tiny_prior.source, steps=2, trials=1, lpips=None)
    )
    _fake_runs(monkeypatch, session)
    state = {"session": session}
    stop, errors = threading.Event(), []

    def store():
        i = 0
        while not stop.is_set():
            state["session"], _ = db.compute_exact(state["session"], 0.3 + (i % 997) * 0.01)
            i += 1

    def read(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                views.view_budget(state["session"], rng.uniform(0.3, 10.0))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=store)] + [
        threading.Thread(target=read, args=(k,)) for k in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_lru_is_least_recently_used_and_copies():
    import copy
    import pickle

    lru = LRU(2)
    lru.put(1, "a")
    lru.put(2, "b")
    assert lru.find(lambda k: k == 1) == (1, "a")  # 1 is now the most recent
    lru.put(3, "c")
    assert [k for k, _ in lru.items()] == [1, 3] and 2 not in lru
    for twin in (copy.deepcopy(lru), pickle.loads(pickle.dumps(lru))):
        assert twin.items() == lru.items() and twin.size == 2
    with pytest.raises(ValueError):
        LRU(0)


def test_a_slow_prior_download_does_not_block_a_cached_prior(tiny_prior, digit_image, monkeypatch):
    release, entered = threading.Event(), threading.Event()
    real = priors._resolve_folder

    def resolve(name):
        if name == "slow/prior":
            entered.set()
            release.wait(30)  # a download that takes its time
            raise priors.PriorUnavailable("slow/prior: test download ended")
        return real(name)

    monkeypatch.setattr(priors, "_resolve_folder", resolve)
    outcome = []
    slow = threading.Thread(
        target=lambda: outcome.append(
            pytest.raises(priors.PriorUnavailable, priors.load_prior, "slow/prior", device="cpu")
        )
    )
    slow.start()
    try:
        assert entered.wait(10)
        t0 = time.perf_counter()
        again = priors.load_prior(tiny_prior.source, device="cpu", dtype=tiny_prior.dtype)
        res = run_audit(
            digit_image,
            mus=[5.0],
            prior=tiny_prior.source,
            steps=2,
            trials=1,
            lpips=None,
            verdicts=False,
        )
        other = priors.load_prior(tiny_prior.source, device="cpu", dtype=torch.float64)
        waited = time.perf_counter() - t0
        assert again is tiny_prior and res.samples and other.dtype == torch.float64
        assert slow.is_alive() and waited < 20  # done while the download still hangs
    finally:
        release.set()
        slow.join(30)
    assert outcome and "test download ended" in str(outcome[0].value)


def test_a_failed_prior_load_is_not_remembered(tmp_path):
    with pytest.raises(priors.PriorUnavailable):
        priors.load_prior(str(tmp_path), device="cpu")  # not a model folder (yet)
    assert not any(k[0] == str(tmp_path) for k in priors._PRIORS._values)


def test_offline_start_recovers_after_the_retry_time(monkeypatch, tmp_path):
    """The Hub check and the LPIPS build fail while offline; once the network is back they
    succeed again after RETRY_S, without a restart."""
    clock = _Clock()
    monkeypatch.setattr(
        caches,
        "_REACHABLE",
        Memo(failed=lambda ok: not ok, retry_after=caches.RETRY_S, clock=clock),
    )
    online = {"up": False}

    class _Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def connect(address, timeout=None):
        if not online["up"]:
            raise OSError("network is unreachable")
        return _Conn()

    monkeypatch.setattr(caches.socket, "create_connection", connect)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    for var in ("HF_HUB_OFFLINE", "AUDIT_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert priors.prior_status("google/ddpm-cifar10-32")[0] == "unavailable"
    online["up"] = True
    assert priors.prior_status("google/ddpm-cifar10-32")[0] == "unavailable"  # remembered
    clock.t += caches.RETRY_S + 1
    assert priors.prior_status("google/ddpm-cifar10-32")[0] == "needs download"

    # LPIPS: the same, through the metric's own cache
    import lpips

    monkeypatch.setattr(
        metrics,
        "_LPIPS",
        Memo(failed=lambda m: not m.available, retry_after=caches.RETRY_S, clock=clock),
    )
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))  # no backbone
    monkeypatch.setattr(lpips, "LPIPS", lambda **kw: torch.nn.Identity())
    online["up"] = False
    clock.t += caches.RETRY_S + 1
    assert not metrics.get_lpips("alex").available
    online["up"] = True
    assert not metrics.get_lpips("alex").available  # remembered for RETRY_S
    clock.t += caches.RETRY_S + 1
    assert metrics.get_lpips("alex").available


def test_every_model_handler_shares_one_group_and_is_gpu_wrapped():
    """The handlers that reach db._run: each in the one "model" concurrency group, each
    wrapped for ZeroGPU (spaces.GPU) like the others."""
    import app

    model_fns = {"run", "exact", "compare", "dataset", "find_budget"}
    groups = {}
    for dep in app.demo.fns.values():
        name = getattr(dep.fn, "__name__", "")
        if name in model_fns:
            groups[name] = (dep.concurrency_id, dep.concurrency_limit)
    assert set(groups) == model_fns
    assert set(groups.values()) == {("model", app.MODEL_CONCURRENCY)}
    from webui import handlers

    assert {
        name
        for name in dir(handlers)
        if callable(getattr(handlers, name, None))
        and hasattr(getattr(handlers, name), "gpu_seconds")
    } == model_fns
