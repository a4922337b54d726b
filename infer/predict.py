"""``hier predict``: the deepest node the model is sure of, for every image, streamed to a file.

Images -> batches (unreadable files are skipped by the loader and reported as rows with an
``error``) -> scores -> node probabilities of ``scores / temperature`` -> the decoder (the
deepest node whose probability is at least the threshold) -> one row per image, written as
it comes to a temporary file beside the output that is renamed at the end. Memory holds one
batch of rows at a time, whatever the number of images.

Also here, because calibration and evaluation share them: the scores of a list of images,
and the held-out split of a dataset a run is calibrated or evaluated on.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from hier.core.errors import InputError
from hier.core.files import atomic_open, check_output_folder, check_replaceable
from hier.core.progress import Progress
from hier.core.tables import read_table
from hier.data.images import (
    ImageDataset,
    UnreadableImage,
    build_transform,
    collate_skipping,
    load_image,
)
from hier.data.readers import (
    IMAGE_SUFFIXES,
    PATH_COLUMNS,
    Dataset,
    Sample,
    images_under,
    read_dataset,
)
from hier.data.splits import saved_split
from hier.heads.tree import TreeTensors
from hier.metrics.hierarchical import decode, top_leaves
from hier.taxo import Taxonomy, ecotaxa
from hier.train import runs
from hier.train.device import autocast, pick_device

COLUMNS = ("path", "node_id", "node_name", "depth", "confidence", "path_ids", "error")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".tsv": "ecotaxa"}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
ECOTAXA_COLUMNS = ("img_file_name", "object_id", "object_annotation_category", "object_annotation_hierarchy",
                   "object_annotation_status", "object_hier_confidence")
PLACEHOLDER_ROOT = "root"  # the id Taxonomy.from_paths and the synthetic benchmark give an added root


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
    return [table.parent / row[column].strip() for row in rows if row[column].strip()]


# ---- scores -------------------------------------------------------------------------------------


def score_batches(model, paths: Sequence[Path], config: dict, device: torch.device, *,
                  batch_size: int | None = None, workers: int | None = None,
                  progress: Progress | None = None, what: str = "images"
                  ) -> Iterator[tuple[range, torch.Tensor, torch.Tensor | None]]:
    """Yields (span, readable, scores) per batch, in order: the sample indices of the batch, those that
    could be read, and their scores [len(readable), width] on ``device`` (None when none could be read)."""
    batch_size = batch_size or config["batch_size"]
    data = ImageDataset(paths, transform=build_transform(config["image_size"], train=False,
                                                         keep_size=config["keep_size"]), return_index=True)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, collate_fn=collate_skipping,
                                         num_workers=config["workers"] if workers is None else workers,
                                         pin_memory=device.type == "cuda")
    task = progress.add(what, total=len(data)) if progress else None
    for number, batch in enumerate(loader):
        span = range(number * batch_size, min((number + 1) * batch_size, len(data)))
        if batch is None:
            yield span, torch.empty(0, dtype=torch.long), None
        else:
            images, _, readable = batch
            with torch.no_grad(), autocast(device, config):
                scores = model(images.to(device, non_blocking=True))
            yield span, readable, scores.float()
        if progress:
            progress.advance(task, len(span), images=len(span))
    if progress:
        progress.done(task)


def unreadable_reason(path: Path) -> str:
    """Why an image the loader skipped cannot be read (decoded again, once, for the message)."""
    try:
        load_image(path)
    except UnreadableImage as e:
        return str(e).removeprefix(f"{path}: ")
    return "could not be read"


@dataclass
class Scored:
    scores: torch.Tensor  # [n readable, width], on the CPU
    targets: torch.Tensor  # [n readable]
    unreadable: list[Path]


def score_samples(model, samples: Sequence[Sample], nodes: dict[str, int], config: dict, device, *,
                  batch_size: int | None = None, workers: int | None = None,
                  progress: Progress | None = None, what: str = "images") -> Scored:
    """Scores and node targets of every readable sample (calibration and evaluation hold them all)."""
    paths = [s.path for s in samples]
    targets = torch.tensor([nodes[s.label] for s in samples], dtype=torch.long)
    scores, kept, unreadable = [], [], []
    for span, readable, batch_scores in score_batches(model, paths, config, device, batch_size=batch_size,
                                                      workers=workers, progress=progress, what=what):
        unreadable += [paths[i] for i in sorted(set(span) - set(readable.tolist()))]
        if batch_scores is not None:
            scores.append(batch_scores.cpu())
            kept.append(targets[readable])
    if not scores:
        raise InputError(f"none of the {len(paths)} {what} could be read")
    return Scored(torch.cat(scores), torch.cat(kept), unreadable)


@torch.no_grad()
def node_probabilities(model, scores: torch.Tensor, temperature: float, device, rows: int = 8192) -> torch.Tensor:
    """Probabilities of ``scores / temperature`` on the CPU, computed on ``device`` a chunk at a time."""
    return torch.cat([model.node_probabilities(chunk.to(device) / temperature).float().cpu()
                      for chunk in scores.split(rows)])


# ---- held-out splits ----------------------------------------------------------------------------


def dataset_of(run_dir: Path, dataset, command: str) -> Path:
    """The dataset given, else the one the run was trained on (``hier fit`` records it in the config)."""
    if dataset is not None:
        return Path(dataset)
    recorded = runs.read_config(run_dir).get("dataset")
    if not recorded:
        raise InputError(f"this run does not record its dataset; give it: hier {command} RUN_DIR DATASET",
                         path=run_dir)
    return Path(recorded)


def held_out_split(run_dir: Path, dataset_path, split: str | None, default: str) -> tuple[list[Sample], str, Dataset]:
    """The samples to calibrate or evaluate on, the split's name, and the dataset read.

    A dataset with its own splits gives ``split`` (else ``default``). A dataset without splits gives the
    run's saved split of that name (``split.json``, written by ``hier fit`` on that dataset) when every
    image of it is in the dataset, else all of its images (a dataset the run never saw).
    """
    dataset = read_dataset(dataset_path)
    name = split or default
    if dataset.has_splits:
        return dataset.split(name), name, dataset
    saved = saved_split(run_dir / runs.SPLIT, dataset, name) if name != "all" else None
    if saved is not None:
        return saved, name, dataset
    if split not in (None, "all"):
        raise InputError(f"no split {split!r}: the dataset has no splits and the run saved none of that name "
                         "(leave out --split to use all of it)", path=dataset_path)
    return dataset.samples, "all", dataset


# ---- rows and writers ---------------------------------------------------------------------------


class NodeText:
    """Per-node strings of the output (path ids, EcoTaxa hierarchy), built once per node on demand."""

    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self._path_ids: dict[int, str] = {}
        self._hierarchy: dict[int, str] = {}
        self.placeholder_root = taxonomy.ids[taxonomy.root] == PLACEHOLDER_ROOT

    def path_ids(self, node: int) -> str:
        if node not in self._path_ids:
            self._path_ids[node] = self.taxonomy.path_ids(node)
        return self._path_ids[node]

    def hierarchy(self, node: int) -> str:
        """EcoTaxa's ``living>...>name``: names from the top, without a placeholder root."""
        if node not in self._hierarchy:
            lineage = self.taxonomy.lineage(node)[1 if self.placeholder_root else 0:]
            self._hierarchy[node] = ">".join(self.taxonomy.names[i] for i in lineage)
        return self._hierarchy[node]


