"""Taxonomies from plankton tables: a lineage column, WoRMS rank columns, or a parent/child edge list."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence

from hier.core.errors import InputError
from hier.core.files import read_text
from hier.core.tables import column, numbered_rows, sniff_delimiter

from .taxonomy import Taxonomy, check_name, tree_from_parents

# (id, name, rank) from the root down; the id of a node is its lineage path, so equal
# names under different parents stay different nodes.
Path = list[tuple[str, str, str | None]]


def folder_style(name: str) -> str:
    """The key folder and taxon names match by: '_' is a space, case is ignored ('Chaetoceros_affinis')."""
    return re.sub(r"[\s_]+", " ", name).strip().casefold()


def _path_from_names(names: Sequence[str], ranks: Sequence[str | None], sep: str = ">") -> Path:
    path, prefix = [], ""
    for name, rank in zip(names, ranks):
        prefix = f"{prefix}{sep}{name}" if prefix else name
        path.append((prefix, name, rank))
    return path


def _with_label(path: Path, label: str) -> tuple[Path, str]:
    """The row's label is the deepest node when it names the same taxon, else a new node under it."""
    if path and folder_style(path[-1][1]) == folder_style(label):
        return path, path[-1][0]
    label_id = f"{path[-1][0]}>{label}" if path else label
    return path + [(label_id, label, None)], label_id


def split_lineage(value: str, sep: str) -> list[str]:
    """'a>b>c', or '/a/b/c' with a leading separator as ZooScanNet writes it."""
    return [part.strip() for part in value.strip().strip(sep).split(sep) if part.strip()]


class _Cells:
    """Cell text as the taxonomy reads it: stripped; a spreadsheet's missing-value marker ('NaN', 'NA', 'null',
    'None', '#N/A') is an empty cell, as pandas reads it; an invisible character is an error naming the line."""

    MISSING = frozenset({"nan", "na", "n/a", "#n/a", "null", "none"})

    def __init__(self, path):
        self.path, self.missing = path, 0

    def __call__(self, value: str, line: int) -> str:
        text = value.strip()
        if text.casefold() in self.MISSING:
            self.missing += 1
            return ""
        return check_name(text, self.path, f"line {line}")

    def warn(self) -> None:
        if self.missing:
            warnings.warn(f"{self.path}: {self.missing} cell(s) hold 'NaN' or a like marker of a missing value; "
                          "read as empty", stacklevel=3)


def build_from_table(path: str | os.PathLike, *, lineage_column: str | None = None, sep: str = ">",
                     rank_columns: Sequence[str] | None = None, parent_column: str | None = None,
                     child_column: str | None = None, label_column: str | None = None,
                     source: str = "csv") -> Taxonomy:
    """Build a taxonomy from one of the three table layouts; exactly one layout must be chosen."""
    chosen = [lineage_column is not None, bool(rank_columns), parent_column is not None or child_column is not None]
    if sum(chosen) != 1:
        raise InputError("choose one layout: --lineage-column, --rank-columns, or --parent-column with --child-column",
                         path=path)
    text = read_text(path)
    header, numbered = numbered_rows(text, path, sniff_delimiter(text.split("\n", 1)[0]))
    rows = list(numbered)
    if not rows:
        raise InputError("the table has a header but no rows", path=path)
    cells = _Cells(path)
    if chosen[2]:
        taxonomy = _from_edges(path, header, rows, parent_column, child_column, cells)
    else:
        label_col = column(header, label_column, path) if label_column else None
        if lineage_column is not None:
            paths = _lineage_paths(path, header, rows, lineage_column, sep, cells, needs_lineage=label_col is None)
        else:
            paths = _rank_paths(path, header, rows, rank_columns, cells)
        taxonomy = _with_labels(path, rows, paths, label_col, label_column, cells, source)
    cells.warn()
    return taxonomy


def _lineage_paths(path, header, rows, lineage_column: str, sep: str, cells: _Cells, *,
                   needs_lineage: bool) -> list[Path]:
    col = column(header, lineage_column, path)
    paths = []
    for line, row in rows:
        names = [name for name in (cells(part, line) for part in split_lineage(row[col], sep)) if name]
        if not names and needs_lineage:
            raise InputError(f"empty lineage in column {lineage_column!r}", path=path, where=f"line {line}")
        paths.append(_path_from_names(names, [None] * len(names)))
    return paths


def _rank_paths(path, header, rows, rank_columns: Sequence[str], cells: _Cells) -> list[Path]:
    """Root-first paths of the filled rank cells; an empty middle cell that splits a taxon in two is warned about."""
    cols = [column(header, c, path) for c in rank_columns]
    paths, seen, split = [], {}, []
    for line, row in rows:
        values = [cells(row[c], line) for c in cols]
        deepest = max((k for k, value in enumerate(values) if value), default=-1)
        gap = not all(values[:deepest])
        filled = [(value, rank) for value, rank in zip(values, rank_columns) if value]
        paths.append(_path_from_names([n for n, _ in filled], [r for _, r in filled]))
        for node_id, name, rank in paths[-1]:
            first = seen.setdefault((rank, name), (node_id, line, gap))
            if first[0] != node_id and (gap or first[2]):
                split.append(f"line {line}: {rank} {name!r} is also under another lineage (line {first[1]})")
    if split:
        warnings.warn(f"{path}: {split[0]}; an empty rank cell makes it a node apart"
                      + (f" ({len(split) - 1} more)" if len(split) > 1 else ""), stacklevel=3)
    return paths


def _with_labels(path, rows, paths: list[Path], label_col: int | None, label_column: str | None, cells: _Cells,
                 source: str) -> Taxonomy:
    """The taxonomy of the paths; with a label column each row's label is its own node (or its deepest one)."""
    if label_col is None:
        labels = [p[-1][0] for p in paths if p]
    else:
        labels = []
        for (line, row), p in zip(rows, paths):
            label = cells(row[label_col], line)
            if not label:
                raise InputError(f"empty label in column {label_column!r}", path=path, where=f"line {line}")
            p[:], label_id = _with_label(p, label)
            labels.append(label_id)
    if not any(paths):
        raise InputError("no lineage in any row", path=path)
    return Taxonomy.from_paths([p for p in paths if p], source=source, labels=labels)


def _from_edges(path, header, rows, parent_column, child_column, cells: _Cells) -> Taxonomy:
    if not parent_column or not child_column:
        raise InputError("an edge list needs both --parent-column and --child-column", path=path)
    p_col, c_col = column(header, parent_column, path), column(header, child_column, path)
    parent_of: dict[str, str | None] = {}
    for line, row in rows:
        child, parent = cells(row[c_col], line), cells(row[p_col], line) or None
        if not child:
            raise InputError(f"empty {child_column!r}", path=path, where=f"line {line}")
        if child in parent_of and parent_of[child] != parent:
            raise InputError(f"{child!r} has two parents, {parent_of[child]!r} and {parent!r}",
                             path=path, where=f"line {line}")
        parent_of[child] = parent
    for parent in [p for p in parent_of.values() if p is not None]:
        parent_of.setdefault(parent, None)  # a parent never listed as a child is a top node
    roots = [n for n, p in parent_of.items() if p is None]
    records = [{"id": n, "name": n, "parent": p, "rank": None} for n, p in parent_of.items()]
    if len(roots) > 1:
        records = [{"id": "root", "name": "root", "parent": None, "rank": None}] + [
            {**r, "parent": r["parent"] or "root"} for r in records]
    try:
        return tree_from_parents(records, source="csv")
    except InputError as e:
        raise InputError(str(e), path=path) from None
