"""Taxonomies from plankton tables: a lineage column, WoRMS rank columns, or a parent/child edge list."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from hier.core.errors import InputError
from hier.core.tables import column, read_table

from .taxonomy import Taxonomy, tree_from_parents

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


def build_from_table(path: str | os.PathLike, *, lineage_column: str | None = None, sep: str = ">",
                     rank_columns: Sequence[str] | None = None, parent_column: str | None = None,
                     child_column: str | None = None, label_column: str | None = None,
                     source: str = "csv") -> Taxonomy:
    """Build a taxonomy from one of the three table layouts; exactly one layout must be chosen."""
    chosen = [lineage_column is not None, bool(rank_columns), parent_column is not None or child_column is not None]
    if sum(chosen) != 1:
        raise InputError("choose one layout: --lineage-column, --rank-columns, or --parent-column with --child-column",
                         path=path)
    header, rows = read_table(path)
    if not rows:
        raise InputError("the table has a header but no rows", path=path)
    if chosen[2]:
        return _from_edges(path, header, rows, parent_column, child_column)

    label_col = column(header, label_column, path) if label_column else None
    paths, labels = [], []
    if lineage_column is not None:
        col = column(header, lineage_column, path)
        for line, row in enumerate(rows, start=2):
            names = split_lineage(row[col], sep)
            if not names and label_col is None:
                raise InputError(f"empty lineage in column {lineage_column!r}", path=path, where=f"line {line}")
            paths.append(_path_from_names(names, [None] * len(names)))
    else:
        cols = [column(header, c, path) for c in rank_columns]
        for row in rows:
            filled = [(row[c].strip(), rank) for c, rank in zip(cols, rank_columns) if row[c].strip()]
            paths.append(_path_from_names([n for n, _ in filled], [r for _, r in filled]))
    if label_col is not None:
        for line, (row, p) in enumerate(zip(rows, paths), start=2):
            label = row[label_col].strip()
            if not label:
                raise InputError(f"empty label in column {label_column!r}", path=path, where=f"line {line}")
            p[:], label_id = _with_label(p, label)
            labels.append(label_id)
    else:
        labels = [p[-1][0] for p in paths if p]
    if not any(paths):
        raise InputError("no lineage in any row", path=path)
    return Taxonomy.from_paths([p for p in paths if p], source=source, labels=labels)


def _from_edges(path, header, rows, parent_column, child_column) -> Taxonomy:
    if not parent_column or not child_column:
        raise InputError("an edge list needs both --parent-column and --child-column", path=path)
    p_col, c_col = column(header, parent_column, path), column(header, child_column, path)
    parent_of: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        child, parent = row[c_col].strip(), row[p_col].strip() or None
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
