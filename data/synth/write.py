"""Writing the benchmark: the images (by a pool of worker processes), taxonomy.json and the two tables."""

from __future__ import annotations

import csv
import errno
import io
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hier.core.errors import HierError, InputError
from hier.core.files import WRITE_ERRORS, atomic_folder, atomic_write_text, check_replaceable
from hier.data.readers import Sample
from hier.data.splits import stratified_split
from hier.taxo import ecotaxa
from hier.taxo.taxonomy import tree_from_parents

from .draw import draw_object
from .taxonomy import (
    AMBIGUOUS_FRACTION,
    MIN_PER_CLASS,
    SynthTree,
    build_tree,
    class_order,
    class_sizes,
)

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
FORMATS = {"png": ".png", "jpg": ".jpg"}


@dataclass
class SynthResult:
    out_dir: Path
    split_counts: dict[str, int]
    unseen_images: int
    num_classes: int
    held_out: list[str]
    ambiguous_images: int
    seconds: float


_WORKER: dict = {}


def _init_worker(looks: dict, size: int, seed: int, root: str) -> None:
    _WORKER.update(looks=looks, size=size, seed=seed, root=root)


def _init_pool_worker(*args) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool and cleans up
    _init_worker(*args)


def _render(jobs: list[tuple[int, str, str, bool]]) -> int:
    """Draw and write images; each one's generator depends only on (seed, index)."""
    w = _WORKER
    for index, label, relative, ambiguous in jobs:
        rng = np.random.default_rng([w["seed"], index])
        image = draw_object(w["looks"][label], w["size"], rng, ambiguous=ambiguous)
        buffer = io.BytesIO()
        if relative.endswith(".png"):
            image.save(buffer, "PNG", compress_level=3)
        else:
            image.save(buffer, "JPEG", quality=92)
        Path(w["root"], relative).write_bytes(buffer.getvalue())  # inside the staging folder, renamed at the end
    return len(jobs)


def _check_arguments(out_dir: Path, force: bool, image_format: str, size: int) -> None:
    """Every argument, before anything is written or replaced."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder", path=out_dir)
    if not out_dir.parent.is_dir():
        raise InputError("the parent folder does not exist", path=out_dir.parent)
    if not os.access(out_dir.parent, os.W_OK):
        raise InputError("the folder is not writable (read-only, or another user's)", path=out_dir.parent)
    if image_format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)} (got {image_format!r})")
    if size < 16:
        raise InputError(f"--size must be at least 16 pixels (got {size})")
    check_replaceable(out_dir, force=force, own=SYNTH_FILES)


def _write_error(error: OSError, out_dir: Path) -> HierError:
    """A failed write as one line naming the folder: a full disk (exit 1), no permission (exit 2)."""
    if error.errno in WRITE_ERRORS:
        return HierError(f"{out_dir}: cannot write ({error.strerror}); nothing was kept")
    if error.errno in (errno.EACCES, errno.EPERM):
        return InputError(f"cannot write ({error.strerror})", path=out_dir)
    raise error


# Everything `hier data synth` writes: what its --force may replace.
SYNTH_FILES = frozenset({"taxonomy.json", "lineage.csv", "ecotaxa_export.tsv", "train", "val", "test", "unseen"})


def synthesize(out_dir: str | os.PathLike, *, seed: int = 0, images: int = 10_000, size: int = 64, unseen: int = 3,
               depth: int = 4, image_format: str = "png", force: bool = False, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Write the benchmark to ``out_dir`` (layout: docs/data.md); ``progress(done, total)`` follows the writing.

    ``images`` counts the train/val/test images; each held-out species adds the mean class
    size to ``unseen/``. Everything is written to a hidden staging folder beside ``out_dir``
    and renamed at the end, so an interrupted run leaves no dataset that looks complete.
    """
    started = time.perf_counter()
    out_dir = Path(os.path.abspath(out_dir))
    _check_arguments(out_dir, force, image_format, size)
    tree = build_tree(depth, unseen)
    taxonomy = tree_from_parents([r for r in tree.records if r["id"] not in tree.held_out], source="synthetic")
    classes = class_order(tree)
    sizes = class_sizes(len(classes), images)
    suffix = FORMATS[image_format]

    rng = np.random.default_rng(seed)
    samples, ambiguous = [], set()
    for label, count in zip(classes, sizes):
        first = len(samples)
        samples += [Sample(Path(f"img_{first + k:06d}{suffix}"), label) for k in range(count)]
        if tree.neighbours.get(label):
            chosen = rng.permutation(count)[: round(AMBIGUOUS_FRACTION * count)]
            ambiguous.update(samples[first + k].path.name for k in chosen)
    splits = stratified_split(samples, SPLIT_FRACTIONS, seed=seed)
    rows = [(split, s) for split, members in splits.items() for s in members]
    rows.sort(key=lambda row: row[1].path.name)

    per_unseen = max(MIN_PER_CLASS, round(images / len(classes)))
    unseen_jobs = []
    for species in tree.held_out:
        genus = tree.genus_of[species]
        for _ in range(per_unseen):
            index = images + len(unseen_jobs)
            unseen_jobs.append((index, species, f"unseen/{genus}/{species}_{index:06d}{suffix}", False))

    jobs = [(int(s.path.stem.split("_")[1]), s.label, f"{split}/{s.label}/{s.path.name}", s.path.name in ambiguous)
            for split, s in rows] + unseen_jobs
    looks = {label: {**look, "neighbours": tree.neighbours.get(label, [])} for label, look in tree.looks.items()}

    try:
        with atomic_folder(out_dir, replace=True) as staging:
            for folder in {str(Path(relative).parent) for _, _, relative, _ in jobs}:
                (staging / folder).mkdir(parents=True, exist_ok=True)
            _render_all(jobs, looks, size, seed, staging, workers, progress)
            taxonomy.save(staging / "taxonomy.json")
            _write_tables(staging, tree, rows, ambiguous)
    except OSError as e:
        raise _write_error(e, out_dir) from None
    return SynthResult(out_dir, {name: len(members) for name, members in splits.items()}, len(unseen_jobs),
                       len(classes), list(tree.held_out), len(ambiguous), time.perf_counter() - started)


