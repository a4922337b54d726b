"""The picture of the benchmark: a grid of drawn images, one row per rank."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from hier.core.figures import pyplot, save_figure

from .draw import draw_object
from .taxonomy import NON_LIVING, RANKS, TRAITS, build_tree


def sample_grid(path: str | os.PathLike, *, depth: int = 4, size: int = 96, seed: int = 0, per_node: int = 2) -> None:
    """A PNG with one row per rank: the phyla (and the non-living classes), the classes of one
    phylum, the genera of one class, the species of one genus, and ambiguous images of those
    species. Each panel is titled with its node's name."""
    plt = pyplot()

    tree = build_tree(depth)
    children: dict[str, list[str]] = {}
    for r in tree.records:
        children.setdefault(r["parent"], []).append(r["id"])
    species_genus = max(dict.fromkeys(tree.genus_of.values()), key=lambda g: len(children[g]))
    chain = [species_genus]  # the lineage of the genus with the most species, to show each rank's siblings
    parent_of = {r["id"]: r["parent"] for r in tree.records}
    while parent_of[chain[-1]] != "living":
        chain.append(parent_of[chain[-1]])
    chain = chain[::-1]  # phylum ... genus
    ranks = RANKS[depth]
    rows = [(f"{ranks[0]}\n({TRAITS[0]})", children["living"] + list(NON_LIVING), False)]
    for k, node in enumerate(chain):
        trait = TRAITS[k + 1] if k + 1 < depth - 1 else "small shifts"
        rows.append((f"{ranks[k + 1]}\n({trait})", children[node], False))
    rows.append(("species\n(ambiguous)", children[species_genus], True))

    def leaf_under(node: str) -> str:
        while node in children:
            node = children[node][0]
        return node

    names = {r["id"]: r["name"] for r in tree.records}
    columns = max(len(nodes) * (1 if k == 0 else per_node) for k, (_, nodes, _) in enumerate(rows))
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.35 * columns + 1.2, 1.6 * len(rows)), squeeze=False)
    rng = np.random.default_rng(seed)
    for r, (title, nodes, ambiguous) in enumerate(rows):
        repeat = 1 if r == 0 else per_node
        cells = [node for node in nodes for _ in range(repeat)]
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(cells):
                continue
            look = tree.looks[leaf_under(cells[c])]
            look = {**look, "neighbours": tree.neighbours.get(leaf_under(cells[c]), [])}
            image = draw_object(look, size, rng, ambiguous=ambiguous)
            square = Image.new("L", (size, size), int(np.median(np.asarray(image)[0])))
            square.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
            ax.imshow(square, cmap="gray", vmin=0, vmax=255)
            ax.set_title(names[cells[c]], fontsize=7)
        axes[r][0].text(-0.15, 0.5, title, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=9)
    figure.subplots_adjust(left=0.1, right=0.99, top=0.95, bottom=0.02, wspace=0.08, hspace=0.35)
    save_figure(figure, path, dpi=110)
