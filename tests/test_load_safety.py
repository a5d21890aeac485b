"""The server keeps doing its main job under load: estimates that cannot lock it out, a time
limit that ends the sequential rule honestly instead of failing, and every failure a
sentence."""

from __future__ import annotations

import json
import logging
import math
import sys
from types import SimpleNamespace

import gradio as gr
import pytest

from audit_engine.attacker.priors import EMBEDDED, PriorUnavailable, load_prior
from audit_engine.audit import costs
from audit_engine.audit.reference import NotPrepared
from audit_engine.audit.run import run_audit
from audit_engine.images import ImageError
from audit_engine.progress import Deadline, TimeLimit, seconds_left, within
from audit_engine.session import actions
from audit_engine.session import ladder as db
from webui import handlers as h


@pytest.fixture()
def fresh_costs(tmp_path, monkeypatch):
    """An empty cost store of its own, and this process's estimates forgotten (a fresh
    server process)."""
    monkeypatch.setattr(costs, "store_path", lambda: tmp_path / "costs.json")
    costs.forget()
    yield tmp_path / "costs.json"
    costs.forget()


def _poison(path, key, per_eval):
    path.write_text(json.dumps({key: {"per_eval_s": per_eval, "runs": 1}}))


def test_a_poisoned_store_does_not_refuse_the_embedded_audit(fresh_costs):
    """The store on disk says 100x the real cost: the default audit would be refused on that
    estimate alone; the probe measures the prior now and the audit is accepted."""
    prior = load_prior(EMBEDDED)
    real = costs.measure(prior)  # what an evaluation costs here now
    costs.forget()
    evaluations = db.first_look_evaluations(8, 10, "ddim")
    poisoned = max(
        100 * real, 2 * h.TIME_LIMIT / evaluations
    )  # over the limit, whatever the machine
    _poison(fresh_costs, costs.key_of(prior), poisoned)
    assert costs.source(prior) == "file" and costs.per_eval(prior) == pytest.approx(poisoned)
    assert poisoned * evaluations > h.TIME_LIMIT  # the seed alone would refuse
    actions.check_feasible(
        EMBEDDED, evaluations, "This audit", fewer="", limit=h.TIME_LIMIT
    )  # not refused
    assert costs.source(prior) == "probe" and costs.per_eval(prior) < poisoned / 10


def test_the_file_only_seeds_a_fresh_process(fresh_costs):
    """Another process rewriting the store (a batch under load) never changes this process's
    estimate once it has one; only this process's own runs and probes do."""
    key = costs.key_for("some-prior", "cpu", "float32")
    _poison(fresh_costs, key, 0.01)
    assert costs.per_eval(key) == pytest.approx(0.01)
    _poison(fresh_costs, key, 5.0)  # another process writes
    assert costs.per_eval(key) == pytest.approx(0.01)
    prior = SimpleNamespace(name="some-prior", device="cpu", dtype="torch.float32")
    costs.record(prior, 100, 3.0)  # this process's own run replaces the seed
    assert costs.per_eval(key) == pytest.approx(0.03) and costs.source(key) == "run"
    costs.record(prior, 100, 1.0)  # then an average of its runs
    assert costs.per_eval(key) == pytest.approx(0.02)
    costs.forget()  # a new process starts from what this one wrote
    assert costs.per_eval(key) == pytest.approx(0.02)


def test_a_truly_slow_prior_is_still_refused(fresh_costs, monkeypatch):
    """When the probe itself measures a slow machine, the refusal stands, with its numbers."""
    prior = load_prior(EMBEDDED)
    _poison(fresh_costs, costs.key_of(prior), 10.0)
    monkeypatch.setattr(costs, "measure", lambda p, **k: costs.record(p, 1, 10.0, direct=True))
    with pytest.raises(actions.Infeasible, match=r"about [\d,]+ s on this server .*limit of 300 s"):
        actions.check_feasible(
            EMBEDDED,
            db.first_look_evaluations(8, 10, "ddim"),
            "This audit",
            fewer="with fewer tries",
            limit=h.TIME_LIMIT,
        )


def test_only_the_first_look_must_fit():
    """The estimate that may refuse counts the first look (and the domain check), never the
    sequential rule's worst case, which is added within the time left."""
    first = db.first_look_evaluations(8, 10, "ddim")
    assert first == 10 * 9 * 8 + 20
    assert db.ladder_evaluations(8, 10, "ddim") > 2 * first


def test_a_deadline_passes_through_parts_of_the_work():
    clock = SimpleNamespace(t=0.0)
    d = Deadline(10, clock=lambda: clock.t)
    part = within(within(d, 0.2, 0.8, "a"), 0.0, 0.5)
    clock.t = 4.0
    assert seconds_left(part) == pytest.approx(6.0) and seconds_left(None) == math.inf
    part(0.5, "fine")
    clock.t = 11.0
    with pytest.raises(TimeLimit):
        part(0.6, "too late")


