"""Shared by the benchmarks: a synthetic dataset in a temporary folder, and a one-line machine note."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def synthetic(images: int, size: int, seed: int = 0) -> Path:
    """A fresh `hier data synth` dataset (deleted when the process ends)."""
    from hier.data.synth import synthesize

    root = Path(tempfile.mkdtemp(prefix="hier-bench-"))
    import atexit
    import shutil

    atexit.register(shutil.rmtree, root, ignore_errors=True)
    synthesize(root / "data", seed=seed, images=images, size=size, unseen=0)
    return root / "data"


def seconds(step, repeats: int, *, warmup: int = 1, reduce=min, clock=None) -> float:
    """Time ``step()`` ``repeats`` times after ``warmup`` calls; ``min`` by default, since on a shared
    machine the slower runs measure who else was running. ``clock``: wall time by default;
    ``time.process_time`` counts only this process's CPU time, which other jobs on the machine
    barely change (for single-threaded work)."""
    import time

    clock = clock or time.perf_counter
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = clock()
        step()
        times.append(clock() - start)
    return reduce(times)


def link(files: list[Path], folder: Path) -> None:
    """Hard links of ``files`` as FOLDER/CLASS/NAME (a class folder dataset, no bytes copied)."""
    for f in files:
        target = folder / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(f, target)


def machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


# The process reports its own peak resident memory as it exits.
PREDICT = """
import atexit, sys
# VmHWM: this program's own peak; ru_maxrss would also count the bench's pages the fork copied before exec
atexit.register(lambda: print("PEAK_KIB", next(line.split()[1] for line in open("/proc/self/status")
                                                if line.startswith("VmHWM")), file=sys.stderr))
from hier.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_predict(run_dir: Path, images: Path, out: Path, *options: str) -> tuple[float, float]:
    """(seconds, peak MiB) of one `hier predict` process (``options``: more flags, e.g. --runtime torch)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PREDICT, "predict", str(run_dir), str(images),
                           "--confidence", "0.9", "-o", str(out), "--force", *options], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr)
    peak_kib = int(done.stderr.rsplit("PEAK_KIB", 1)[1].split()[0])
    return seconds, peak_kib / 1024
