"""Prepared priors (issue 28): ``prepare`` builds what an audit needs ahead of time with
progress on every phase; once the dashboard has launched no request builds a reference set;
a prior being prepared is refused at once while another prior's audit runs; work that cannot
finish within the server's limit is refused at once with its estimate."""

import threading

import gradio as gr
import pytest

from audit_engine.attacker.priors import load_prior
from audit_engine.audit import costs, reference
from audit_engine.audit.prepare import PHASES, Preparer, prepare
from audit_engine.audit.run import run_audit
from audit_engine.cli import main


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    reference._MEMORY.clear()
    yield tmp_path / "cache"
    reference._MEMORY.clear()


def test_prepare_builds_everything_with_progress_on_every_phase(cache, tiny_prior_dir):
    seen = []
    p = prepare(str(tiny_prior_dir), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # every phase reported, the reference set's own steps inside its share of the bar
    for lo, hi in PHASES.values():
        assert any(lo <= f <= hi for f in fractions)
    assert any("sampling the reference set" in m for _, m in seen)
    assert p.reference_images > 0 and p.per_eval_s > 0 and set(p.seconds) == set(PHASES)
    assert list((cache / "reference").glob("*.npz"))  # on disk for the next process
    assert costs.per_eval(load_prior(str(tiny_prior_dir))) is not None


def test_an_unprepared_reference_set_is_refused_not_built(cache, tiny_prior_dir, digit_image):
    prior = load_prior(str(tiny_prior_dir))
    with pytest.raises(reference.NotPrepared, match="prepare"):
        reference.reference_for(prior, build=False)
    assert not reference.is_prepared(prior) and not (cache / "reference").exists()
    prepare(prior)  # what the preparer does, outside any request
    res = run_audit(
        digit_image, mus=[1.0], prior=prior, steps=2, lpips=None, trials=2, max_trials=2
    )
    assert res.verdicts and reference.is_prepared(prior)


def test_prepare_command(cache, tiny_prior_dir, capsys):
    assert main(["prepare", str(tiny_prior_dir)]) == 0
    err, out = capsys.readouterr()[1], capsys.readouterr()[0]
    assert "ready" in err or "ready" in out
    assert main(["prepare", "nobody/nothing-here"]) == 2


def test_an_audit_completes_while_another_prior_is_being_prepared(
    cache, tiny_prior_dir, monkeypatch, digit_image
):
    """One prior's preparation is held; an embedded-prior audit through the page's handler
    completes meanwhile, and a request for the held prior is refused at once with its
    progress; when the preparation ends, that prior is ready."""
    import webui.priors
    from audit_engine.attacker.priors import REGISTRY, PriorSpec
    from audit_engine.images import array_to_pil
    from webui import handlers as h

    key = str(tiny_prior_dir)
    monkeypatch.setitem(REGISTRY, key, PriorSpec(key, "tiny test prior", key, "rings", 16))
    release, started = threading.Event(), threading.Event()

    def held(name, progress=None, **kw):
        if name != key:
            return prepare(name, progress=progress)
        progress(0.4, "sampling the reference set 20/50")
        started.set()
        release.wait(30)
        return prepare(name, progress=progress)

    prep = Preparer(["embedded", key], run=held)
    monkeypatch.setattr(webui.priors, "PREPARER", prep)
    prep.start(first=("embedded",))
    assert started.wait(30)
    assert prep.label(key) == "preparing (40%)"
    assert any("preparing (40%)" in label for label, k in h.prior_choices() if k == key)
    _, timer = h.refresh_priors()
    assert timer.active  # the selector keeps looking while a prior is prepared
    img = array_to_pil(load_prior().load_image("assets/examples/digit-3-1543.png"))
    out = list(
        h.run(
            img, "embedded", "eps", 1e-5, 2.0, "ddim", 3, 2, 0, None, progress=lambda *a, **k: None
        )
    )
    assert out and "eps =" in out[-1][4]  # the embedded audit answered meanwhile
    with pytest.raises(gr.Error, match=r"being prepared \(40%"):
        list(
            h.run(
                array_to_pil(digit_image),
                key,
                "eps",
                1e-5,
                2.0,
                "ddim",
                3,
                2,
                0,
                None,
                progress=lambda *a, **k: None,
            )
        )
    release.set()
    prep._thread.join(60)
    assert prep.status(key)["state"] == "ready" and prep.label(key) == ""
    prep.require(key)
    for k in list(REGISTRY):
        if k not in ("embedded", key):
            monkeypatch.delitem(REGISTRY, k)
    assert not h.refresh_priors()[1].active  # all settled: the selector stops looking


def test_every_prior_is_timed_before_any_is_prepared(cache, tiny_prior_dir, monkeypatch):
    """The background thread first times every offered prior's UNet (seconds), then prepares
    them one after another: the estimates exist before the long preparations."""
    order = []
    prep = Preparer(
        ["embedded", str(tiny_prior_dir)],
        run=lambda key, **k: order.append(("prepare", key)),
        measure=lambda key: order.append(("time", key)),
    )
    prep.start()
    prep._thread.join(30)
    assert order == [
        ("time", "embedded"),
        ("time", str(tiny_prior_dir)),
        ("prepare", "embedded"),
        ("prepare", str(tiny_prior_dir)),
    ]
    from audit_engine.audit.prepare import measure_cost

    assert measure_cost(str(tiny_prior_dir)) > 0
    assert costs.per_eval(load_prior(str(tiny_prior_dir))) is not None


def test_work_past_the_limit_is_refused_at_once_with_its_estimate(monkeypatch, tiny_prior_dir):
    from audit_engine.session import actions
    from webui import handlers as h

    monkeypatch.setattr(costs, "per_eval", lambda key: 2.0)  # a slow machine: 2 s each
    with pytest.raises(actions.Infeasible) as info:
        actions.check_feasible(
            str(tiny_prior_dir), 4000, "This audit", fewer="with fewer tries", limit=h.TIME_LIMIT
        )
    msg = str(info.value)
    assert "8,000 s" in msg and "2000 ms each" in msg and "GPU" in msg and "fewer tries" in msg
    actions.check_feasible(
        str(tiny_prior_dir), 10, "This audit", fewer="", limit=h.TIME_LIMIT
    )  # 20 s: fine
    monkeypatch.setattr(costs, "per_eval", lambda key: None)  # never measured: no refusal
    actions.check_feasible(str(tiny_prior_dir), 10**9, "This audit", fewer="", limit=h.TIME_LIMIT)


def test_tries_follow_the_prior():
    from webui import handlers as h

    tries, level = h.default_trials_for("embedded")
    assert tries.value == 8 and len(level.choices) == 2  # and the digit class to keep
    tries, level = h.default_trials_for("google/ddpm-celebahq-256")
    assert tries.value == 4 and len(level.choices) == 1  # no attribute classifier
    assert "no attribute classifier" in level.info


def test_offline_advice_names_the_current_cli(monkeypatch):
    from audit_engine.attacker.priors import PriorUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PriorUnavailable, match="hf download someone/not-cached"):
        load_prior("someone/not-cached")