class CsvWriter:
    def __init__(self, stream, top_k: int, nodes: NodeText):
        self.nodes = nodes
        self.top_columns = [f"top{i}_{what}" for i in range(1, top_k + 1) for what in ("id", "confidence")]
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(list(COLUMNS) + self.top_columns)

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        taxonomy = self.nodes.taxonomy
        if node is None:
            self.writer.writerow([str(path), "", "", "", "", "", error] + [""] * len(self.top_columns))
            return
        top_cells = [cell for leaf, p in top for cell in (taxonomy.ids[leaf], f"{p:.6f}")]
        self.writer.writerow([str(path), taxonomy.ids[node], taxonomy.names[node], int(taxonomy.depth[node]),
                              f"{confidence:.6f}", self.nodes.path_ids(node), ""] + top_cells)


class JsonlWriter:
    def __init__(self, stream, top_k: int, nodes: NodeText):
        self.stream, self.top_k, self.nodes = stream, top_k, nodes

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        taxonomy = self.nodes.taxonomy
        if node is None:
            record = dict.fromkeys(COLUMNS)
            record.update(path=str(path), error=error)
        else:
            record = {"path": str(path), "node_id": taxonomy.ids[node], "node_name": taxonomy.names[node],
                      "depth": int(taxonomy.depth[node]), "confidence": round(confidence, 6),
                      "path_ids": self.nodes.path_ids(node), "error": None}
        if self.top_k:
            record["top_k"] = [{"node_id": taxonomy.ids[leaf], "node_name": taxonomy.names[leaf],
                                "confidence": round(p, 6)} for leaf, p in top]
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")


