"""The rows ``hier predict`` writes: CSV, JSON lines or an EcoTaxa import table, to a file that lands whole."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from pathlib import Path

from hier.core.errors import InputError
from hier.core.files import atomic_open, check_output_folder, check_replaceable
from hier.taxo import Taxonomy, ecotaxa

COLUMNS = ("path", "node_id", "node_name", "depth", "confidence", "path_ids", "error")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".tsv": "ecotaxa"}
ECOTAXA_COLUMNS = ("img_file_name", "object_id", "object_annotation_category", "object_annotation_hierarchy",
                   "object_annotation_status", "object_hier_confidence")
PLACEHOLDER_ROOT = "root"  # the id Taxonomy.from_paths and the synthetic benchmark give an added root


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

    def __init__(self, stream, nodes: NodeText, folder: Path | None):
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


def open_writer(fmt: str, stream, top_k: int, nodes: NodeText, out: Path | None):
    """The writer of format ``fmt`` (see :func:`output_format`) on ``stream``; ``out`` is the file it goes to."""
    if fmt == "csv":
        return CsvWriter(stream, top_k, nodes)
    if fmt == "jsonl":
        return JsonlWriter(stream, top_k, nodes)
    return EcoTaxaWriter(stream, nodes, out.parent if out else None)


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
