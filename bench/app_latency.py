"""App latency and memory through gradio_client, as a browser's requests reach the server:
the first full ladder (/audit), slider moves served from the ladder (/budget), the exact
budget (/exact_budget); then the server's resident memory (current and peak).

    python -m bench.app_latency [--moves 20]

Starts `python app.py` on a free loopback port with the embedded prior.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import ROOT, free_port, machine, memory_mb, start_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    args = ap.parse_args()
    from gradio_client import Client, handle_file

    port = free_port()
    t = time.perf_counter()
    proc = start_app(port)
    t_start = time.perf_counter() - t
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        digit = sorted((ROOT / "assets" / "examples").glob("digit-*.png"))[0]
        rss_idle = memory_mb(proc.pid)[0]
        t = time.perf_counter()
        client.predict(
            handle_file(str(digit)),
            "embedded",
            "eps",
            1e-5,
            2.0,
            "ddim",
            20,
            1,
            0,
            api_name="/audit",
        )
        t_ladder = time.perf_counter() - t
        # the same session without fetching the output images (what the answer itself takes;
        # a browser then fetches the images in parallel, gradio_client one after the other)
        bare = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        bare.session_hash = client.session_hash
        moves, answers = [], []
        for k in range(args.moves):
            value = -1.0 + 6.0 * k / max(1, args.moves - 1)  # eps 0.1 .. 1e5, across the ladder
            t = time.perf_counter()
            client.predict(value, "eps", 1e-5, api_name="/budget")
            moves.append(time.perf_counter() - t)
            t = time.perf_counter()
            bare.predict(value, "eps", 1e-5, api_name="/budget")
            answers.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.predict(3.3, "eps", 1e-5, api_name="/exact_budget")
        t_exact = time.perf_counter() - t
        t = time.perf_counter()
        client.predict(
            handle_file(str(digit)),
            "embedded",
            "eps",
            1e-5,
            2.0,
            "ddim",
            20,
            1,
            0,
            api_name="/audit",
        )
        t_again = time.perf_counter() - t
        rss, peak = memory_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    move = statistics.median(moves)
    print(f"machine: {machine()}")
    print(f"app start to first answer on the port: {t_start:.2f} s")
    print(
        f"first full ladder (/audit, 8 budgets + the slider's, all metrics): {t_ladder * 1e3:7.0f} ms"
    )
    print(
        f"slider move served from the ladder (/budget), median of {len(moves)}: "
        f"answer {statistics.median(answers) * 1e3:.1f} ms (max {max(answers) * 1e3:.1f} ms); "
        f"with gradio_client fetching the 2 images one after the other {move * 1e3:.1f} ms "
        f"(max {max(moves) * 1e3:.1f} ms)"
    )
    print(f"exact budget between ladder points (/exact_budget): {t_exact * 1e3:7.0f} ms")
    print(f"same image again (/audit, ladder reused): {t_again * 1e3:7.0f} ms")
    print(f"ratio ladder / slider move: {t_ladder / move:.1f}x")
    print(
        f"server memory: {rss_idle:.0f} MiB resident after start, {rss:.0f} MiB after the run, "
        f"peak {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
