"""`hier predict` throughput and peak memory at 1k and 10k images: memory must stay flat.

A small trained run (smallcnn, one epoch) predicts folders of 1,000 and 10,000 synthetic images
in fresh processes; each process reports its own peak resident memory (ru_maxrss).

    python bench/predict_speed.py [--image-size 48] [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from _common import machine, run_predict, synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()

    from hier.runs.config import resolve_config
    from hier.train.fit import fit

    largest = max(args.sizes)
    data = synthetic(largest + largest // 4, args.image_size)
    work = Path(tempfile.mkdtemp(prefix="hier-bench-predict-"))
    config = resolve_config(flags={"head": "classifier", "backbone": "smallcnn", "epochs": 1,
                                   "image_size": args.image_size}, sets=["channels_last=false"])
    fit(data, data / "taxonomy.json", config, work / "run")
    pool = sorted(p for split in ("train", "val", "test") for p in (data / split).rglob("*.png"))
    print(f"hier predict, smallcnn at {args.image_size}px, CSV output; {machine()}")
    print(f"{'images':>8} {'seconds':>8} {'images/s':>9} {'peak MiB':>9}")
    for n in sorted(args.sizes):
        folder = work / f"images{n}"
        folder.mkdir()
        for i, p in enumerate(pool[:n]):
            os.link(p, folder / f"{i:06d}.png")
        seconds, peak = run_predict(work / "run", folder, work / f"p{n}.csv")
        print(f"{n:8d} {seconds:8.1f} {n / seconds:9.0f} {peak:9.0f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
