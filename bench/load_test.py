"""Load test: concurrent gradio_client clients against the app on loopback, each with its own
image; every answer is checked by content (the returned original must be that client's own
image), and the server's memory is compared before and after.

    python -m bench.load_test [--clients 20] [--requests 5] [--steps 5]
    python -m bench.load_test --queue-check          # a full queue answers "busy"

The slow test tests/test_load.py runs the same with 20 clients x 5 requests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from audit_engine.images import to_prior_tensor
from audit_engine.session.views import display
from bench.common import ROOT, free_port, machine, memory_mb, start_app


def client_images(n: int, folder: Path) -> list[tuple[Path, np.ndarray]]:
    """n distinct images (example digits, shifted and rotated per client) and the original
    each client must get back, as the dashboard displays it."""
    digits = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))
    out = []
    for i in range(n):
        img = Image.open(digits[i % len(digits)]).convert("L")
        img = img.rotate(7 * (i // len(digits)) + 3 * i, translate=(i % 5 - 2, i % 3 - 1))
        path = folder / f"client-{i:02d}.png"
        img.save(path)
        expected = display(to_prior_tensor(path, size=32, channels=1))
        out.append((path, expected))
    assert len({e.tobytes() for _, e in out}) == n, "client images must differ"
    return out


def _client(url, path, expected, requests, steps, results, k):
    from gradio_client import Client, handle_file

    rec = {"ok": 0, "wrong": 0, "errors": [], "latency": []}
    results[k] = rec
    try:
        client = Client(url, verbose=False)
        for r in range(requests):
            t = time.perf_counter()
            try:
                out = client.predict(
                    handle_file(str(path)),
                    "embedded",
                    "eps",
                    1e-5,
                    1.0 + 0.5 * r,
                    "ddim",
                    steps,
                    1,
                    0,
                    api_name="/audit",
                )
            except Exception as exc:  # recorded, the run goes on
                rec["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            rec["latency"].append(time.perf_counter() - t)
            got = np.asarray(Image.open(out[0]))
            if got.ndim == 3:
                got = got[..., 0]
            if got.shape == expected.shape and np.array_equal(got, expected):
                rec["ok"] += 1
            else:
                rec["wrong"] += 1
        client.close()
    except Exception as exc:
        rec["errors"].append(f"client: {type(exc).__name__}: {exc}")


def run_load_test(clients: int = 20, requests: int = 5, steps: int = 5) -> dict:
    """Start the app, run the clients, return the counts, latencies and memory."""
    from gradio_client import Client, handle_file

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            images = client_images(clients, Path(tmp))
            warm = Client(url, verbose=False)  # one audit first: models, caches, imports
            warm.predict(
                handle_file(str(images[0][0])),
                "embedded",
                "eps",
                1e-5,
                2.0,
                "ddim",
                steps,
                1,
                0,
                api_name="/audit",
            )
            warm.close()
            rss_before = memory_mb(proc.pid)[0]
            results: dict[int, dict] = {}
            threads = [
                threading.Thread(target=_client, args=(url, p, e, requests, steps, results, k))
                for k, (p, e) in enumerate(images)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            time.sleep(1)
            rss_after, peak = memory_mb(proc.pid)
            alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(15)
    lat = [v for r in results.values() for v in r["latency"]]
    return {
        "clients": clients,
        "requests": requests,
        "answered_own_image": sum(r["ok"] for r in results.values()),
        "wrong_image": sum(r["wrong"] for r in results.values()),
        "errors": [e for r in results.values() for e in r["errors"]],
        "lost": clients * requests
        - sum(r["ok"] + r["wrong"] + len(r["errors"]) for r in results.values()),
        "wall_s": wall,
        "latency_median_s": statistics.median(lat) if lat else None,
        "latency_max_s": max(lat) if lat else None,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "peak_mb": peak,
        "growth": rss_after / rss_before - 1,
        "server_alive": alive,
    }


def queue_check(waiting: int = 2, clients: int = 8, steps: int = 200) -> dict:
    """With AUDIT_QUEUE_SIZE=waiting, more simultaneous audits than fit: the extra ones get a
    clear 'queue is full' message, the others their results, and the server keeps serving."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(port, {"AUDIT_QUEUE_SIZE": str(waiting)})
    outcomes: list[str] = []
    lock = threading.Lock()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            images = client_images(clients, Path(tmp))

            def one(path):
                from gradio_client import Client, handle_file

                try:
                    Client(url, verbose=False).predict(
                        handle_file(str(path)),
                        "embedded",
                        "eps",
                        1e-5,
                        2.0,
                        "ddim",
                        steps,
                        4,
                        0,
                        api_name="/audit",
                    )
                    msg = "ok"
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes.append(msg)

            threads = [threading.Thread(target=one, args=(p,)) for p, _ in images]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(15)
    return {"outcomes": outcomes, "server_alive": alive}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--queue-check", action="store_true")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if args.queue_check:
        res = queue_check()
        busy = [o for o in res["outcomes"] if "queue" in o.lower() and "full" in o.lower()]
        print(
            f"{len(res['outcomes'])} simultaneous audits with 2 waiting places: "
            f"{res['outcomes'].count('ok')} answered, {len(busy)} told the queue is full, "
            f"{len(res['outcomes']) - len(busy) - res['outcomes'].count('ok')} other errors; "
            f"server alive: {res['server_alive']}"
        )
        for o in sorted(set(res["outcomes"])):
            print(f"  {o}")
        return
    r = run_load_test(args.clients, args.requests, args.steps)
    print(
        f"{r['clients']} clients x {r['requests']} requests: {r['answered_own_image']} answered "
        f"with the client's own image, {r['wrong_image']} with another image, "
        f"{len(r['errors'])} errors, {r['lost']} lost; server alive: {r['server_alive']}"
    )
    print(
        f"wall {r['wall_s']:.1f} s; latency median {r['latency_median_s']:.2f} s, "
        f"max {r['latency_max_s']:.2f} s"
    )
    print(
        f"server memory: {r['rss_before_mb']:.0f} MiB before, {r['rss_after_mb']:.0f} MiB after "
        f"({r['growth']:+.1%}), peak {r['peak_mb']:.0f} MiB"
    )
    for e in r["errors"][:10]:
        print(f"  error: {e}")


if __name__ == "__main__":
    main()
