"""Frozen backbone: epochs on cached features against epochs that recompute the backbone, side by side.

Both runs train the same model (resnet18 with weights from a local file, frozen; embedding block
and head trained) on the same images with augmentation off; one caches the backbone features in
the first epoch (`feature_cache=memory`), the other recomputes them every epoch (`off`). The
figure is the time per epoch after the first, from each run's metrics.csv.

    python bench/feature_cache.py [--images 1000] [--image-size 64] [--epochs 3]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, synthetic


def epoch_seconds(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(row["seconds"]) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    from hier.plugins import create_backbone
    from hier.runs.config import resolve_config
    from hier.train.fit import fit

    data = synthetic(args.images, args.image_size)
    work = Path(tempfile.mkdtemp(prefix="hier-bench-cache-"))
    weights = work / "resnet18.pth"
    torch.save(create_backbone("resnet18")[0].state_dict() | {"fc.weight": torch.zeros(1000, 512),
                                                              "fc.bias": torch.zeros(1000)}, weights)
    results = {}
    for mode in ("off", "memory"):
        config = resolve_config(flags={"head": "arcface", "backbone": "resnet18", "weights": str(weights),
                                       "epochs": args.epochs, "image_size": args.image_size, "batch_size": 64},
                                sets=["augment=false", f"feature_cache={mode}"])
        start = time.perf_counter()
        fit(data, data / "taxonomy.json", config, work / mode)
        results[mode] = (epoch_seconds(work / mode), time.perf_counter() - start)
    (off, off_total), (cached, cached_total) = results["off"], results["memory"]
    later_off, later_cached = sum(off[1:]) / len(off[1:]), sum(cached[1:]) / len(cached[1:])
    print(f"feature cache, resnet18 frozen, {args.images} images at {args.image_size}px, {args.epochs} epochs; "
          f"{machine()}")
    print(f"{'':28} {'first epoch':>12} {'later epochs':>13} {'whole run':>10}")
    print(f"{'recompute backbone (off)':28} {off[0]:11.2f}s {later_off:12.3f}s {off_total:9.1f}s")
    print(f"{'cached features (memory)':28} {cached[0]:11.2f}s {later_cached:12.3f}s {cached_total:9.1f}s")
    print(f"later epochs: cache is {later_off / later_cached:.1f}x faster; whole run {off_total / cached_total:.1f}x")


if __name__ == "__main__":
    main()
