"""A fresh server with a public prior's architecture (random weights) in a fresh cache, as a
visitor meets it after a restart (issue 28's check), on this machine:

    python -m bench.fresh_server [--arch google/ddpm-cifar10-32] [--wait 1500]

Writes the stand-in prior (a diffusers folder) to a temporary directory, starts the app
offering it (AUDIT_PRIORS) with an empty AUDIT_CACHE_DIR, and then, through gradio_client:
the stand-in's first click, an embedded-prior audit during the stand-in's preparation, and
the stand-in's audit again every 60 s until it answers or is refused with its estimate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bench.common import ARCHITECTURES, free_port, machine, start_app

ROOT = Path(__file__).resolve().parent.parent
DIGIT = ROOT / "assets" / "examples" / "digit-3-1543.png"


def stand_in(arch: str, folder: Path) -> None:
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    UNet2DModel(**ARCHITECTURES[arch]).save_pretrained(folder / "unet")
    DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear"
    ).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "DDPMPipeline",
                "unet": ["diffusers", "UNet2DModel"],
                "scheduler": ["diffusers", "DDPMScheduler"],
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="google/ddpm-cifar10-32", choices=sorted(ARCHITECTURES))
    ap.add_argument("--wait", type=float, default=1500, help="seconds to wait for readiness")
    args = ap.parse_args()
    from gradio_client import Client, handle_file

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        prior = Path(tmp) / "stand-in"
        stand_in(args.arch, prior)
        t0 = time.time()
        port = free_port()
        proc = start_app(
            port,
            {
                "AUDIT_PRIORS": str(prior),
                "AUDIT_CACHE_DIR": str(Path(tmp) / "cache"),
                "GRADIO_TEMP_DIR": str(Path(tmp) / "gradio"),
            },
        )
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)

            def audit(key: str, tries: int) -> tuple[float, str]:
                t = time.time()
                try:
                    out = client.predict(
                        handle_file(str(DIGIT)),
                        key,
                        "eps",
                        1e-5,
                        2.0,
                        "ddim",
                        10,
                        tries,
                        0,
                        0,
                        api_name="/audit",
                    )
                    return time.time() - t, "answered: " + out[4].splitlines()[0][:100]
                except Exception as exc:  # the page's refusal, as a visitor reads it
                    return time.time() - t, "refused: " + str(exc)[:300]

            tries = 8 if ARCHITECTURES[args.arch]["sample_size"] <= 64 else 4
            print(f"server answering after {time.time() - t0:.1f} s")
            print("stand-in, first click: %.2f s, %s" % audit(str(prior), tries))
            print("embedded, meanwhile: %.2f s, %s" % audit("embedded", 8))
            while time.time() - t0 < args.wait:
                dt, msg = audit(str(prior), tries)
                print(f"{time.time() - t0:.0f} s after start: {dt:.2f} s, {msg}")
                if msg.startswith("answered") or "UNet evaluations" in msg:
                    break
                time.sleep(60)
        finally:
            proc.terminate()


if __name__ == "__main__":
    main()
