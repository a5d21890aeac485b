"""Training throughput of ``privacy-audit train-prior`` (images per second), side by side in
one run: on this CPU in float32 (the default) and with bfloat16 autocast, and on the GPU in
its default mixed precision when there is one. Each setting trains the same images for the
same steps (after a warm-up), alternating, median of the rounds.

    python -m bench.training [--size 32] [--steps 40] [--rounds 2]
        [--json docs/training-throughput.json --doc docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from audit_engine.docblocks import fill_file
from bench.common import machine

BLOCK = "training-throughput"


def _folder(root: Path, n: int, size: int) -> Path:
    """n random-blob images: throughput does not depend on what the images show."""
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        x = torch.rand(1, size // 4, size // 4, generator=g)
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bilinear")[0, 0]
        Image.fromarray(x.mul(255).to(torch.uint8).numpy()).save(root / f"{i:04d}.png")
    return root


def settings() -> list[tuple[str, dict]]:
    out = [
        ("CPU, float32 (default)", {"mixed_precision": "no", "cpu": True}),
        ("CPU, bfloat16 autocast", {"mixed_precision": "bf16", "cpu": True}),
    ]
    if torch.cuda.is_available():
        out.append(
            (
                f"GPU ({torch.cuda.get_device_name(0)}), default mixed precision",
                {"mixed_precision": "auto"},
            )
        )
    return out


def measure(size: int, steps: int, rounds: int, batch: int) -> dict:
    rows = {name: [] for name, _ in settings()}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "images").mkdir()
        folder = _folder(Path(tmp) / "images", 400, size)
        for r in range(rounds):
            for name, kw in settings():
                t0 = time.perf_counter()
                # a fresh process per run: accelerate's state (device, precision) is per process
                code = (
                    "import json, sys; from audit_engine.training.train import TrainConfig, "
                    "train_prior; info = train_prior(sys.argv[1], sys.argv[2], "
                    "TrainConfig(**json.loads(sys.argv[3])), fitness=False); "
                    "print(json.dumps(info['time']))"
                )
                cfg = dict(size=size, steps=steps, batch_size=batch, checkpoint_every=10**9, **kw)
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        code,
                        str(folder),
                        str(Path(tmp) / f"p{r}-{len(rows[name])}-{kw['mixed_precision']}"),
                        json.dumps(cfg),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows[name].append(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])
                print(
                    f"round {r + 1}: {name}: {rows[name][-1]:.1f} images/s "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    base = statistics.median(rows[settings()[0][0]])
    return {
        "machine": machine(),
        "size": size,
        "steps": steps,
        "batch": batch,
        "rounds": rounds,
        "rows": [
            {
                "setting": k,
                "images_per_s": statistics.median(v),
                "ratio": statistics.median(v) / base,
            }
            for k, v in rows.items()
        ],
    }


def render(data: dict) -> str:
    lines = [
        f"`python -m bench.training --size {data['size']} --steps {data['steps']} --rounds "
        f"{data['rounds']}` on {data['machine']}: {data['size']}x{data['size']} images, "
        f"batch {data['batch']}, {data['steps']} steps per setting and round, median of "
        f"{data['rounds']} rounds.",
        "",
        "| setting | images/s | against float32 on the CPU |",
        "|---|---|---|",
    ]
    lines += [
        f"| {r['setting']} | {r['images_per_s']:.1f} | {r['ratio']:.2f}x |" for r in data["rows"]
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--doc", type=Path, default=None)
    args = ap.parse_args()
    data = measure(args.size, args.steps, args.rounds, args.batch)
    print(render(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    if args.doc:
        fill_file(args.doc, {BLOCK: render(data)}, every=False)


if __name__ == "__main__":
    main()
