"""Shared by the benchmarks: a synthetic dataset in a temporary folder, and a one-line machine note."""

from __future__ import annotations

import os
import platform
import tempfile
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


def seconds(step, repeats: int, *, warmup: int = 1, reduce=min) -> float:
    """Time ``step()`` ``repeats`` times after ``warmup`` calls; ``min`` by default, since on a shared
    machine the slower runs measure who else was running."""
    import time

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return reduce(times)


def machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")