def _render_all(jobs, looks, size, seed, staging: Path, workers: int | None, progress) -> None:
    chunk = 64
    batches = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = workers or min(cores, max(1, len(jobs) // 500))
    done = 0
    if workers == 1:
        _init_worker(looks, size, seed, str(staging))
        for batch in batches:
            done += _render(batch)
            if progress:
                progress(done, len(jobs))
        return
    # forkserver: workers start clean, whatever threads the calling process runs
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with context.Pool(workers, initializer=_init_pool_worker, initargs=(looks, size, seed, str(staging))) as pool:
        for count in pool.imap_unordered(_render, batches):
            done += count
            if progress:
                progress(done, len(jobs))


def _write_tables(root: Path, tree: SynthTree, rows: list[tuple[str, Sample]], ambiguous: set[str]) -> None:
    """``lineage.csv`` and ``ecotaxa_export.tsv``: one row per train/val/test image, same order."""
    names = {r["id"]: r["name"] for r in tree.records}
    lineages = {label: ">".join(tree.lineage_names(label)) for label in {s.label for _, s in rows}}

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["path", "label", "lineage", "split", "ambiguous"])
    for split, s in rows:
        writer.writerow([f"{split}/{s.label}/{s.path.name}", s.label, lineages[s.label], split,
                         int(s.path.name in ambiguous)])
    atomic_write_text(root / "lineage.csv", table.getvalue())

    export = io.StringIO()
    writer = csv.writer(export, delimiter="\t", lineterminator="\n")
    ecotaxa.write_header(writer, ["object_id", "img_file_name", "object_annotation_status",
                                  "object_annotation_category", "object_annotation_hierarchy", "object_set",
                                  "object_ambiguous"], numbers=["object_ambiguous"])
    for split, s in rows:
        writer.writerow([s.path.stem, f"{split}/{s.label}/{s.path.name}", "validated", names[s.label],
                         lineages[s.label], split, int(s.path.name in ambiguous)])
    atomic_write_text(root / "ecotaxa_export.tsv", export.getvalue())

