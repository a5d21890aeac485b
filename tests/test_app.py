"""The dashboard's handlers, and the app end to end through gradio_client on loopback."""

import time
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from audit_engine.session import ladder as db
from webui import files as webfiles
from webui import handlers as h

ROOT = Path(__file__).resolve().parent.parent
DIGIT = next(iter(sorted((ROOT / "assets" / "examples").glob("digit-*.png"))), None)


def _no_progress(*a, **k):
    return None


@pytest.fixture()
def pil_digit(digit_image):
    from audit_engine.images import array_to_pil

    return array_to_pil(digit_image).convert("RGB").resize((64, 64))


@pytest.fixture()
def tiny_registered(tiny_prior_dir, monkeypatch):
    """The tiny prior offered by the app (the app only loads priors it offers)."""
    from audit_engine.attacker.priors import REGISTRY, PriorSpec

    key = str(tiny_prior_dir)
    monkeypatch.setitem(REGISTRY, key, PriorSpec(key, "tiny test prior", key, "rings", 16))
    return key


def test_run_then_move_then_exact(tiny_registered, pil_digit):
    prior = tiny_registered
    steps = list(
        h.run(pil_digit, prior, "eps", 1e-5, 2.0, "ddim", 3, 2, 0, None, progress=_no_progress)
    )
    # a 16-pixel prior: one batched pass (the first look, with its verdicts), then one more
    # answer if the sequential rule adds tries where a verdict is undetermined
    assert len(steps) in (1, 2)
    if len(steps) == 2:
        assert "adding tries" in steps[0][4] and "adding tries" not in steps[1][4]
    out = steps[-1]
    orig, priv, recons, spread, verdict, metrics, sim, bnd, verdicts = out[:9]
    ladder, session = out[-2:]
    # result images carry their finding as text (alt text) for screen readers
    *updates, shown = h.alt_texts(2.0, "eps", 1e-5, out[-1])
    alts = [u["alt_text"] for u in updates]
    assert shown["visible"] is True  # the results appear with the first audit
    assert "eps 100" in alts[2] and "try 1 of" in alts[1]
    assert alts[4].count("recognisable") + alts[4].count("undetermined") >= 8
    orig, priv, recons, spread, ladder = (
        Image.open(u) for u in (orig, priv, recons, spread, ladder)
    )
    assert orig.size[0] >= 128 and priv.size == orig.size and recons.size[0] > recons.size[1]
    assert spread.size == orig.size and verdicts["budgets"] and "domain" in verdicts
    assert "eps = 100" in verdict and "SSIM" in metrics and ladder.format == "PNG"
    assert session.ladder.budgets() and 100 == pytest.approx(
        session.exact.items()[0][1].samples[0].eps
    )
    moved = h.move(2.5, "eps", 1e-5, session)
    assert "nearest ladder point" in moved[4] and "316" in moved[-2]
    assert moved[-1] == pytest.approx(316.2)  # the box beside the slider: the budget itself
    assert moved[0] is not None and moved[6] is not None  # the move leaves original and plots
    assert type(moved[0]) is type(gr.skip()) and type(moved[6]) is type(gr.skip())
    exact = h.exact(2.5, "eps", 1e-5, session)
    assert "nearest ladder point" not in exact[4] and "316" in exact[4]


@pytest.mark.parametrize(
    "args,msg",
    [
        ((None, "embedded", "eps", 1e-5, 2.0, "ddim", 20, 1, 0), "Upload an image"),
        (("IMG", "embedded", "eps", 0.0, 2.0, "ddim", 20, 1, 0), "delta"),
        (("IMG", "embedded", "eps", 1e-5, 2.0, "ddim", 0, 1, 0), "steps"),
        (("IMG", "embedded", "eps", 1e-5, 2.0, "ddim", 20, 99, 0), "trials"),
        (
            ("IMG", "nobody/nothing", "eps", 1e-5, 2.0, "ddim", 20, 1, 0),
            "(?i)unknown prior 'nobody/nothing'",
        ),
        (("IMG", "/etc", "eps", 1e-5, 2.0, "ddim", 20, 1, 0), "(?i)unknown prior"),
    ],
)
def test_errors_are_messages(pil_digit, args, msg):
    args = tuple(pil_digit if a == "IMG" else a for a in args)
    with pytest.raises(gr.Error, match=msg):
        list(h.run(*args, None, progress=_no_progress))


def test_calculator_and_send():
    text, mu = h.calculator(0.5, 1.0, 1, 1e-5)
    assert mu == 2.0 and "PRV" in text
    assert h.send(mu, "mu", 1e-5) == pytest.approx(0.30103, abs=1e-4)
    with pytest.raises(gr.Error):
        h.calculator(0.0, 1.0, 1, 1e-5)


def test_mode_switch_keeps_the_budget():
    upd, box = h.switch_mode("mu", 2.0, 1e-5)  # eps = 100 -> mu
    mu, eps = db.slider_to_mu(upd.value, "mu", 1e-5)
    assert eps == pytest.approx(100, rel=1e-9)
    assert box.value == pytest.approx(mu, rel=1e-3) and box.label == "Type mu"  # mu itself


