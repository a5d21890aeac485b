"""Reliability and security through the app's API, as a browser reaches it: hostile files and
parameters, file access outside Gradio's cache, upload clean-up, metadata and logs.

The app runs as a separate process (``python app.py``) with its own cache folder and a
log file, so the tests see what a deployment would: its files, its logs, its memory.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from hostile import MARKER, _exif_jpeg, file_cases, parameter_cases
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DIGIT = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from bench.common import free_port, start_app

    cache = tmp_path_factory.mktemp("gradio-cache")
    log_path = tmp_path_factory.mktemp("log") / "app.log"
    port = free_port()
    with open(log_path, "wb") as log:
        # a short heartbeat: the server notices a closed session within seconds
        proc = start_app(
            port, {"GRADIO_TEMP_DIR": str(cache), "GRADIO_HEARTBEAT_INTERVAL": "1"}, log=log
        )
        try:
            yield {
                "url": f"http://127.0.0.1:{port}/",
                "cache": cache,
                "log": log_path,
                "proc": proc,
            }
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def _audit(
    client,
    path,
    *,
    prior="embedded",
    mode="eps",
    delta=1e-5,
    slider=2.0,
    sampler="ddim",
    steps=2,
    trials=1,
    seed=0,
):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(path)),
        prior,
        mode,
        delta,
        slider,
        sampler,
        steps,
        trials,
        seed,
        api_name="/audit",
    )


def _error(fn) -> str:
    """The message the user sees when ``fn`` is refused (fails the test if it is not)."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        fn()
    return str(info.value)


def _serving(client) -> None:
    """A full audit still works."""
    out = _audit(client, DIGIT)
    assert Path(out[0]).is_file() and "eps" in out[4]


def _alive(server) -> None:
    """The server still answers (cheap: its config)."""
    assert server["proc"].poll() is None
    assert httpx.get(server["url"] + "config", timeout=10).status_code == 200


@pytest.mark.parametrize("name,data,expect", file_cases(), ids=[c[0] for c in file_cases()])
def test_hostile_files(server, client, tmp_path, name, data, expect):
    path = tmp_path / f"{MARKER}-{name}"
    path.write_bytes(data)
    if expect is None:
        out = _audit(client, path)
        orig, priv = Image.open(out[0]), Image.open(out[1])
        assert orig.size == priv.size and orig.format == "PNG"
        assert "eps" in out[4]
    else:
        msg = _error(lambda: _audit(client, path))
        assert re.search(expect, msg), f"{name}: unclear message {msg!r}"
        assert MARKER not in msg  # the server does not echo private file names back
    _alive(server)


@pytest.mark.parametrize(
    "name,args,expect", parameter_cases(), ids=[c[0] for c in parameter_cases()]
)
def test_hostile_parameters(client, name, args, expect):
    msg = _error(lambda: _audit(client, DIGIT, **args))
    assert re.search(expect, msg), f"{name}: unclear message {msg!r}"


def test_no_image_and_budget_moves_before_any_audit(server):
    from gradio_client import Client

    fresh = Client(server["url"], verbose=False)
    assert "Upload an image" in _error(
        lambda: fresh.predict(
            None, "embedded", "eps", 1e-5, 2.0, "ddim", 2, 1, 0, api_name="/audit"
        )
    )
    assert "finite" in _error(lambda: fresh.predict("NaN", "eps", 1e-5, api_name="/budget"))
    assert "Run an audit first" in _error(
        lambda: fresh.predict(2.0, "eps", 1e-5, api_name="/report")
    )


@pytest.mark.parametrize(
    "z,q,steps,delta,expect",
    [
        (0.0, 0.01, 100, 1e-5, "noise.multiplier"),
        (-1.0, 0.01, 100, 1e-5, "noise.multiplier"),
        (1.0, 0.0, 100, 1e-5, "sample.rate"),
        (1.0, 2.0, 100, 1e-5, "sample.rate"),
        (1.0, 0.01, 0, 1e-5, "steps"),
        (1.0, 0.01, 100, 0.0, "delta"),
        ("NaN", 0.01, 100, 1e-5, "noise.multiplier"),
        (1.0, 0.01, -3, 1e-5, "steps"),
    ],
)
def test_hostile_calculator(client, z, q, steps, delta, expect):
    msg = _error(lambda: client.predict(z, q, steps, delta, api_name="/dpsgd"))
    assert re.search(expect, msg.lower()), msg


# ------------------------------------------------------------------ file access
def test_files_outside_the_cache_are_refused(server, client):
    base = server["url"].rstrip("/")
    targets = [
        "/etc/passwd",
        str(ROOT / "app.py"),
        str(ROOT / "audit_engine/assets/prior-mnist32/split.json"),
        str(ROOT / ".git/config"),
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        str(Path(os.environ.get("HOME", "/root")) / ".bash_history"),
    ]
    for route in (
        "/gradio_api/file=",
        "/file=",
        "/gradio_api/file/",
        "/gradio_api/static/",
        "/static/",
        "/gradio_api/",
    ):
        for target in targets:
            r = httpx.get(base + route + target, follow_redirects=True, timeout=10)
            body = r.text
            assert "root:x:0:0" not in body and "launch(" not in body and "[core]" not in body, (
                route,
                target,
                r.status_code,
            )
            assert "test_indices" not in body, (route, target)
    _serving(client)


