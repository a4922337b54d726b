"""Summary figures of a taxonomy (``hier taxo stats``)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .prune import dead_nodes
from .taxonomy import Taxonomy


def taxonomy_stats(taxonomy: Taxonomy) -> dict:
    inner = [i for i in range(len(taxonomy)) if taxonomy.children[i]]
    branching = np.array([len(taxonomy.children[i]) for i in inner]) if inner else np.zeros(1)
    leaf_depth = taxonomy.depth[taxonomy.leaves]
    levels = []
    for level in range(taxonomy.max_depth + 1):
        at = taxonomy.depth == level
        levels.append({"depth": level, "nodes": int(at.sum()),
                       "inner": int(sum(1 for i in np.flatnonzero(at) if taxonomy.children[i])),
                       "leaves": int(sum(1 for i in np.flatnonzero(at) if not taxonomy.children[i]))})
    return {
        "source": taxonomy.source,
        "nodes": len(taxonomy),
        "leaves": len(taxonomy.leaves),
        "inner": len(inner),
        "labels": sum(taxonomy.is_label(i) for i in range(len(taxonomy))),
        "root": taxonomy.ids[taxonomy.root],
        "max_depth": taxonomy.max_depth,
        "mean_leaf_depth": round(float(leaf_depth.mean()), 3),
        "min_leaf_depth": int(leaf_depth.min()),
        "branching_mean": round(float(branching.mean()), 3),
        "branching_max": int(branching.max()),
        "dead_nodes": len(dead_nodes(taxonomy)),
        "levels": levels,
        "ranks": dict(Counter(r for r in taxonomy.ranks if r)),
    }
