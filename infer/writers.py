"""The rows ``hier predict`` writes: CSV, JSON lines or an EcoTaxa import (a table, or a zip with the images)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from hier.core.errors import InputError
from hier.core.files import atomic_open, check_replaceable, output_lock
from hier.infer.partial import Partial, share
from hier.taxo import Taxonomy, ecotaxa

COLUMNS = ("path", "node_id", "node_name", "depth", "confidence", "path_ids", "error")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".tsv": "ecotaxa", ".zip": "ecotaxa"}
# EcoTaxa's own columns, then three of ours (object_* columns become the project's free fields)
ECOTAXA_COLUMNS = ("img_file_name", "object_id", "object_annotation_category", "object_annotation_hierarchy",
                   "object_annotation_status", "object_hier_node_id", "object_hier_depth", "object_hier_confidence")
ECOTAXA_NUMBERS = ("object_hier_depth", "object_hier_confidence")
BOM = "\ufeff"
# What a spreadsheet reads as a formula at the start of a cell (OWASP, CSV injection): such a text cell gets a
# leading single quote; a path gets "./" instead, which keeps it the same path.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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


def printable(path) -> str:
    """A file name as text: bytes that are not UTF-8 (os.fsdecode's surrogates) written as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def text_cell(text: str) -> str:
    """A text cell of a CSV or TSV that no spreadsheet runs as a formula (numbers are written as they are)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def path_cell(path) -> str:
    """A path cell, printable and never read as a formula: a relative path gets "./", the same path."""
    text = printable(path)
    return "./" + text if text.startswith(FORMULA_START) else text


class CsvWriter:
    def __init__(self, stream, top_k: int, nodes: NodeText, header: bool = True):
        self.nodes = nodes
        self.top_columns = [f"top{i}_{what}" for i in range(1, top_k + 1) for what in ("id", "confidence")]
        self.writer = csv.writer(stream, lineterminator="\n")
        if header:  # not when continuing a partial file, which has it
            self.writer.writerow(list(COLUMNS) + self.top_columns)

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        taxonomy = self.nodes.taxonomy
        if node is None:
            empty = [""] * len(self.top_columns)
            self.writer.writerow([path_cell(path), "", "", "", "", "", text_cell(printable(error))] + empty)
            return
        top_cells = [cell for leaf, p in top for cell in (text_cell(taxonomy.ids[leaf]), f"{p:.6f}")]
        self.writer.writerow([path_cell(path), text_cell(taxonomy.ids[node]), text_cell(taxonomy.names[node]),
                              int(taxonomy.depth[node]), f"{confidence:.6f}", text_cell(self.nodes.path_ids(node)),
                              ""] + top_cells)


class JsonlWriter:
    def __init__(self, stream, top_k: int, nodes: NodeText):
        self.stream, self.top_k, self.nodes = stream, top_k, nodes

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        taxonomy = self.nodes.taxonomy
        if node is None:
            record = dict.fromkeys(COLUMNS)
            record.update(path=printable(path), error=printable(error))
        else:
            record = {"path": printable(path), "node_id": taxonomy.ids[node], "node_name": taxonomy.names[node],
                      "depth": int(taxonomy.depth[node]), "confidence": round(confidence, 6),
                      "path_ids": self.nodes.path_ids(node), "error": None}
        if self.top_k:
            record["top_k"] = [{"node_id": taxonomy.ids[leaf], "node_name": taxonomy.names[leaf],
                                "confidence": round(p, 6)} for leaf, p in top]
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")


class EcoTaxaWriter:
    """An EcoTaxa import table (``ecotaxa*.tsv``, UTF-8 with a byte order mark): one row per readable image.

    Unreadable images are left out (an import cannot hold them; they are counted in the summary). An
    answer at a placeholder root (the model is sure of nothing) leaves the object unclassified (EcoTaxa
    wants a category with a status and a status with a category). ``names`` maps each image to its
    ``img_file_name``, relative to the table; its object id is that name, percent-encoded (unique and
    stable: ``a/b_c.png`` and ``a_b/c.png`` stay two objects). ``on_row(path, name)`` is told of every
    row written (the zip copies the image then).
    """

    def __init__(self, stream, nodes: NodeText, names: dict[Path, str], on_row=None, header: bool = True):
        self.nodes, self.names, self.on_row = nodes, names, on_row
        self.writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        if header:
            stream.write(BOM)  # EcoTaxa reads a TSV as latin-1 unless it starts with one
            ecotaxa.write_header(self.writer, ECOTAXA_COLUMNS, numbers=ECOTAXA_NUMBERS)

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        if node is None:
            return
        name = self.names[path]
        taxonomy = self.nodes.taxonomy
        if node == taxonomy.root and self.nodes.placeholder_root:
            category, hierarchy, status = "", "", ""
        else:
            category, hierarchy, status = taxonomy.names[node], self.nodes.hierarchy(node), "predicted"
        self.writer.writerow([path_cell(name), object_id(name), text_cell(category), text_cell(hierarchy), status,
                              text_cell(taxonomy.ids[node]), int(taxonomy.depth[node]), f"{confidence:.6f}"])
        if self.on_row is not None:
            self.on_row(path, name)


def object_id(name: str) -> str:
    """An EcoTaxa object id from an image's name in the import: the name, percent-encoded (injective), its
    first character too when a spreadsheet would read it as a formula."""
    encoded = quote(name, safe=" ()+,-.=@_~")
    return f"%{ord(encoded[0]):02X}{encoded[1:]}" if encoded.startswith(FORMULA_START) else encoded


def ecotaxa_names(paths: Sequence[Path], out: Path) -> dict[Path, str]:
    """Each image's ``img_file_name``: relative to the table's folder (a .tsv), or to the images' common
    folder (a .zip, which holds copies of them). An image outside a table's folder, or given twice, is
    refused before any work: EcoTaxa finds images relative to the table, and one object per image."""
    absolute = {p: Path(os.path.abspath(p)) for p in paths}
    if out.suffix.lower() == ".zip":
        base = Path(os.path.commonpath([a.parent for a in absolute.values()]))
    else:
        base = Path(os.path.abspath(out.parent))
        outside = [p for p, a in absolute.items() if not a.is_relative_to(base)]
        if outside:
            raise InputError(f"{len(outside)} images lie outside the table's folder (first: {outside[0]}); EcoTaxa "
                             "finds images relative to the table: write it into a folder above them, or write a "
                             "ready-to-upload zip with copies of the images (-o NAME.zip)", path=out)
    names = {p: printable(a.relative_to(base).as_posix()) for p, a in absolute.items()}
    odd = next((p for p, name in names.items() if "\\" in name), None)
    if odd is not None:  # EcoTaxa and Windows read "\" as a folder separator: "a\..\x" would leave the folder
        if out.suffix.lower() != ".zip":
            raise InputError(f"{odd}: a backslash in an image's name, which EcoTaxa reads as a folder separator; "
                             "rename the file, or write a zip (-o NAME.zip)", path=out)
        names = {p: name.replace("\\", "_") for p, name in names.items()}
    if len(set(names.values())) < len(paths):
        twice = next(p for p in paths if list(names.values()).count(names[p]) > 1)
        raise InputError(f"{twice} is given twice; an EcoTaxa import holds each image once", path=out)
    return names


def ecotaxa_table_name(out: Path) -> str:
    """The table's name inside a zip: ``ecotaxa_<zip name>.tsv`` (EcoTaxa reads only ``ecotaxa*.tsv``)."""
    stem = out.stem if out.stem.lower().startswith("ecotaxa") else f"ecotaxa_{out.stem}"
    return f"{stem}.tsv"


class Rows:
    """What predict writes through: the format's writer, the answers counted, and a partial file's progress."""

    def __init__(self, writer, nodes: NodeText, partial: Partial | None = None):
        self.writer, self.nodes, self.partial = writer, nodes, partial
        self.done = partial.done if partial else 0  # images a killed run of the same command answered
        self.unreadable, self.depths = (partial.unreadable, dict(partial.depths)) if partial else (0, {})

    def write(self, path: Path, node: int | None, confidence: float, top: list[tuple[int, float]], error: str):
        self.writer.write(path, node, confidence, top, error)
        if node is None:
            self.unreadable += 1
        else:
            depth = int(self.nodes.taxonomy.depth[node])
            self.depths[depth] = self.depths.get(depth, 0) + 1
        if self.partial is not None:
            self.partial.add(path)

    def saved(self) -> None:
        """A batch's rows are written: a kill from now on keeps them (a resumable output)."""
        if self.partial is not None:
            self.partial.save(self.unreadable, self.depths)


@contextlib.contextmanager
def open_writer(fmt: str, out: Path | None, top_k: int, nodes: NodeText, paths: Sequence[Path], *,
                force: bool = False, key: str = "", shard: tuple[int, int] = (0, 1)):
    """:class:`Rows` of format ``fmt`` (see :func:`output_format`) to ``out`` (stdout when None).

    The output lands whole or not at all, and is locked while it is written: a second command writing
    the same file fails at once, and one that finds the file written meanwhile (without ``force``) fails
    rather than replacing it. A table or JSON lines is resumable: its rows grow in a :class:`Partial` beside
    it, which a kill leaves and a run of the same command (``key``: a digest of the run, the settings and the
    images) continues; a zip is written in one go. ``shard`` (rank, processes) under torchrun: each process
    writes the rows of its :func:`~hier.infer.partial.share` of ``paths``, which
    :func:`~hier.infer.partial.join_shares` joins once all are written.
    """
    if out is None:
        yield Rows((CsvWriter if fmt == "csv" else JsonlWriter)(sys.stdout, top_k, nodes), nodes)
        sys.stdout.flush()
        return
    names = ecotaxa_names(paths, out) if fmt == "ecotaxa" else None
    rank, world = shard
    with output_lock(out) if rank == 0 else contextlib.nullcontext():  # one lock per command
        check_replaceable(out, force=force)  # written by another command since this one began: no partial is made
        if fmt == "ecotaxa" and out.suffix.lower() == ".zip":
            yield from _zip_rows(out, nodes, names, force)
            return
        partial = Partial(out, key, share(paths, shard), shard)
        stream = partial.open()
        header = rank == 0 and not partial.done  # the first share's, once
        try:
            if fmt == "csv":
                yield Rows(CsvWriter(stream, top_k, nodes, header), nodes, partial)
            elif fmt == "jsonl":
                yield Rows(JsonlWriter(stream, top_k, nodes), nodes, partial)
            else:
                yield Rows(EcoTaxaWriter(stream, nodes, names, header=header), nodes, partial)
        except BaseException:
            partial.stop()
            raise
        if world == 1:
            partial.land(out, force)
        else:
            partial.text.close()  # joined by join_shares once every process has written its share


def _zip_rows(out: Path, nodes: NodeText, names: dict[Path, str], force: bool):
    """An EcoTaxa zip: the images stored as they are (already compressed), the table spooled and added last."""
    with atomic_open(out, "wb", exclusive=not force) as raw, \
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive, tempfile.TemporaryFile() as spool:
        table = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        try:
            yield Rows(EcoTaxaWriter(table, nodes, names, on_row=lambda path, name: archive.write(
                path, name, compress_type=zipfile.ZIP_STORED)), nodes)
            table.flush()
        finally:
            table.detach()
        spool.seek(0)
        with archive.open(ecotaxa_table_name(out), "w") as member:
            shutil.copyfileobj(spool, member)


def output_format(out: Path | None, fmt: str | None) -> str:
    """The format to write: ``fmt``, else the output's suffix (.csv, .jsonl, .tsv/.zip: EcoTaxa), else CSV.

    An EcoTaxa import goes to a file: ``ecotaxa*.tsv`` (the only tables EcoTaxa reads) beside or above
    the images, or any ``NAME.zip``, which holds the table and copies of the images.
    """
    if fmt is not None:
        choices = sorted(set(FORMATS.values()))
        if fmt not in choices:
            raise InputError(f"--format must be one of {', '.join(choices)} (got {fmt!r})")
    elif out is None:
        return "csv"
    else:
        try:
            fmt = FORMATS[out.suffix.lower()]
        except KeyError:
            raise InputError(f"unknown output type {out.suffix or '(none)'!r}: name the file .csv, .jsonl, "
                             ".tsv or .zip (EcoTaxa), or give --format", path=out) from None
    if fmt == "ecotaxa":
        if out is None:
            raise InputError("--format ecotaxa writes a file: give -o ecotaxa_NAME.tsv or -o NAME.zip")
        if out.suffix.lower() == ".zip":
            return fmt
        if out.suffix.lower() not in (".tsv", ".txt") or not out.name.lower().startswith("ecotaxa"):
            raise InputError(f"EcoTaxa imports only tables named ecotaxa*.tsv: name it ecotaxa_{out.stem}.tsv, "
                             f"or write a zip with the images (-o {out.stem}.zip)", path=out)
    return fmt