def test_end_to_end_through_gradio_client(app_server, monkeypatch):
    from gradio_client import Client, handle_file

    assert DIGIT is not None, "no example digits under assets/examples"
    client = Client(app_server, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    names = set(api["named_endpoints"])
    assert {"/audit", "/budget", "/exact_budget", "/dpsgd", "/report"} <= names
    t0 = time.perf_counter()
    out = client.predict(
        handle_file(str(DIGIT)), "embedded", "eps", 1e-5, 2.0, "ddim", 20, 1, 0, api_name="/audit"
    )
    first = time.perf_counter() - t0
    orig, priv, recons, spread, verdict, metrics, sim, bnd, verdicts, _, table, readout, box = out[
        :13
    ]
    ladder = out[13]
    assert "this image's own" in table  # the budgets plot's numbers, its text alternative
    assert "eps = 100 " in readout and box == 100
    assert Path(orig).is_file() and Path(priv).is_file() and Path(ladder).is_file()
    assert Path(recons).is_file() and "eps = 100" in verdict and "SSIM" in metrics
    assert Path(spread).is_file() and verdicts["prior"] == "embedded"
    assert {b["verdict"] for b in verdicts["budgets"]} <= {
        "recognisable",
        "partly recognisable",
        "not recognisable",
    }
    assert Image.open(orig).format == "PNG" and not Image.open(orig).info.get("exif")
    from audit_engine.attacker.priors import Prior

    calls, real = [], Prior.predict_eps  # the server runs in this process: count its UNet calls
    monkeypatch.setattr(
        Prior, "predict_eps", lambda self, x, t: calls.append(len(x)) or real(self, x, t)
    )
    moved = client.predict(2.4, "eps", 1e-5, api_name="/budget")
    assert calls == []  # a slider move is answered from the ladder, without the model
    assert "nearest ladder point" in moved[4] or "eps = 251" in moved[4]
    exact = client.predict(2.4, "eps", 1e-5, api_name="/exact_budget")
    assert "eps = 251.2" in exact[4]
    report = client.predict(2.4, "eps", 1e-5, api_name="/report")
    html = Path(report).read_text()
    assert "data:image/png;base64," in html and "embedded" in html
    text, mu = client.predict(0.5, 1.0, 1, 1e-5, api_name="/dpsgd")
    assert mu == 2.0
    assert calls  # the exact budget between ladder points ran the model
    print(f"first ladder {first:.2f} s (timings: bench/app_latency.py)")


def test_upload_clean_up_spares_files_other_sessions_still_use(tmp_path, monkeypatch):
    """Gradio names an upload's folder by its content: two sessions uploading the same
    picture share one file. Ending one session must not delete the other's upload."""
    import os
    from types import SimpleNamespace

    monkeypatch.setattr(webfiles, "_UPLOADS", {})
    shared, own, again = (tmp_path / n for n in ("shared.png", "own.png", "again.png"))
    for p in (shared, own, again):
        p.write_bytes(b"pixels")
    a, b = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    for path in (shared, own, again):
        webfiles.remember_upload(str(path), a)
    webfiles.remember_upload(str(shared), b)
    st = again.stat()  # uploaded again after session a used it: a newer file
    os.utime(again, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    webfiles.forget_uploads("a")
    assert shared.exists() and again.exists() and not own.exists()
    webfiles.forget_uploads("b")
    assert not shared.exists()


def test_result_images_are_written_once_under_their_content(tmp_path, monkeypatch):
    """Gradio rewrites pixel outputs in place on every answer; the app hands it finished
    files named by their content instead, so a file being served is never rewritten."""
    import numpy as np

    monkeypatch.setattr(webfiles, "IMAGE_DIR", tmp_path)
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    first = webfiles.png(pixels)
    mtime = Path(first).stat().st_mtime_ns
    inode = Path(first).stat().st_ino
    again = webfiles.png(pixels.copy())
    assert again == first and Path(first).stat().st_ino == inode  # not written again
    assert Path(first).stat().st_mtime_ns >= mtime  # touched: the sweep keeps it
    assert (np.asarray(Image.open(first)) == pixels).all()
    assert webfiles.png(pixels + 1) != first
    assert not list(tmp_path.glob(".*"))  # no staging file left behind


def test_the_page_streams_a_large_prior(tiny_registered, pil_digit, monkeypatch):
    """A prior above STREAM_ABOVE pixels: the /audit handler answers with the chosen budget
    first, then once per ladder budget (a generator: Gradio updates the page each time)."""
    import inspect

    monkeypatch.setattr(db, "STREAM_ABOVE", 8)
    assert inspect.isgeneratorfunction(h.run)
    outs = list(
        h.run(
            pil_digit,
            tiny_registered,
            "eps",
            1e-5,
            2.0,
            "ddim",
            2,
            1,
            0,
            None,
            progress=_no_progress,
        )
    )
    assert len(outs) == 1 + db.LADDER_SIZE
    assert "still being computed: 8 of 8" in outs[0][4] and "eps = 100" in outs[0][4]
    assert "still being computed" not in outs[-1][4]
    assert outs[-1][-1].pending == 0 and len(outs[-1][-1].ladder.budgets()) == db.LADDER_SIZE


def test_dataset_tab_audits_several_uploads(tiny_registered, digit_image, tmp_path, monkeypatch):
    """The "Data set" tab: several uploads (one broken) through the batch engine, the
    summary, the plot and the report; its files go at the session's end."""
    from types import SimpleNamespace

    from audit_engine.images import array_to_pil

    monkeypatch.setattr(h, "DATASET_DIR", tmp_path / "datasets")
    files = []
    for k in range(3):
        path = tmp_path / f"u{k}.png"
        array_to_pil(digit_image.roll(k, dims=2)).save(path)
        files.append(str(path))
    (tmp_path / "bad.png").write_text("nope")
    files.append(str(tmp_path / "bad.png"))
    request = SimpleNamespace(session_hash="s1")
    text, fig, report = h.dataset(
        files, tiny_registered, 1e-5, 2, 1, 0, request=request, progress=_no_progress
    )
    assert "3 images audited" in text and "1 unreadable" in text and "| eps 8 (mu " in text
    assert "recognisable or partly (95% interval)" in text  # what the share counts, said
    assert fig is not None and report.constructor_args["visible"] is True
    page = Path(report.constructor_args["value"]).read_text()
    assert "Batch privacy audit" in page
    with pytest.raises(gr.Error, match="at most|At most"):
        h.dataset(
            files * 20, tiny_registered, 1e-5, 2, 1, 0, request=request, progress=_no_progress
        )
    with pytest.raises(gr.Error, match="Upload"):
        h.dataset([], tiny_registered, 1e-5, 2, 1, 0, request=request, progress=_no_progress)
    h.cleanup(request)
    assert not (tmp_path / "datasets" / "s1").exists()


def test_find_the_largest_safe_budget(tiny_registered, pil_digit):
    """The dashboard's search: the answer in one sentence, the found budget and the one
    above side by side, the slider moved to the answer, and the session holding both."""
    from audit_engine.audit.solve import solve_budget
    from audit_engine.session import actions
    from audit_engine.session import ladder as db

    with pytest.raises(gr.Error, match="Run an audit first"):
        h.find_budget("not recognisable", "eps", 1e-5, None, progress=_no_progress)
    *_, session = list(
        h.run(
            pil_digit,
            tiny_registered,
            "eps",
            1e-5,
            2.0,
            "ddim",
            3,
            4,
            0,
            None,
            progress=_no_progress,
        )
    )[-1]
    text, image, slider, session2 = h.find_budget(
        "not recognisable", "eps", 1e-5, session, progress=_no_progress
    )
    direct = solve_budget(session.image, prior=tiny_registered, trials=4, steps=3)
    assert direct.sentence() in text and "tries each" in text
    for g in direct.grid:  # the table shows the search's own audits of the two budgets
        if g["mu"] in direct.results:
            assert f"{g['prior_successes']} of {g['prior_trials']}" in text
    exact = db.mu_to_slider(direct.mu_max, "eps", 1e-5)
    assert abs(slider - exact) <= 0.005 + 1e-9  # the slider's nearest step to the answer
    shown = [direct.mu_max] + ([direct.bracket[1]] if direct.bracket[1] else [])
    assert all(session2.result_for(m)[2] for m in shown)  # both budgets held by the session
    # at that step the page shows the answer itself (no other budget audited, one number)
    assert actions.on_view(session2, slider, "eps", 1e-5)[0] == direct.mu_max
    moved = h.move(slider, "eps", 1e-5, session2)
    assert (
        f"eps = {direct.eps_max:.4g} " in moved[-2] and f"Up to eps = {direct.eps_max:.4g} " in text
    )
    assert "nearest ladder point" not in moved[4]
    assert image.visible and Image.open(image.value["path"]).format == "PNG"


def test_the_tolerance_is_risk_first(tiny_registered, pil_digit):
    """The margin over guessing a visitor accepts sets the verdicts' and the search's rule:
    a larger one never gives a smaller largest safe budget."""
    from audit_engine.session import actions

    steps = list(
        h.run(
            pil_digit,
            tiny_registered,
            "eps",
            1e-5,
            2.0,
            "ddim",
            3,
            4,
            0,
            None,
            None,
            30,
            progress=_no_progress,
        )
    )
    assert "chance + 30%" in steps[-1][4]
    session = steps[-1][-1]
    assert session.settings.tolerance == pytest.approx(0.30)
    answers = {}
    for points in (2, 40):
        a = actions.search(
            session, "not recognisable", "eps", 1e-5, limits=actions.Limits(1e9), tolerance=points
        )
        answers[points] = a.mu_max or 0.0
        if a.mu_max is not None:
            assert f"chance + {points}%" in a.text
    assert answers[40] >= answers[2]
    with pytest.raises(ValueError, match="tolerance"):
        actions.search(
            session, "not recognisable", "eps", 1e-5, limits=actions.Limits(1e9), tolerance=90
        )