def _undetermined_audit(**kw):
    """An embedded digit at budgets where the first look leaves verdicts undetermined."""
    from pathlib import Path

    digit = sorted(
        (Path(__file__).resolve().parent.parent / "assets" / "examples").glob("digit-*.png")
    )[0]
    return run_audit(digit, mus=[0.6, 1.0, 1.5, 2.2], trials=4, steps=3, lpips=None, **kw)


def test_an_audit_past_the_limit_returns_partial_honest_verdicts(monkeypatch):
    """Whether the next look would not fit the time left (by the estimate) or the deadline
    ends it midway: the audit returns the verdicts of its last complete look, undetermined
    at K tries, and says why, instead of failing."""
    full = _undetermined_audit()
    open_ = [v for v in full.verdicts if v.trials > 4]
    assert open_, "this check needs a budget the first look leaves undetermined"

    # 1. the estimate says the next look does not fit
    monkeypatch.setattr(costs, "estimate", lambda prior, n: 1e6)
    part = _undetermined_audit(progress=Deadline(600))
    assert all(v.trials == 4 for v in part.verdicts)
    assert "undetermined at 4 tries" in part.stopped and "time limit" in part.stopped
    assert part.verdicts_json()["stopped"] == part.stopped
    for v in part.verdicts:
        first = full.verdict_at(v.mu)
        if first.trials == 4:  # decided at the first look: the same verdict
            assert v.verdict == first.verdict
        else:
            assert v.verdict == "undetermined"
    assert part.undetermined() == []  # nothing more will be added to it

    # 2. the estimate fits but the deadline passes during the next look: that look is dropped
    monkeypatch.setattr(costs, "estimate", lambda prior, n: 0.0)
    clock = SimpleNamespace(t=0.0, calls=0)

    def tick():
        clock.calls += 1
        return clock.t

    deadline = Deadline(600, clock=tick)
    real = deadline.__call__

    def say(f, m):
        if "undetermined at 4 tries" in m:
            clock.t = 1000.0  # the next look starts, and the time runs out during it
        real(f, m)

    say.left = deadline.left
    part = _undetermined_audit(progress=say)
    assert all(v.trials == 4 for v in part.verdicts)
    assert "dropped" in part.stopped
    assert len(part.samples) == 4 * 4


# ------------------------------------------------------------------ every failure a sentence
FAILURES = [
    ValueError("the budget must be a number"),
    ImageError("cannot read this image"),
    PriorUnavailable("the prior cannot be loaded here"),
    NotPrepared("the prior is being prepared (40%)"),
    TimeLimit("late"),
    MemoryError(),
    RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"),
    AttributeError("'Attribute' object has no attribute 'lower'"),
    KeyError("x"),
    ZeroDivisionError("division by zero"),
    OSError(28, "No space left on device"),
]


def _session():
    from audit_engine.session.ladder import Settings

    return SimpleNamespace(settings=Settings(), image=None, ladder=None, pending=0, adding=0)


def _raise(exc):
    def boom(*a, **k):
        raise exc

    return boom


# (API name, handler, arguments, the name in the handler's module to make fail: "actions",
# the engine's door, fails in every function)
ENDPOINTS = [
    ("audit", h.run, ("IMG", EMBEDDED, "eps", 1e-5, 2.0, "ddim", 10, 8, 0, None), "settings"),
    ("budget", h.move, (2.0, "eps", 1e-5, "SESSION"), "actions"),
    ("exact_budget", h.exact, (2.0, "eps", 1e-5, "SESSION"), "actions"),
    ("dpsgd", h.calculator, (1.0, 0.01, 1000, 1e-5), "actions"),
    ("report", h.report, (2.0, "eps", 1e-5, "SESSION", None), "actions"),
    ("compare", h.compare, (["eps 8"], 1e-5, "SESSION"), "actions"),
    ("find_budget", h.find_budget, ("no attribute", "eps", 1e-5, "SESSION"), "actions"),
    ("dataset", h.dataset, (["a.png"], EMBEDDED, 1e-5, 10, 8, 0), "settings"),
    ("prior list", h.refresh_priors, (), "prior_choices"),
    ("alt texts", h.alt_texts, (2.0, "eps", 1e-5, "SESSION"), "actions"),
    ("upload", h.choose_files, (["a.png"],), "remember_upload"),
]


class _Broken:
    """A stand-in for the engine's door (session.actions) whose every function raises
    ``exc`` (its constants and types are the real ones)."""

    def __init__(self, exc):
        self.exc = exc

    def __getattr__(self, name):
        from audit_engine.session import actions

        real = getattr(actions, name)
        return _raise(self.exc) if callable(real) and not isinstance(real, type) else real


