"""Why the taxonomy code does not use rustworkx: its jobs, done hier's way and rustworkx's way, side by side.

1. WordNet DAG -> tree for the ImageNet-1k wnids (the ``longest`` rule: each synset keeps the hypernym
   deepest by its longest path to the root). hier walks only the wnids' ancestors in the cached noun
   index (plain dicts, memoised depths); the graph way builds the noun hypernym DAG in rustworkx, takes
   the wnids' ancestors (``rx.ancestors``) and longest depths over a topological order.
2. The ancestors of every node of the built tree: hier's boolean ancestor matrix (numpy, parents first)
   against one ``rx.ancestors`` call per node.

Both ways give the same parents and ancestor sets (checked). Needs rustworkx, which hier does not
depend on: ``pip install rustworkx``. Best of N runs in one process.

    python bench/taxo_graph.py [--wnids FILE] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from hier.taxo.sources import wnid_list
from hier.taxo.taxonomy import Taxonomy
from hier.taxo.wordnet import _parent_chooser, build_wordnet, noun_index, read_wnids

DEFAULT_WNIDS = wnid_list("imagenet1k")  # the list that ships with hier


def best_of(runs: int, work):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def parents_hier(index, offsets: list[int]) -> dict[int, int | None]:
    parent, out = _parent_chooser(index, "longest"), {}
    for offset in offsets:
        while offset not in out:
            out[offset] = above = parent(offset)
            if above is None:
                break
            offset = above
    return out


def parents_rustworkx(rx, index, offsets: list[int]) -> dict[int, int | None]:
    nodes = list(index.hypernyms)
    position = {o: i for i, o in enumerate(nodes)}
    graph = rx.PyDiGraph(check_cycle=False)
    graph.add_nodes_from(nodes)
    graph.add_edges_from_no_data([(position[h], position[o]) for o, above in index.hypernyms.items() for h in above])
    keep = set()
    for offset in offsets:
        keep |= rx.ancestors(graph, position[offset]) | {position[offset]}
    depth: dict[int, int] = {}
    sub = graph.subgraph(sorted(keep))  # payloads: the synset offsets
    out = {}
    for node in rx.topological_sort(sub):
        above = [sub[p] for p in sub.predecessor_indices(node)]
        offset = sub[node]
        depth[offset] = 1 + max(depth[h] for h in above) if above else 0
        out[offset] = max(above, key=lambda h: (depth[h], -h)) if above else None
    return out


def ancestors_rustworkx(rx, taxonomy: Taxonomy) -> np.ndarray:
    graph = rx.PyDiGraph(check_cycle=False)
    graph.add_nodes_from(range(len(taxonomy)))
    graph.add_edges_from_no_data([(int(p), i) for i, p in enumerate(taxonomy.parent) if p >= 0])
    matrix = np.eye(len(taxonomy), dtype=bool)
    for i in range(len(taxonomy)):
        matrix[i, list(rx.ancestors(graph, i))] = True
    return matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wnids", type=Path, default=DEFAULT_WNIDS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import rustworkx as rx
    except ImportError:
        sys.exit("this benchmark compares against rustworkx: pip install rustworkx")

    index = noun_index()
    offsets = [int(w[1:]) for w in read_wnids(args.wnids)]
    taxonomy = build_wordnet(read_wnids(args.wnids), prune=False)
    rows = []
    ours, a = best_of(args.runs, lambda: parents_hier(index, offsets))
    theirs, b = best_of(args.runs, lambda: parents_rustworkx(rx, index, offsets))
    assert a == {o: b[o] for o in a}, "the two ways chose different parents"  # b: every ancestor, not just chains
    rows.append((f"WordNet DAG -> tree parents ({len(offsets)} wnids, {len(a)} synsets)", ours, theirs))

    ours, a = best_of(args.runs, lambda: Taxonomy.ancestor_matrix.func(taxonomy))  # uncached
    theirs, b = best_of(args.runs, lambda: ancestors_rustworkx(rx, taxonomy))
    assert (a == b).all(), "the two ways found different ancestors"
    rows.append((f"ancestors of every node ({len(taxonomy)} nodes)", ours, theirs))

    print(f"{sys.platform}, rustworkx {rx.__version__}, best of {args.runs}")
    print(f"{'':58} {'hier':>9} {'rustworkx':>10} {'rustworkx / hier':>17}")
    for name, ours, theirs in rows:
        print(f"{name:58} {ours * 1e3:7.1f}ms {theirs * 1e3:8.1f}ms {theirs / ours:16.1f}x")


if __name__ == "__main__":
    main()