class EcoTaxaWriter:
    """An EcoTaxa import table: one row per readable image, status ``predicted``.

    Unreadable images are left out (an import cannot hold them; they are counted in the summary). An
    answer at a placeholder root (the model is sure of nothing) leaves the object unclassified.
    ``img_file_name`` is relative to the table's folder when the image is inside it.
    """

    def __init__(self, stream, top_k: int, nodes: NodeText, folder: Path | None):
        self.nodes, self.folder = nodes, folder.resolve() if folder else None
        self.writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        ecotaxa.write_header(self.writer, ECOTAXA_COLUMNS, numbers=ECOTAXA_COLUMNS[-1:])

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        if node is None:
            return
        name = self._relative(path)
        object_id = os.path.splitext(name)[0].replace("/", "_").replace("\\", "_")
        if node == self.nodes.taxonomy.root and self.nodes.placeholder_root:
            self.writer.writerow([name, object_id, "", "", "", f"{confidence:.6f}"])
            return
        self.writer.writerow([name, object_id, self.nodes.taxonomy.names[node], self.nodes.hierarchy(node),
                              "predicted", f"{confidence:.6f}"])

    def _relative(self, path: Path) -> str:
        if self.folder is not None:
            resolved = path.resolve()
            if resolved.is_relative_to(self.folder):
                return resolved.relative_to(self.folder).as_posix()
        return str(path)


def output_format(out: Path | None, fmt: str | None) -> str:
    if fmt is not None:
        choices = sorted(set(FORMATS.values()))
        if fmt not in choices:
            raise InputError(f"--format must be one of {', '.join(choices)} (got {fmt!r})")
        return fmt
    if out is None:
        return "csv"
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise InputError(f"unknown output type {out.suffix or '(none)'!r}: name the file .csv, .jsonl or .tsv "
                         "(EcoTaxa), or give --format", path=out) from None


def check_output(out: Path, force: bool) -> None:
    if out.is_dir():
        raise InputError("is a folder, expected an output file", path=out)
    check_replaceable(out, force=force)
    check_output_folder(out)


@contextlib.contextmanager
def atomic_output(out: Path | None):
    """A text stream to ``out`` that lands whole or not at all (see ``atomic_open``); stdout when None."""
    if out is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_open(out, "w", encoding="utf-8", newline="") as stream:
        yield stream


# ---- predict ------------------------------------------------------------------------------------


@dataclass
class PredictSummary:
    images: int
    unreadable: int
    out: Path | None
    seconds: float
    depth_counts: dict[int, int]  # how many answers at each depth


def predict(run_dir, inputs: Sequence[str | os.PathLike], decoding, *, out: Path | None = None,
            fmt: str | None = None, top_k: int = 0, force: bool = False, device: str = "auto",
            batch_size: int | None = None, workers: int | None = None, console=None,
            progress: bool = True) -> PredictSummary:
    """Decode every image at ``decoding`` (see :func:`hier.infer.calibration.decoding`) and write the rows.

    With a ``console``, says there which temperature and threshold it decodes with, and shows progress.
    """
    started = time.perf_counter()
    run_dir = runs.check_run_dir(run_dir)
    if top_k < 0:
        raise InputError(f"--top-k must be zero or more (got {top_k})")
    fmt = output_format(out, fmt)
    if out is not None:
        check_output(out, force)
    paths = collect_images(inputs)
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    if console is not None:  # once nothing can fail on the user's input any more
        console.print(decoding.describe(), soft_wrap=True)
    tree = TreeTensors(taxonomy).to(device)
    nodes = NodeText(taxonomy)
    depth_counts: dict[int, int] = {}
    unreadable = 0
    with Progress(console=console, enabled=progress) as bar, atomic_output(out) as stream:
        writer = {"csv": lambda: CsvWriter(stream, top_k, nodes), "jsonl": lambda: JsonlWriter(stream, top_k, nodes),
                  "ecotaxa": lambda: EcoTaxaWriter(stream, top_k, nodes, out.parent if out else None)}[fmt]()
        for span, readable, scores in score_batches(model, paths, config, device, batch_size=batch_size,
                                                    workers=workers, progress=bar, what="predict"):
            answers = {}
            if scores is not None:
                with torch.no_grad():
                    probs = model.node_probabilities(scores / decoding.temperature)
                chosen = decode(probs, decoding.threshold, tree.depth)
                confidence = probs.gather(1, chosen[:, None])[:, 0]
                top = top_leaves(probs, tree, top_k) if top_k else chosen.new_empty(len(chosen), 0)
                top_p = probs.gather(1, top)
                for i, node, p, leaves, leaf_p in zip(readable.tolist(), chosen.tolist(), confidence.tolist(),
                                                      top.tolist(), top_p.tolist()):
                    answers[i] = (node, p, list(zip(leaves, leaf_p)))
            for i in span:
                if i in answers:
                    node, p, top_pairs = answers[i]
                    depth = int(taxonomy.depth[node])
                    depth_counts[depth] = depth_counts.get(depth, 0) + 1
                    writer.write(paths[i], node, p, top_pairs, "")
                else:
                    unreadable += 1
                    writer.write(paths[i], None, float("nan"), [], unreadable_reason(paths[i]))
    return PredictSummary(len(paths), unreadable, out, time.perf_counter() - started,
                          dict(sorted(depth_counts.items())))
