"""A taxonomy as a CSV edge list or a Graphviz dot graph."""

from __future__ import annotations

import csv
import io


def to_csv(taxonomy) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["id", "parent", "name", "rank"])
    for i in range(len(taxonomy)):
        p = taxonomy.parent[i]
        w.writerow([taxonomy.ids[i], taxonomy.ids[p] if p >= 0 else "", taxonomy.names[i], taxonomy.ranks[i] or ""])
    return out.getvalue()


def to_dot(taxonomy) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph taxonomy {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    lines += [f"  {q(taxonomy.ids[i])} [label={q(taxonomy.names[i])}];" for i in range(len(taxonomy))]
    lines += [f"  {q(taxonomy.ids[p])} -> {q(taxonomy.ids[i])};" for i, p in enumerate(taxonomy.parent) if p >= 0]
    lines.append("}")
    return "\n".join(lines) + "\n"