def test_an_infeasible_prior_is_refused_with_its_estimate_even_while_prepared(
    cache, tiny_prior_dir, monkeypatch, digit_image
):
    """The cost is measured first in a preparation: from then on an audit that cannot finish
    is refused with its estimate, before the reference set is ready, without waiting."""
    import webui.priors
    from audit_engine.attacker.priors import REGISTRY, PriorSpec, default_device, default_dtype
    from audit_engine.images import array_to_pil
    from webui import handlers as h

    key = str(tiny_prior_dir)
    monkeypatch.setitem(REGISTRY, key, PriorSpec(key, "tiny test prior", key, "rings", 16))
    device = default_device()
    store = {costs.key_for(key, device, default_dtype(device)): 5.0}  # 5 s per evaluation
    monkeypatch.setattr(costs, "per_eval", lambda k: store.get(k))
    monkeypatch.setattr(costs, "probe", lambda prior: 5.0)  # and so does a probe now
    prep = Preparer(
        [key],
        run=lambda *a, **k: threading.Event().wait(30),  # never finishes
        measure=None,
    )
    monkeypatch.setattr(webui.priors, "PREPARER", prep)
    prep.start()
    with pytest.raises(
        gr.Error, match=r"UNet evaluations of this prior before its first verdict: about [\d,]+ s"
    ):
        list(
            h.run(
                array_to_pil(digit_image),
                key,
                "eps",
                1e-5,
                2.0,
                "ddim",
                3,
                2,
                0,
                None,
                progress=lambda *a, **k: None,
            )
        )
