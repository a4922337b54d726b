"""A file of class proportions (a mix of classes): ``hier fit --prior FILE`` and ``hier evaluate --reweight FILE``.

CSV or TSV with a header line, then one row per class: the class, its proportion; or a JSON object
``{"class": proportion}``. A class is named as a dataset label is (``hier.data.labels.match_labels``: its id, its
name, a '>'-joined lineage, or a folder-style name). Proportions need not add up to 1 (counts do as well): they
are normalised where used. Every problem is an input error naming the file, the place in it and the problem.
"""

from __future__ import annotations

import math
from pathlib import Path

from hier.core.errors import InputError, is_number
from hier.core.files import read_json, read_text
from hier.core.tables import numbered_rows, sniff_delimiter
from hier.data.labels import match_labels
from hier.taxo import Taxonomy


def read_proportions(path: str | Path, taxonomy: Taxonomy) -> dict[int, float]:
    """Node index -> proportion as the file gives it: each a number, zero or more, and at least one above zero."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file (expected a CSV or JSON of class proportions)", path=path)
    entries = _json_entries(path) if path.suffix.lower() == ".json" else _table_entries(path)
    match = match_labels([key for _, key, _ in entries], taxonomy)
    out: dict[int, float] = {}
    for where, key, value in entries:
        if key in match.ambiguous:
            raise InputError(f"{len(match.ambiguous[key])} nodes match {key!r}; give its id", path=path, where=where)
        if key not in match.nodes:
            raise InputError(f"{key!r} is not a node of the run's taxonomy (by id, name or lineage)", path=path,
                             where=where)
        node = match.nodes[key]
        if node in out:
            raise InputError(f"{key!r} is given twice", path=path, where=where)
        if not (is_number(value) and math.isfinite(value) and value >= 0):
            raise InputError(f"the proportion of {key!r} must be a number, zero or more, got {value!r}",
                             path=path, where=where)
        out[node] = float(value)
    if not any(out.values()):
        raise InputError("no class has a proportion above zero", path=path)
    return out


def leaf_proportions(given: dict[int, float], taxonomy: Taxonomy, path) -> list[float]:
    """The proportions of every leaf, in leaf order, normalised: each leaf named, none of them zero (a prior of
    zero would make a class impossible), and no inner node."""
    inner = next((n for n in given if not taxonomy.is_leaf(n)), None)
    if inner is not None:
        raise InputError(f"{taxonomy.ids[inner]!r} is not a leaf; a prior gives one proportion per leaf", path=path)
    missing = [taxonomy.ids[leaf] for leaf in taxonomy.leaves if leaf not in given]
    if missing:
        raise InputError(f"{len(missing)} leaves have no proportion (first: {missing[0]!r}); give every leaf one",
                         path=path)
    zero = next((n for n, v in given.items() if v == 0), None)
    if zero is not None:
        raise InputError(f"the proportion of {taxonomy.ids[zero]!r} is zero, which would make it impossible; "
                         "give it a small positive one", path=path)
    total = sum(given.values())
    return [given[int(leaf)] / total for leaf in taxonomy.leaves]


def _json_entries(path: Path) -> list[tuple[str, str, object]]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError('expected a JSON object of class: proportion, e.g. {"Chaetoceros": 0.2}', path=path)
    return [(f"key {key!r}", key, value) for key, value in data.items()]


def _table_entries(path: Path) -> list[tuple[str, str, object]]:
    text = read_text(path)
    header, rows = numbered_rows(text, path, sniff_delimiter(text.split("\n", 1)[0]))
    if len(header) != 2:
        raise InputError(f"expected two columns, the class and its proportion, got {len(header)}", path=path,
                         where="line 1")
    entries = []
    for line, (key, value) in rows:
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"the proportion of {key.strip()!r} must be a number, got {value!r}", path=path,
                             where=f"line {line}") from None
        entries.append((f"line {line}", key.strip(), number))
    return entries