@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("api,fn,args,target", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_endpoint_turns_every_failure_into_a_sentence(
    api, fn, args, target, exc, monkeypatch, caplog, pil_image
):
    broken = _Broken(exc) if target == "actions" else _raise(exc)
    module = sys.modules[fn.__module__]  # the handler's own module (the priors' list has its own)
    monkeypatch.setattr(module, target, broken)
    args = tuple(pil_image if a == "IMG" else _session() if a == "SESSION" else a for a in args)
    with caplog.at_level(logging.ERROR, logger="audit.web"):
        with pytest.raises(gr.Error) as info:
            out = fn(*args)
            if hasattr(out, "__next__"):
                list(out)
    text = info.value.message
    assert text and text[0].isupper() and text.rstrip("*").endswith((".", ")")), text
    assert "Traceback" not in text and "Error" != text.strip()
    foreseen = isinstance(exc, (ValueError, ImageError, PriorUnavailable, NotPrepared))
    if foreseen and str(exc):
        assert str(exc)[1:] in text  # the engine's own message
    if isinstance(exc, TimeoutError):
        assert "limit of" in text
    if not foreseen and not isinstance(exc, TimeoutError):
        assert any(r.exc_info for r in caplog.records), (
            "an unforeseen failure is logged with its traceback"
        )
        assert "went wrong" in text or "out of memory" in text


@pytest.fixture()
def pil_image():
    from PIL import Image

    return Image.new("L", (32, 32), 128)


def test_every_event_of_the_page_answers_in_sentences():
    """Every Python function wired to an event of the page goes through the adapter."""
    import app

    fns = [
        f.fn
        for f in app.demo.fns.values()  # ours, not Gradio's own (examples)
        if f.fn is not None and not getattr(f.fn, "__module__", "").startswith("gradio")
    ]
    assert len(fns) > 15
    bare = [getattr(f, "__name__", f) for f in fns if not getattr(f, "sentences", False)]
    assert not bare, f"events whose exceptions would reach Gradio's generic error: {bare}"


def test_the_class_search_answers(monkeypatch):
    """The search for "class not revealed" on a digit answers with a sentence (it raised
    AttributeError from every digit)."""
    from pathlib import Path

    digit = sorted(
        (Path(__file__).resolve().parent.parent / "assets" / "examples").glob("digit-*.png")
    )[0]
    *_, session = list(
        h.run(
            str(digit),
            EMBEDDED,
            "eps",
            1e-5,
            2.0,
            "ddim",
            2,
            2,
            0,
            None,
            progress=lambda *a, **k: None,
        )
    )[-1]
    text, *_ = h.find_budget("no attribute", "eps", 1e-5, session, progress=lambda *a, **k: None)
    assert text.startswith("**") and ("class" in text or "budget" in text), text


def test_the_soak_calls_a_leak_a_rise_and_a_plateau_with_peaks_not():
    from bench.soak import classify, rising

    assert rising([(t, 900 + 2 * t) for t in range(0, 600, 5)])  # grows to the end
    plateau = [(t, 1000 + (250 if t % 100 == 0 else 0)) for t in range(0, 600, 5)]
    assert not rising(plateau)  # transient peaks on a plateau
    assert not rising([(0, 900), (5, 950)])  # too short to tell
    assert classify("This audit needs about 740 UNet evaluations") == "refused: estimate"
    assert classify("Something went wrong on the server while running the audit") == "unexpected"
    assert (
        classify("Error") == "unexpected" and classify("Upload an image first.") == "refused: other"
    )


def test_files_of_sessions_that_never_said_goodbye_are_swept(tmp_path, monkeypatch):
    """An API client never closes a browser: its report and data-set folders and uploads go
    once it has been inactive for the session TTL; an active session's stay."""
    import os
    import time as clock

    from webui import files

    reports, datasets = tmp_path / "reports", tmp_path / "datasets"
    for top in (reports, datasets):
        (top / "gone").mkdir(parents=True)
        (top / "live").mkdir(parents=True)
    upload = tmp_path / "upload.png"
    upload.write_bytes(b"x")
    monkeypatch.setattr(files, "_SESSIONS_SWEPT", [0.0])
    files.remember_upload(str(upload), SimpleNamespace(session_hash="gone"))
    files.touch_session("live")
    monkeypatch.setitem(files._SEEN, "gone", clock.time() - 7200)
    old = clock.time() - 7200
    os.utime(reports / "gone", (old, old))
    files.sweep_sessions((reports, datasets), max_age=3600)
    assert not (reports / "gone").exists() and not (datasets / "gone").exists()
    assert not upload.exists() and (reports / "live").exists() and (datasets / "live").exists()
    files.forget_session("live", (reports, datasets))
