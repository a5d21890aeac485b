"""Batch audits: images per second with the local engine (one worker) and with Ray at 2
workers, side by side in one run, on the same folder of held-out digits and the same
settings (one CPU thread per audit in both, so the numbers are identical too).

    python -m bench.batch_engines [--images 16] [--trials 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from audit_engine.batch.config import BatchConfig
from audit_engine.batch.run import run_batch
from audit_engine.images import array_to_pil
from bench.common import heldout, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for k, x in enumerate(heldout(args.images)[0]):
            array_to_pil(x).save(folder / f"digit-{k:03d}.png")
        cfg = BatchConfig(epsilons=[1.0, 8.0, 100.0], trials=args.trials)
        rates = {}
        for engine, workers in (("local", 1), ("ray", 2)):
            out = Path(tmp) / engine
            t = time.perf_counter()
            r = run_batch(folder, out, cfg, engine=engine, workers=workers)
            wall = time.perf_counter() - t
            rates[engine] = r["audited"] / wall
            print(
                f"{engine:5s} ({workers} worker{'s' if workers > 1 else ''}): "
                f"{r['audited']} images in {wall:.1f} s = {rates[engine]:.2f} images/s "
                "(Ray's time includes starting the cluster and loading the prior per actor)"
            )
        same = all(
            (Path(tmp) / "local" / "images" / d.name / "metrics.json").read_text()
            == (d / "metrics.json").read_text()
            for d in (Path(tmp) / "ray" / "images").iterdir()
        )
        print(
            f"Ray at 2 workers / local at 1: {rates['ray'] / rates['local']:.2f}x; "
            f"identical numbers: {same}"
        )


if __name__ == "__main__":
    main()
