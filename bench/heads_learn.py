"""Every built-in head, trained from the command line on the synthetic benchmark, against chance at every level.

For each head: `hier fit` (smallcnn from scratch, CPU), then `hier evaluate --json` on the test
split; per depth, the balanced accuracy (mean recall over the classes at that depth) is printed
with chance (1 / number of classes at that depth) and their ratio. Balanced accuracy is used so
that the long tail's big classes (detritus) cannot make a level look learnt.

    python bench/heads_learn.py [--images 3000] [--image-size 48] [--epochs 10]
    python bench/heads_learn.py --runs RUN_DIR...     # the same table from runs already evaluated
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, synthetic

HEADS = ("classifier", "arcface", "spheremulti", "spheremultihier", "arcface-multihead")


def hier(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "hier.cli", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    return done.stdout


def level_line(run_dir: Path, report: dict) -> str:
    """Balanced accuracy per depth against chance (1 / classes at that depth)."""
    from hier.taxo import Taxonomy

    depth = Taxonomy.load(run_dir / "taxonomy.json").depth
    levels = []
    for d, figures in sorted(report["per_level"].items(), key=lambda kv: int(kv[0])):
        chance = 1 / (figures.get("classes") or int((depth == int(d)).sum()))
        levels.append(f"d{d} {figures['balanced_accuracy']:.2f}/{chance:.2f} ({figures['balanced_accuracy'] / chance:.1f}x)")
    return "  ".join(levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=Path, nargs="+", help="evaluated run directories to read instead")
    args = parser.parse_args()
    if args.runs:
        for run in args.runs:
            print(f"{run.name:24} " + level_line(run, json.loads((run / "evaluation.json").read_text())))
        return

    data = synthetic(args.images, args.image_size)
    work = Path(tempfile.mkdtemp(prefix="hier-bench-learn-"))
    print(f"heads on the synthetic benchmark: {args.images} images at {args.image_size}px, smallcnn from scratch, "
          f"{args.epochs} epochs; test split, balanced accuracy per depth / chance; {machine()}")
    for head in HEADS:
        start = time.perf_counter()
        hier("fit", data, "--taxonomy", data / "taxonomy.json", "--head", head, "--backbone", "smallcnn",
             "--epochs", args.epochs, "--image-size", args.image_size, "-o", work / head)
        seconds = time.perf_counter() - start
        report = json.loads(hier("evaluate", work / head, data, "--uncalibrated", "--json"))
        print(f"{head:18} {seconds:5.0f}s  " + level_line(work / head, report))


if __name__ == "__main__":
    main()