def _raw_audit(base: str, path: str) -> tuple[str, str]:
    """/audit called as raw HTTP with a file payload naming ``path`` on the server (no upload):
    returns (the final event's name, its data)."""
    payload = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
    data = [payload, "embedded", "eps", 1e-5, 2.0, "ddim", 2, 1, 0, 0]  # clipping bound 0: default
    r = httpx.post(f"{base}/gradio_api/call/audit", json={"data": data}, timeout=30)
    if r.status_code >= 400:
        return "refused", r.text
    event_id = r.json()["event_id"]
    event, body = "", ""
    with httpx.stream("GET", f"{base}/gradio_api/call/audit/{event_id}", timeout=60) as resp:
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                body = line.split(":", 1)[1].strip()
                if event in ("complete", "error"):
                    break
    return event, body


def test_a_request_cannot_name_a_server_file_as_its_input(server):
    """The browser's payload names an uploaded file; naming any other file is refused."""
    base = server["url"].rstrip("/")
    for target in (
        "/etc/passwd",
        str(ROOT / "app.py"),
        str(ROOT / "assets/examples/../../audit_engine/assets/prior-mnist32/heldout.npz"),
    ):
        event, body = _raw_audit(base, target)
        assert event in ("error", "refused"), (target, event, body[:200])
        assert "root:x" not in body


def test_another_sessions_upload_cannot_be_used_or_read(server, client, tmp_path):
    """Session A uploads; session B cannot fetch A's upload after A has ended, nor name it
    as its own input; while A is alive its upload is reachable only by its random path."""
    from gradio_client import Client

    a = Client(server["url"], verbose=False)
    src = tmp_path / f"{MARKER}-a.png"
    Image.open(DIGIT).save(src)
    _audit(a, src)
    uploads = [p for p in server["cache"].rglob(f"{MARKER}-a.png")]
    assert uploads, "the upload should be in the app's cache while its session lives"
    assert all(server["cache"] in p.parents for p in uploads)
    a.close()  # the session ends: its uploads are removed
    deadline = time.time() + 30
    while time.time() < deadline and any(p.exists() for p in uploads):
        time.sleep(0.2)
    assert not any(p.exists() for p in uploads), "uploads must be removed when the session ends"
    base = server["url"].rstrip("/")
    for p in uploads:
        r = httpx.get(f"{base}/gradio_api/file={p}", timeout=10)
        assert r.status_code >= 400
        event, body = _raw_audit(base, str(p))
        assert event in ("error", "refused"), (event, body[:200])


# ------------------------------------------------------------------ uploads, metadata, logs
def test_outputs_carry_no_metadata(client, tmp_path):
    path = tmp_path / f"{MARKER}-exif.jpg"
    path.write_bytes(_exif_jpeg())
    out = _audit(client, path)
    for f in (
        out[0],
        out[1],
        out[2],
        out[3],
        out[13],
    ):  # original, privatized, tries, spread, ladder
        img = Image.open(f)
        assert not img.getexif() and "exif" not in img.info and "icc_profile" not in img.info
        assert MARKER.encode() not in Path(f).read_bytes()
    # the EXIF orientation was applied: the audited image is the upright picture (rotated
    # as EXIF says), not the stored one
    from PIL import ImageOps

    from audit_engine.attacker.priors import load_prior

    stored = Image.open(io.BytesIO(_exif_jpeg()))
    as_png = lambda im: (lambda b: (im.save(b, format="PNG"), b.getvalue())[1])(io.BytesIO())
    prior = load_prior(device="cpu")
    upright = prior.load_image(as_png(ImageOps.exif_transpose(stored))).numpy()[0]
    unrotated = prior.load_image(as_png(stored.copy())).numpy()[0]
    shown = np.asarray(Image.open(out[0]).convert("L"), dtype=float)
    step = shown.shape[0] // upright.shape[0]  # the page enlarges by whole pixels
    audited = shown[::step, ::step] / 255
    assert np.abs(audited - upright).mean() < 0.02
    assert np.abs(audited - unrotated).mean() > 5 * np.abs(audited - upright).mean()
    report = client.predict(2.0, "eps", 1e-5, api_name="/report")
    assert MARKER not in Path(report).read_text()


def test_uploads_stay_in_the_cache_and_names_stay_out_of_the_logs(server, client):
    """Run after the battery: the server still audits, no upload outside the cache, no
    private name in the logs."""
    _serving(client)
    for name in os.listdir(ROOT):
        assert MARKER not in name
    log = server["log"].read_text(errors="replace")
    assert MARKER not in log, "a user's file name reached the server log"
    proc = server["proc"]
    assert proc.poll() is None, "the server must still be running"
