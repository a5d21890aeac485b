"""Soak: the dashboard under a board's load for a while, with CPU-hungry work beside it.

    python -m bench.soak --minutes 60 [--clients 3] [--poison 100] [--json docs/soak.json --doc docs/PERFORMANCE.md]

A fresh server on loopback (its own cache folder; ``--poison F`` first writes a cost store
that says each UNet evaluation costs F times what it costs here). Each client has its own
session and, round after round, does what a board does: audits a digit, a photograph or
noise with the default settings (the embedded prior, 8 tries, 10 steps), moves the slider
three times and asks for the exact budget, compares pinned budgets (every 4th round),
searches for the largest safe budget at both levels (every 6th), downloads the report
(every 9th); the first client also audits a data set of five images with the command line's
batch audit (every 7th round, beside the server, as a second process rewriting the cost
store would). A CPU-hungry process (two threads of matrix products) runs throughout.

It stops starting rounds after ``--minutes`` and waits for the calls in flight. It prints the
calls and latencies per action, the refusals by kind, the unexpected errors and the server's
resident memory over time, and exits non-zero on any unexpected error (a generic error, an
exception, a timeout), any refusal of the embedded-prior audit, or memory still rising in
the last third of the run. Loopback only; the slow test tests/test_load.py runs it for three
minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import ROOT, free_port, machine, memory_mb, start_app

BLOCK = "soak"
EXAMPLES = ROOT / "assets" / "examples"
HOG = (
    "import torch, time, sys\ntorch.set_num_threads(2)\na = torch.randn(768, 768)\n"
    "end = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    a = (a @ a).tanh()\n"
)


def _images(folder: Path, seed: int) -> dict[str, list[Path]]:
    """Digits (each example shifted, so no two clients send one picture), photographs, noise."""
    rng = random.Random(seed)
    out = {"digit": [], "photograph": sorted(EXAMPLES.glob("ood-*.png")), "noise": []}
    for k, p in enumerate(sorted(EXAMPLES.glob("digit-*.png"))):
        img = Image.open(p).convert("L").rotate(rng.uniform(-8, 8), translate=(k % 3 - 1, 0))
        out["digit"].append(folder / f"digit-{k}.png")
        img.save(out["digit"][-1])
    g = np.random.default_rng(seed)
    for k in range(4):
        out["noise"].append(folder / f"noise-{k}.png")
        Image.fromarray(g.integers(0, 256, (32 + 16 * k, 32 + 16 * k), dtype=np.uint8)).save(
            out["noise"][-1]
        )
    return out


def classify(message: str) -> str:
    """An error the client received, by kind: a refusal the page explains in a sentence, or
    an unexpected error."""
    m = message or ""
    if "UNet evaluations" in m:
        return "refused: estimate"
    if "queue" in m.lower() and "full" in m.lower():
        return "refused: busy"
    if "limit of" in m and "per request" in m:
        return "refused: time limit"
    if "went wrong" in m or "out of memory" in m or m.strip() in ("", "Error", "None"):
        return "unexpected"
    return "refused: other"


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.outcomes: dict[str, dict[str, int]] = {}
        self.unexpected: list[str] = []

    def add(self, action: str, seconds: float, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.outcomes.setdefault(action, {}).setdefault(outcome, 0)
            self.outcomes[action][outcome] += 1
            if outcome == "ok":
                self.latency.setdefault(action, []).append(seconds)
            elif outcome == "unexpected" and len(self.unexpected) < 20:
                self.unexpected.append(f"{action}: {detail[:300]}")


def _call(tally: Tally, action: str, fn, *args, **kw):
    t = time.perf_counter()
    try:
        out = fn(*args, **kw)
    except Exception as exc:  # every failure is counted, by kind
        msg = str(exc)
        kind = classify(msg) if type(exc).__name__ == "AppError" else "unexpected"
        tally.add(action, time.perf_counter() - t, kind, f"{type(exc).__name__}: {msg}")
        return None
    tally.add(action, time.perf_counter() - t, "ok")
    return out


def _batch(tally: Tally, images: list[Path], work: Path, env: dict) -> None:
    """The data set: five images through the command line's batch audit, beside the server."""
    folder = work / f"dataset-{time.time_ns()}"
    (folder / "in").mkdir(parents=True)
    for p in images[:5]:
        (folder / "in" / p.name).write_bytes(p.read_bytes())
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "audit_engine",
            "batch",
            str(folder / "in"),
            "--eps",
            "1",
            "8",
            "100",
            "--out",
            str(folder / "out"),
            "--trials",
            "4",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    tally.add(
        "data set (command line)",
        time.perf_counter() - t,
        "ok" if r.returncode == 0 else "unexpected",
        r.stderr[-300:],
    )


