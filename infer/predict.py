"""``hier predict``: the deepest node the model is sure of, for every image, streamed to a file.

Images -> batches (unreadable files are skipped by the loader and reported as rows with an
``error``) -> scores -> node probabilities of ``scores / temperature`` -> the decoder (the
deepest node whose probability is at least the threshold) -> one row per image, written as
it comes to a partial file beside the output (``hier.infer.partial.Partial``; a kill leaves it, and the same
command run again continues it) that becomes the output at the end. Memory holds one batch of rows at a time,
whatever the number of images.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hier import runs
from hier.backbones.device import pick_device
from hier.core.errors import InputError
from hier.core.files import check_output_file
from hier.core.progress import Progress
from hier.core.tables import read_table
from hier.data.readers import IMAGE_SUFFIXES, PATH_COLUMNS, TABLE_SUFFIXES, images_under, read_dataset
from hier.infer.answer import AnswerRule, answer_batch, decode_rule, preference
from hier.infer.scoring import score_batches, unreadable_reason
from hier.infer.partial import join_shares, share
from hier.infer.writers import NodeText, Rows, open_writer, output_format
from hier.runs.calibration import weights_digest
from hier.train import distributed as dist
from hier.tree import TreeTensors

# ---- inputs -------------------------------------------------------------------------------------


def collect_images(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files from files, folders (searched recursively) and dataset files, in the order given.

    A table (.csv, .tsv, .txt; EcoTaxa exports included) lists images in its path column, relative to
    its folder; a .zip export is read as a dataset. Listed images that do not exist stay in the list
    (they become error rows).
    """
    images: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = images_under(path)
            if not found:
                raise InputError("no images in this folder or below it", path=path)
            images += found
        elif not path.exists():
            raise InputError("no such file or folder", path=path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        elif path.suffix.lower() in TABLE_SUFFIXES:
            images += listed_images(path)
        elif path.suffix.lower() == ".zip":
            images += [s.path for s in read_dataset(path, status=None).samples]
        else:
            raise InputError("not an image, a folder, or a table of images (.csv, .tsv, .zip)", path=path)
    if not images:
        raise InputError("no images given")
    return images


def listed_images(table: Path) -> list[Path]:
    """The images named in a table's path column (img_file_name, path, image, ...), relative to its folder."""
    header, rows = read_table(table)
    lowered = {h.lower(): k for k, h in enumerate(header)}
    column = next((lowered[name] for name in PATH_COLUMNS if name in lowered), None)
    if column is None:
        raise InputError(f"no image-path column (looked for {', '.join(PATH_COLUMNS)})", path=table)
    listed = [table.parent / row[column].strip() for row in rows if row[column].strip()]
    if not listed:
        raise InputError(f"the table lists no images (column {header[column]!r} is empty)", path=table)
    return listed


# ---- predict ------------------------------------------------------------------------------------


@dataclass
class PredictSummary:
    images: int
    unreadable: int
    out: Path | None
    seconds: float
    depth_counts: dict[int, int]  # how many answers at each depth


def predict(run_dir, inputs: Sequence[str | os.PathLike], rule: AnswerRule, *, out: Path | None = None,
            fmt: str | None = None, top_k: int = 0, force: bool = False, device: str = "auto",
            batch_size: int | None = None, workers: int | None = None,
            runtime: str | None = None, tta: bool | None = None, console=None,
            progress: bool = True) -> PredictSummary | None:
    """Answer every image by ``rule`` (see :func:`hier.infer.calibration.answer_rule`) and write the rows.

    With a ``console``, says there which temperature and threshold it answers with, and shows progress. Under
    torchrun each process answers a contiguous share of the images and the first joins the shares into one file,
    the rows one process writes; it returns the summary, the others None.
    """
    started = time.perf_counter()
    run_dir = runs.check_run_dir(run_dir)
    if top_k < 0:
        raise InputError(f"--top-k must be zero or more (got {top_k})")
    fmt = output_format(out, fmt)
    paths = collect_images(inputs)
    if out is not None:
        # the run, the tables and every image; a folder given may take the output (only its images are read)
        read = [*runs.run_files(run_dir), *(p for p in inputs if not Path(p).is_dir()), *paths]
        check_output_file(out, force=force, inputs=read)
    dist.setup()
    try:
        shard = dist.rank(), dist.world_size()
        if shard[1] > 1 and (out is None or out.suffix.lower() == ".zip"):
            raise InputError("under torchrun each process writes its share of one table: give -o NAME.csv, "
                             "NAME.jsonl or ecotaxa_NAME.tsv")
        device = pick_device(device)
        model, taxonomy, config = runs.load_trained(run_dir, device)
        config["runtime"] = runtime or config.get("runtime")  # --runtime, else the run's own
        config["tta"] = config.get("tta") if tta is None else tta  # --tta/--no-tta, else the run's own
        if top_k > len(taxonomy.leaves):
            warnings.warn(f"--top-k {top_k} is more than the {len(taxonomy.leaves)} leaves; all of them are listed")
            top_k = len(taxonomy.leaves)
        if console is not None and dist.is_main():  # once nothing can fail on the user's input any more
            console.print(rule.describe(), soft_wrap=True)
        mine = share(paths, shard)
        key = (resume_key(run_dir, rule, config, fmt, top_k, mine) + f"-{shard[0]}of{shard[1]}") if out else ""
        with Progress(console=console, enabled=progress and dist.is_main()) as bar, \
                open_writer(fmt, out, top_k, NodeText(taxonomy), paths, force=force, key=key, shard=shard) as rows:
            _write(rows, mine, model, config, device, rule, TreeTensors(taxonomy).to(device), top_k, bar,
                   batch_size=batch_size, workers=workers, cache_dir=runs.export_cache(run_dir))
        if shard[1] > 1:
            dist.barrier()  # every share is written
            if dist.is_main():
                join_shares(out, shard[1], force)
        counts = dist.gather((rows.unreadable, rows.depths))
    finally:
        dist.teardown()
    if counts is None:
        return None
    depths = {d: sum(c[1].get(d, 0) for c in counts) for d in sorted({d for c in counts for d in c[1]})}
    return PredictSummary(len(paths), sum(c[0] for c in counts), out, time.perf_counter() - started, depths)


def _write(rows: Rows, mine: Sequence[Path], model, config: dict, device, rule: AnswerRule, tree: TreeTensors,
           top_k: int, bar: Progress, **scoring) -> None:
    """The rows of this process's images that a stopped run of the same command did not write."""
    if rows.done:
        bar.print(f"continuing: {rows.done:,} of {len(mine):,} images were answered by a run of this command "
                  "that stopped")
    todo = mine[rows.done:]
    order = preference(tree, decode_rule(config))
    try:
        for span, answers in _answers(model, todo, config, device, rule, tree, top_k, order, bar, **scoring):
            for i in span:
                if i in answers:
                    node, p, top = answers[i]
                    rows.write(todo[i], node, p, top, "")
                else:
                    rows.write(todo[i], None, float("nan"), [], unreadable_reason(todo[i]))
            rows.saved()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM
        if rows.partial is not None and rows.partial.done:
            bar.print(f"stopped: the rows of {rows.partial.done:,} of {len(mine):,} images are kept in "
                      f"{rows.partial.rows}; the same command continues them")
        raise


def _answers(model, todo: Sequence[Path], config: dict, device, rule: AnswerRule, tree: TreeTensors, top_k: int,
             rank, bar: Progress, **scoring):
    """Yields (span, answers) per batch: the indices of ``todo`` it holds, and the answers of those read, by index."""
    for span, readable, scores in score_batches(model, todo, config, device, progress=bar, what="predict", **scoring):
        yield span, answer_batch(model, scores, readable, rule, tree, top_k, rank) if scores is not None else {}


def resume_key(run_dir: Path, rule: AnswerRule, config: dict, fmt: str, top_k: int, paths: Sequence[Path]) -> str:
    """What the rows depend on: the run's weights, the answer rule, the settings and the images, in order.

    A partial output (``hier.infer.partial.Partial``) is continued only by a run with the same key."""
    h = hashlib.sha256()
    h.update(json.dumps([weights_digest(run_dir), repr(rule), fmt, top_k, decode_rule(config),
                         *(config.get(k) for k in ("runtime", "runtime_precision", "tta", "image_size", "keep_size",
                                                    "mean", "std", "interpolation"))], default=str).encode())
    for p in paths:
        h.update(os.fsencode(p) + b"\n")
    return h.hexdigest()
