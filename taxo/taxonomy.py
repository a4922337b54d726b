"""The taxonomy: a rooted tree of nodes, held as index arrays.

Node order is the order of the file (or of the builder). Every derived structure
(children, depth, leaves, ancestors) is computed once here, so heads and metrics can
turn them into tensors without walking the tree again.
"""

from __future__ import annotations

import itertools
import json
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property

import numpy as np

from hier.core.errors import InputError

FORMAT = "hier-taxonomy"
VERSION = 1
_NODE_KEYS = ("id", "name", "parent", "rank")


def check_name(text: str, path=None, where=None) -> str:
    """A node id or name without invisible characters (a zero-width space, a soft hyphen, a control
    character): they make a look-alike of another node that no label would ever match. Returns ``text``."""
    if text.isprintable():  # the common case, at C speed
        return text
    hidden = next((c for c in text if unicodedata.category(c) in ("Cf", "Cc", "Co", "Cs")), None)
    if hidden is not None:
        name = unicodedata.name(hidden, "a control character")
        raise InputError(f"{text!r} holds an invisible character (U+{ord(hidden):04X} {name}); remove it",
                         path=path, where=where)
    return text


def _checked_ids(records: list[dict], origin) -> list[str]:
    """The node ids, in order: strings, unique, and like the names free of invisible characters."""
    ids, seen = [], set()
    for position, record in enumerate(records):
        node_id = record.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise InputError(f"node {position} has no string 'id'", path=origin)
        if node_id in seen:
            raise InputError("duplicate node id", path=origin, where=f"node {node_id!r}")
        if record.get("name") is not None and not isinstance(record["name"], str):
            raise InputError(f"'name' must be a string, got {record['name']!r}", path=origin, where=f"node {node_id!r}")
        check_name(node_id, origin, f"node {position}")
        check_name(record.get("name") or "", origin, f"node {node_id!r}")
        seen.add(node_id)
        ids.append(node_id)
    return ids