def _client(
    k: int,
    url: str,
    until: float,
    tally: Tally,
    images: dict,
    work: Path,
    env: dict,
    batch_lock: threading.Lock,
) -> None:
    from gradio_client import Client, handle_file

    from audit_engine.session.views import PRESETS

    rng = random.Random(k)
    client = Client(url, verbose=False, httpx_kwargs={"timeout": 900})
    kinds = ["digit", "photograph", "noise"]
    r = 0
    while time.time() < until:
        kind = kinds[(r + k) % 3]
        path = rng.choice(images[kind])
        out = _call(
            tally,
            f"audit ({kind})",
            client.predict,
            handle_file(str(path)),
            "embedded",
            "eps",
            1e-5,
            2.0,
            "ddim",
            10,
            8,
            0,
            0,
            api_name="/audit",
        )
        if out is not None:
            for _ in range(3):
                _call(
                    tally,
                    "slider move",
                    client.predict,
                    rng.uniform(-1, 5),
                    "eps",
                    1e-5,
                    api_name="/budget",
                )
            _call(
                tally,
                "exact budget",
                client.predict,
                rng.uniform(-1, 5),
                "eps",
                1e-5,
                api_name="/exact_budget",
            )
            if r % 4 == 3:
                _call(
                    tally, "compare", client.predict, list(PRESETS)[:2], 1e-5, api_name="/compare"
                )
            if r % 6 == 5:
                level = ["not recognisable", "no attribute"][(r // 6 + k) % 2]
                _call(
                    tally,
                    f"search ({level})",
                    client.predict,
                    level,
                    "eps",
                    1e-5,
                    api_name="/find_budget",
                )
            if r % 9 == 8:
                _call(tally, "report", client.predict, 2.0, "eps", 1e-5, api_name="/report")
        if k == 0 and r % 7 == 6 and batch_lock.acquire(blocking=False):

            def job():
                try:
                    _batch(tally, images["digit"], work, env)
                finally:
                    batch_lock.release()

            threading.Thread(target=job, daemon=True).start()
        r += 1


def rising(samples: list[tuple[float, float]]) -> bool:
    """Whether resident memory still rises in the last third of the run: the median of the
    last sixth above the highest value of the first two thirds by more than 30 MB and 3%.
    A plateau, or a transient peak (a search's temporary tensors), is not a rise; memory that
    keeps reaching new highs to the end is."""
    cut = len(samples) * 2 // 3
    before = [m for _, m in samples[:cut]]
    last = [m for _, m in samples[cut:]]
    if len(last) < 6 or not before:
        return False
    top, end = max(before), statistics.median(last[len(last) // 2 :])
    return end - top > max(30.0, 0.03 * top)


def run_soak(
    minutes: float,
    clients: int = 3,
    *,
    poison: float | None = None,
    load: bool = True,
    sample_every: float | None = None,
) -> dict:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    cache = work / "cache"
    cache.mkdir()
    env = dict(
        os.environ,
        AUDIT_CACHE_DIR=str(cache),
        AUDIT_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        GRADIO_TEMP_DIR=str(work / "gradio"),
    )
    if poison:
        os.environ["AUDIT_CACHE_DIR"] = str(cache)
        from audit_engine.attacker.priors import load_prior
        from audit_engine.audit import costs

        prior = load_prior()
        real = costs.measure(prior)
        (cache / "costs.json").write_text(
            json.dumps({costs.key_of(prior): {"per_eval_s": poison * real, "runs": 1}})
        )
    images = _images(work, 0)
    port = free_port()
    log = open(work / "server.log", "w+b")
    server = start_app(
        port, {"AUDIT_CACHE_DIR": str(cache), "GRADIO_TEMP_DIR": str(work / "gradio")}, log=log
    )
    url = f"http://127.0.0.1:{port}/"
    seconds = minutes * 60
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(seconds + 900)]) if load else None
    tally, memory, t0 = Tally(), [], time.time()
    until = t0 + seconds
    every = sample_every or max(5.0, seconds / 180)
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                memory.append((time.time() - t0, memory_mb(server.pid)[0]))
            except (OSError, KeyError):
                pass
            done.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    batch_lock = threading.Lock()
    threads = [
        threading.Thread(target=_client, args=(k, url, until, tally, images, work, env, batch_lock))
        for k in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with batch_lock:  # a data set still running
        pass
    ran = time.time() - t0
    done.set()
    sampler.join()
    alive = server.poll() is None
    server.terminate()
    if hog is not None:
        hog.kill()
    server.wait(timeout=30)
    refused_audit = sum(
        n
        for a, o in tally.outcomes.items()
        if a.startswith("audit")
        for kind, n in o.items()
        if kind.startswith("refused")
    )
    unexpected = sum(o.get("unexpected", 0) for o in tally.outcomes.values())
    result = {
        "machine": machine(),
        "minutes": minutes,
        "ran_s": round(ran),
        "clients": clients,
        "load_beside": load,
        "poison": poison,
        "server_alive": alive,
        "actions": {
            a: {
                "outcomes": dict(sorted(o.items())),
                "median_s": _q(tally.latency.get(a), 0.5),
                "p95_s": _q(tally.latency.get(a), 0.95),
                "max_s": _q(tally.latency.get(a), 1.0),
            }
            for a, o in sorted(tally.outcomes.items())
        },
        "refused_audits": refused_audit,
        "unexpected": unexpected,
        "unexpected_examples": tally.unexpected,
        "memory_mb": [(round(t), round(m)) for t, m in memory],
        "memory_rising": rising(memory),
    }
    result["passed"] = (
        alive and not unexpected and not refused_audit and not result["memory_rising"]
    )
    return result


def _q(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))], 2)


