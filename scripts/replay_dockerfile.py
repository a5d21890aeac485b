"""Replay the Dockerfile's install and start steps without a container engine.

    python scripts/replay_dockerfile.py [--build-arg PRIORS=google/ddpm-cifar10-32] [--keep DIR]

Reads the Dockerfile and, in a fresh folder with a fresh virtual environment, carries out
what `docker build` and `docker run` would: COPY (honouring .dockerignore), ENV and ARG
(paths under the image's home are mapped into the folder), RUN steps that are `pip` or
`python` commands (system steps such as `useradd` are listed and skipped: they need root
and a container), then starts CMD with the image's environment, waits for the
HEALTHCHECK command to pass and checks that the app answers on the EXPOSEd port.
Exits 0 only if the app answered.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def key_values(args: str) -> dict[str, str]:
    """ENV/ARG arguments: KEY=value pairs (shell quoting) or the legacy 'KEY value'."""
    parts = shlex.split(args)
    if parts and "=" not in parts[0]:
        return {parts[0]: " ".join(parts[1:])}
    return dict(p.split("=", 1) if "=" in p else (p, "") for p in parts)


def ignored(rel: str, patterns: list[str]) -> bool:
    name = rel.split("/")[0]
    for pat in patterns:
        pat = pat.rstrip("/")
        if pat.startswith("**/"):
            if any(fnmatch.fnmatch(part, pat[3:]) for part in rel.split("/")):
                return True
        elif fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(name, pat):
            return True
    return False


def copy_context(src: str, dest: Path, into_dir: bool, patterns: list[str]) -> None:
    """COPY src dest: a file lands in dest (or dest/name when dest is a folder); a folder's
    contents land under dest; .dockerignore patterns are skipped."""
    base = ROOT / src
    if base.is_file():
        target = dest / base.name if into_dir else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base, target)
        return
    for path in base.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_dir() or ignored(rel, patterns):
            continue
        target = dest / path.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-arg", action="append", default=[], help="KEY=value, as for docker")
    ap.add_argument("--keep", type=Path, help="build here and keep it (default: a temp folder)")
    ap.add_argument("--port", type=int, default=None, help="host port (default: EXPOSE)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds to wait for the app")
    args = ap.parse_args(argv)
    steps = instructions((ROOT / "Dockerfile").read_text())
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    top = args.keep or Path(tempfile.mkdtemp(prefix="replay-docker-"))
    top.mkdir(parents=True, exist_ok=True)
    fs = top / "fs"  # the image's file system, rooted here
    venv = top / "venv"
    overrides = dict(kv.split("=", 1) for kv in args.build_arg)
    arg_values: dict[str, str] = {}
    env: dict[str, str] = {}
    workdir = fs

    def mapped(value: str) -> str:
        """Absolute image paths (/home/..., /tmp/...) become paths under ``fs``."""
        return re.sub(
            r"(?<![\w.])/(home|tmp|app|opt|srv)(?=/|$|\s)", lambda m: str(fs / m.group(1)), value
        )

    def expand(text: str) -> str:
        values = {**arg_values, **env}
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ""), text
        )

    def run_env() -> dict[str, str]:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "GRADIO_", "HF_"))
        }
        base.update({k: mapped(v) for k, v in env.items()})
        base["PATH"] = f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}"
        base["VIRTUAL_ENV"] = str(venv)
        return base

    print(f"replaying Dockerfile in {top}", flush=True)
    cmd, health, port = None, None, None
    for word, rest in steps:
        if word == "FROM":
            want = re.search(r"python:(\d+\.\d+)", rest)
            have = f"{sys.version_info.major}.{sys.version_info.minor}"
            print(
                f"FROM {rest}: using this machine's Python {have} in a fresh venv"
                + ("" if not want or want.group(1) == have else f" (the image has {want.group(1)})")
            )
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        elif word == "ARG":
            for k, v in key_values(rest).items():
                arg_values[k] = overrides.get(k, v)
        elif word == "ENV":
            for k, v in key_values(expand(rest)).items():
                env[k] = v
        elif word == "WORKDIR":
            workdir = fs / expand(rest).lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"WORKDIR {rest}")
        elif word == "COPY":
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            *sources, dest = parts
            target = workdir / dest if not dest.startswith("/") else fs / dest.lstrip("/")
            into_dir = dest.endswith("/") or len(sources) > 1
            for src in sources:
                copy_context(src.rstrip("/") or ".", target, into_dir, patterns)
            print(f"COPY {rest}")
        elif word == "RUN":
            line = expand(rest)
            if line.split()[0] in ("pip", "python"):
                print(f"RUN {line}", flush=True)
                t0 = time.perf_counter()
                subprocess.run(line, shell=True, cwd=workdir, env=run_env(), check=True)
                print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
            else:
                print(f"RUN {line}  [skipped: a system step that needs root in a container]")
        elif word == "USER":
            print(f"USER {rest}  [the replay runs as the current user]")
        elif word == "EXPOSE":
            port = int(rest.split()[0].split("/")[0])
        elif word == "HEALTHCHECK":
            m = re.search(r"CMD\s+(\[.*\])", rest)
            health = json.loads(m.group(1)) if m else None
        elif word == "CMD":
            cmd = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    if cmd is None or port is None:
        print("the Dockerfile has no CMD or no EXPOSE")
        return 1
    host_port = args.port or port
    env_run = run_env()
    if host_port != port:
        env_run["GRADIO_SERVER_PORT"] = str(host_port)
        health = [h.replace(str(port), str(host_port)) for h in health] if health else None
    print(
        f"CMD {' '.join(cmd)} (port {host_port}; environment: "
        + ", ".join(
            f"{k}={v}" for k, v in env.items() if k.startswith(("AUDIT", "HF_HUB", "GRADIO_"))
        )
        + ")",
        flush=True,
    )
    log = (top / "app.log").open("wb")
    app = subprocess.Popen(cmd, cwd=workdir, env=env_run, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    ok = False
    try:
        while time.perf_counter() - t0 < args.timeout and app.poll() is None:
            if (
                health
                and subprocess.run(health, cwd=workdir, env=env_run, capture_output=True).returncode
                == 0
            ):
                ok = True
                break
            time.sleep(1)
        if ok:
            page = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=10).read()
            ok = b"gradio" in page.lower()
            print(
                f"HEALTHCHECK passed after {time.perf_counter() - t0:.1f} s; "
                f"GET / returned {len(page)} bytes of the Gradio page: {'yes' if ok else 'no'}"
            )
        else:
            print(
                f"the app did not pass its health check within {args.timeout:.0f} s "
                f"(exit code {app.poll()}); log: {top / 'app.log'}"
            )
    finally:
        app.terminate()
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            app.kill()
        log.close()
    tail = (top / "app.log").read_text(errors="replace").strip().splitlines()[-5:]
    print("app log (last lines):\n    " + "\n    ".join(tail))
    if not args.keep:
        shutil.rmtree(top, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