class Taxonomy:
    """A rooted tree. Build it from node records: ``{"id", "name", "parent", "rank", ...extra}``."""

    def __init__(self, nodes: Iterable[Mapping], *, source: str | None = None, origin: str | os.PathLike | None = None):
        records = [dict(n) for n in nodes]
        self.source = source
        if not records:
            raise InputError("the taxonomy has no nodes", path=origin)
        self.ids: list[str] = _checked_ids(records, origin)
        self._index: dict[str, int] = {node_id: i for i, node_id in enumerate(self.ids)}
        self.names: list[str] = [r.get("name") or r["id"] for r in records]
        self.ranks: list[str | None] = [r.get("rank") for r in records]
        self.extra: list[dict] = [{k: v for k, v in r.items() if k not in _NODE_KEYS} for r in records]

        parent = np.full(len(records), -1, dtype=np.int64)
        roots = []
        for i, record in enumerate(records):
            parent_id = record.get("parent")
            if parent_id is None:
                roots.append(i)
                continue
            if not isinstance(parent_id, str):  # a list or a number cannot name a node (nor be looked up)
                raise InputError(f"parent must be a node id (text) or null, got {parent_id!r}", path=origin,
                                 where=f"node {self.ids[i]!r}")
            if parent_id not in self._index:
                raise InputError(f"parent {parent_id!r} is not a node of the taxonomy", path=origin,
                                 where=f"node {self.ids[i]!r}")
            if parent_id == self.ids[i]:
                raise InputError("node is its own parent (a cycle)", path=origin, where=f"node {self.ids[i]!r}")
            parent[i] = self._index[parent_id]
        if not roots:
            raise InputError("no root: every node has a parent (the parents form a cycle)", path=origin)
        if len(roots) > 1:
            shown = ", ".join(repr(self.ids[r]) for r in roots[:3])
            raise InputError(f"{len(roots)} roots ({shown}); exactly one node may have parent null", path=origin)
        self.parent = parent
        self.root = roots[0]

        children: list[list[int]] = [[] for _ in records]
        for i, p in enumerate(parent):
            if p >= 0:
                children[p].append(i)
        self.children = [tuple(c) for c in children]

        depth = np.full(len(records), -1, dtype=np.int64)
        depth[self.root] = 0
        order = [self.root]
        for i in order:  # breadth-first; grows while iterating
            for c in children[i]:
                depth[c] = depth[i] + 1
                order.append(c)
        if len(order) != len(records):
            stray = next(i for i in range(len(records)) if depth[i] < 0)
            raise InputError("the parents form a cycle not connected to the root", path=origin,
                             where=f"node {self.ids[stray]!r}")
        self.depth = depth
        self.breadth_first = np.asarray(order, dtype=np.int64)
        self.leaves = np.asarray([i for i in range(len(records)) if not children[i]], dtype=np.int64)

    # ---- lookups -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Taxonomy({len(self)} nodes, {len(self.leaves)} leaves, depth {self.max_depth}, source={self.source!r})"

    def index(self, node_id: str) -> int:
        """Node index of an id; KeyError names close ids when it is missing."""
        try:
            return self._index[node_id]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(node_id, self.ids, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise KeyError(f"{node_id!r} is not a node of the taxonomy{hint}") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._index

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    def is_leaf(self, i: int) -> bool:
        return not self.children[i]

    def lineage(self, i: int) -> list[int]:
        """Node indices from the root down to node ``i``."""
        path = [i]
        while self.parent[path[-1]] >= 0:
            path.append(int(self.parent[path[-1]]))
        return path[::-1]

    def path_ids(self, i: int, sep: str = ">") -> str:
        return sep.join(self.ids[j] for j in self.lineage(i))

    def is_label(self, i: int) -> bool:
        """True when the node was a dataset label in the data the taxonomy was built from."""
        return bool(self.extra[i].get("label"))

    @cached_property
    def ancestor_matrix(self) -> np.ndarray:
        """Boolean [num_nodes, num_nodes]: ``A[i, j]`` is True when j is i or an ancestor of i."""
        a = np.zeros((len(self), len(self)), dtype=bool)
        for i in self.breadth_first:  # parents come before children
            p = self.parent[i]
            if p >= 0:
                a[i] = a[p]
            a[i, i] = True
        return a

    @cached_property
    def leaf_position(self) -> np.ndarray:
        """Column of each node in leaf space (-1 for inner nodes)."""
        pos = np.full(len(self), -1, dtype=np.int64)
        pos[self.leaves] = np.arange(len(self.leaves))
        return pos

    @cached_property
    def leaves_under(self) -> np.ndarray:
        """Number of leaves at or below each node."""
        is_leaf = np.zeros(len(self), dtype=np.int64)
        is_leaf[self.leaves] = 1
        return self.sum_under(is_leaf)

    def sum_under(self, values: np.ndarray) -> np.ndarray:
        """Each node's sum of ``values`` (one per node) over itself and everything below it.

        Depth by depth from the deepest up (breadth-first order is depth order): time and memory grow
        with the nodes, where a sum through the ancestor matrix would grow with their square.
        """
        total = np.array(values, copy=True)
        order = self.breadth_first
        bounds = np.searchsorted(self.depth[order], np.arange(1, self.max_depth + 2))
        for start, stop in reversed(list(itertools.pairwise(bounds))):
            np.add.at(total, self.parent[order[start:stop]], total[order[start:stop]])
        return total

    # ---- records and files ---------------------------------------------------------------

    def node(self, i: int) -> dict:
        p = self.parent[i]
        return {"id": self.ids[i], "name": self.names[i], "parent": self.ids[p] if p >= 0 else None,
                "rank": self.ranks[i], **self.extra[i]}

    def nodes(self) -> list[dict]:
        return [self.node(i) for i in range(len(self))]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "source": self.source, "nodes": self.nodes()}

    def save(self, path: str | os.PathLike) -> None:
        from hier.core.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Taxonomy:
        from hier.core.files import read_json

        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not a {FORMAT} file (no \"format\": \"{FORMAT}\")", path=path)
        if data.get("version") != VERSION:
            raise InputError(f"unsupported version {data.get('version')!r} (this hier reads {VERSION})", path=path)
        nodes = data.get("nodes")
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise InputError("\"nodes\" must be a list of objects", path=path)
        return cls(nodes, source=data.get("source"), origin=path)

    @classmethod
    def from_paths(cls, paths: Sequence[Sequence[tuple[str, str, str | None]]], *, source: str,
                   root: tuple[str, str] = ("root", "root"), labels: Iterable[str] = ()) -> Taxonomy:
        """Build from root-to-node paths of ``(id, name, rank)``; shared prefixes become shared nodes.

        When the paths do not share one first node, ``root`` (id, name) is put above them all.
        ``labels`` are node ids marked as dataset labels (kept by pruning).
        """
        firsts = {p[0][0] for p in paths if p}
        needs_root = len(firsts) != 1
        records: dict[str, dict] = {}
        if needs_root:
            records[root[0]] = {"id": root[0], "name": root[1], "parent": None, "rank": None}
        for path in paths:
            parent = root[0] if needs_root else None
            for node_id, name, rank in path:
                if node_id not in records:
                    records[node_id] = {"id": node_id, "name": name, "parent": parent, "rank": rank}
                parent = node_id
        for label in labels:
            records[label]["label"] = True
        return cls(_preorder(list(records.values())), source=source)


def _preorder(records: list[dict]) -> list[dict]:
    """Records reordered depth-first from the root, children in first-seen order (parents before children)."""
    children: dict[str | None, list[dict]] = {}
    for r in records:
        children.setdefault(r["parent"], []).append(r)
    out, stack = [], list(reversed(children.get(None, [])))
    while stack:
        r = stack.pop()
        out.append(r)
        stack.extend(reversed(children.get(r["id"], [])))
    return out if len(out) == len(records) else records  # a malformed input keeps its order for the error


def tree_from_parents(taxonomy_nodes: list[dict], *, source: str | None) -> Taxonomy:
    """A taxonomy from records in any order, written parents first."""
    return Taxonomy(_preorder(taxonomy_nodes), source=source)
