"""Draw a taxonomy as a left-to-right dendrogram (PNG or SVG), readable for a few hundred nodes."""

from __future__ import annotations

import os
from pathlib import Path

from hier.core.errors import InputError
from hier.core.figures import pyplot, save_figure
from hier.core.files import check_output_file

from .taxonomy import Taxonomy

FORMATS = {".png": "png", ".svg": "svg"}
# One row per leaf at 0.19 inch: 2,000 nodes make a figure of a few metres, drawn in seconds; a tree beyond that
# is unreadable as one picture and costs minutes and gigabytes (200,000 nodes: 256 s, 6.3 GB), so it is refused.
MAX_NODES = 2_000


def layout(taxonomy: Taxonomy) -> tuple[list[float], list[float]]:
    """(x, y) per node: x is the depth, leaves take consecutive rows in depth-first order, parents centre."""
    y = [0.0] * len(taxonomy)
    row = 0
    stack = [(taxonomy.root, False)]
    while stack:
        node, children_done = stack.pop()
        children = taxonomy.children[node]
        if not children:
            y[node] = float(row)
            row += 1
        elif children_done:
            y[node] = (y[children[0]] + y[children[-1]]) / 2
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(children))
    return [float(d) for d in taxonomy.depth], y


def render(taxonomy: Taxonomy, out: str | os.PathLike, *, title: str | None = None, force: bool = False,
           inputs=()) -> None:
    """Draw into ``out``; an existing file is replaced only with ``force``, and never one of the ``inputs``."""
    fmt = FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot render to {Path(out).suffix or 'a file without extension'}; use .png or .svg",
                         path=out)
    if len(taxonomy) > MAX_NODES:
        raise InputError(f"{len(taxonomy):,} nodes, over the {MAX_NODES:,} one picture can show readably; draw a "
                         "part of it (a subtree's taxonomy), or read it with hier taxo show --depth N", path=next(iter(inputs), out))
    check_output_file(out, force=force, inputs=inputs)
    plt = pyplot()

    x, y = layout(taxonomy)
    rows = len(taxonomy.leaves)
    longest_name = max(len(n) for n in taxonomy.names)
    fig_w = 1.6 * (taxonomy.max_depth + 1) + 0.07 * longest_name + 1
    fig_h = max(3.0, 0.19 * rows + 1)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    for i, p in enumerate(taxonomy.parent):
        if p >= 0:  # elbow: along the parent's column, then across to the child
            ax.plot([x[p], x[p], x[i]], [y[p], y[i], y[i]], color="#777777", linewidth=0.8)
    for i in range(len(taxonomy)):
        leaf = not taxonomy.children[i]
        ax.plot(x[i], y[i], "o", markersize=3, color="#1f77b4" if leaf else "#d62728")
        ax.text(x[i] + 0.06, y[i] - (0 if leaf else 0.25), taxonomy.names[i], fontsize=7,
                va="center" if leaf else "bottom", ha="left")
    ax.set_ylim(rows - 0.5, -0.8)
    ax.set_xlim(-0.2, taxonomy.max_depth + 0.05 * longest_name + 0.3)
    ax.axis("off")
    ax.set_title(title or f"{len(taxonomy)} nodes, {rows} leaves, depth {taxonomy.max_depth}", fontsize=9, loc="left")
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
