"""`python app.py` started the way platforms start it: with Gradio's own variables only
(GRADIO_SERVER_NAME, GRADIO_SERVER_PORT), as a Hugging Face Space does, and as the
Dockerfile does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# what a Gradio Space's container sets (https://huggingface.co/docs/hub/spaces-overview)
SPACE_ENV = {
    "SYSTEM": "spaces",
    "SPACE_ID": "someone/privacy-audit",
    "SPACE_AUTHOR_NAME": "someone",
    "SPACE_REPO_NAME": "privacy-audit",
    "SPACE_TITLE": "Visual privacy audit",
    "SPACE_HOST": "someone-privacy-audit.hf.space",
    "GRADIO_SERVER_NAME": "0.0.0.0",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any launch setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRADIO_", "AUDIT_HOST", "AUDIT_PORT", "SPACE", "SYSTEM"))
    }
    env.update(extra)
    return env


def _start(env: dict[str, str], port: int, tmp_path: Path) -> subprocess.Popen:
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"app.py exited ({proc.returncode}): {(tmp_path / 'app.log').read_text()[-2000:]}"
            )
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(
        f"app.py did not answer on port {port}: {(tmp_path / 'app.log').read_text()[-2000:]}"
    )


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_gradio_variables_choose_address_and_port(tmp_path):
    port = _free_port()
    proc = _start(
        _clean_env(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port)), port, tmp_path
    )
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert b"gradio" in page.lower()
        assert _listening_addresses(port) in ({"127.0.0.1"}, set())  # set(): no /proc here
    finally:
        _stop(proc)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
def test_started_as_a_space_listens_on_all_interfaces(tmp_path):
    port = _free_port()
    proc = _start(_clean_env(**SPACE_ENV, GRADIO_SERVER_PORT=str(port)), port, tmp_path)
    try:
        assert _listening_addresses(port) == {"0.0.0.0"}
    finally:
        _stop(proc)


def test_retired_variables_stop_the_app_with_a_message(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(AUDIT_HOST="0.0.0.0"),
    )
    assert out.returncode != 0 and "GRADIO_SERVER_NAME" in out.stderr


def test_replay_and_bench_use_gradios_variables():
    """The Dockerfile sets GRADIO_SERVER_NAME/PORT (test_deployment checks its ENV); the scripts
    that start the app set the same variables."""
    for script in ("scripts/replay_dockerfile.py", "bench/common.py"):
        text = (ROOT / script).read_text()
        assert "GRADIO_SERVER_PORT" in text and "AUDIT_PORT" not in text, script