def render(r: dict) -> str:
    lines = [
        f"`python -m bench.soak --minutes {r['minutes']:g}` ({r['clients']} clients, "
        f"{'a CPU-hungry process beside the server' if r['load_beside'] else 'no load beside'}"
        f"{', cost store poisoned x%g' % r['poison'] if r['poison'] else ''}"
        f"; {r['machine']}); ran {r['ran_s'] / 60:.0f} min.",
        "",
        "| action | ok | refused or failed | median s | 95% s | max s |",
        "|---|---|---|---|---|---|",
    ]
    for a, row in r["actions"].items():
        other = ", ".join(f"{k}: {n}" for k, n in row["outcomes"].items() if k != "ok") or "none"
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
        lines.append(
            f"| {a} | {row['outcomes'].get('ok', 0)} | {other} | {fmt(row['median_s'])} "
            f"| {fmt(row['p95_s'])} | {fmt(row['max_s'])} |"
        )
    mem = r["memory_mb"]
    marks = [mem[round(i * (len(mem) - 1) / 6)] for i in range(7)] if mem else []
    lines += [
        "",
        "Resident memory of the server (MB) at minute: "
        + ", ".join(f"{t / 60:.0f}: {m}" for t, m in marks)
        + f"; highest {max((m for _, m in mem), default=0)}.",
        "",
        f"Refused audits of the embedded prior: {r['refused_audits']}; unexpected "
        f"errors: {r['unexpected']}; memory rising in the last third: "
        f"{'yes' if r['memory_rising'] else 'no'}; "
        f"{'passed' if r['passed'] else 'FAILED'}.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument(
        "--poison",
        type=float,
        default=None,
        help="start with a cost store that says F times the real cost",
    )
    ap.add_argument("--no-load", action="store_true", help="no CPU-hungry process beside it")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--doc", type=Path, default=None, help="fill the doc's generated block")
    a = ap.parse_args()
    r = run_soak(a.minutes, a.clients, poison=a.poison, load=not a.no_load)
    text = render(r)
    print(text)
    for e in r["unexpected_examples"]:
        print("unexpected:", e)
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")
    if a.doc:
        from audit_engine.docblocks import fill_file

        fill_file(a.doc, {BLOCK: text}, every=False)
    sys.exit(0 if r["passed"] else 1)


if __name__ == "__main__":
    main()
