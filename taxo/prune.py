"""Remove dead nodes: inner nodes with exactly one child carry no information of their own."""

from __future__ import annotations

from .taxonomy import Taxonomy


def dead_nodes(taxonomy: Taxonomy) -> list[int]:
    """Inner nodes with one child that are not dataset labels (the root included)."""
    return [i for i, c in enumerate(taxonomy.children) if len(c) == 1 and not taxonomy.is_label(i)]


def prune_dead_nodes(taxonomy: Taxonomy) -> Taxonomy:
    """A new taxonomy without dead nodes; each child hangs under its nearest kept ancestor.

    A node that is a dataset label is never removed (a genus that is a label and has one species stays).
    A dead root gives way to its first descendant with two or more children (or that is a label).
    """
    dead = set(dead_nodes(taxonomy))
    if not dead:
        return taxonomy
    kept_parent = {}
    for i in taxonomy.breadth_first:  # parents first, so a parent's kept ancestor is known
        p = int(taxonomy.parent[i])
        kept_parent[i] = None if p < 0 else (kept_parent[p] if p in dead else p)
    records = []
    for i in range(len(taxonomy)):
        if i in dead:
            continue
        record = taxonomy.node(i)
        parent = kept_parent[i]
        record["parent"] = None if parent is None else taxonomy.ids[parent]
        records.append(record)
    return Taxonomy(records, source=taxonomy.source)
