"""The taxonomy as tensors, shared by every head and loss.

Scores live in one of three spaces, told apart by their last dimension:

- ``leaf``: one column per leaf, in ``taxonomy.leaves`` order;
- ``node``: one column per node, in node order;
- ``level``: the per-level heads' space, one block per depth 1..D; block k holds the nodes at depth k
  and the leaves shallower than k (moved down to every deeper level), each block in node order.

Nothing here is N x N: the tree is held as each node's root path (``lineage``, N x (depth + 1)) and
the parent of each node per level, so memory and time grow with nodes x depth, and WordNet's 20,000+
nodes fit where a dense ancestor mask (N^2) would not. Masks over the nodes exist only per sample
([B, N]), built from the paths when a loss needs them. Bottom-up passes run level by level over
the nodes in *level order* (the root, then depth 1, depth 2, ...), where each level's parents are
the level above: every step touches only that level's columns.

The buffers are not persistent: they follow a module to its device but stay out of checkpoints,
since they are rebuilt from the taxonomy that every run saves.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hier.core.errors import InputError


class TreeTensors(nn.Module):
    """Index tensors of one taxonomy and the tree operations heads and losses share."""

    def __init__(self, taxonomy):
        super().__init__()
        if len(taxonomy) < 2:
            raise InputError("the taxonomy has a single node; a head needs at least two")
        depth = taxonomy.depth
        is_leaf = np.zeros(len(taxonomy), dtype=bool)
        is_leaf[taxonomy.leaves] = True
        self.root = int(taxonomy.root)
        self.num_nodes = len(taxonomy)
        self.num_leaves = len(taxonomy.leaves)
        self.max_depth = int(depth.max())
        buffer = self._buffer

        buffer("leaves", taxonomy.leaves)
        buffer("is_leaf", is_leaf)
        buffer("depth", depth)
        parent = np.where(taxonomy.parent >= 0, taxonomy.parent, self.root)  # the root is its own parent
        buffer("parent", parent)

        # Level order: the root, then the nodes of depth 1, 2, ... (node order within a level).
        level_order = np.argsort(depth, kind="stable")
        self.level_widths = tuple(int(n) for n in np.bincount(depth, minlength=self.max_depth + 1))
        position = np.empty(len(taxonomy), dtype=np.int64)
        position[level_order] = np.arange(len(taxonomy))
        starts = np.cumsum((0,) + self.level_widths)
        buffer("level_order", level_order)
        buffer("position", position)  # of each node in level order
        buffer("leaf_position", position[taxonomy.leaves])
        # up[j]: for the j-th node below the root in level order, its parent's column within the level above.
        below = level_order[1:]
        buffer("up", position[parent[below]] - starts[depth[below] - 1])
        self.up_slices = tuple(slice(int(a) - 1, int(b) - 1) for a, b in zip(starts[1:-1], starts[2:]))
        # The non-root nodes sorted by depth, and their parents: one slice per depth 1..D.
        self.depth_slices = tuple(slice(s.start, s.stop) for s in self.up_slices)
        buffer("by_depth", below)
        buffer("by_depth_parent", parent[below])

        lineage = _lineage(below, parent, self.depth_slices, len(taxonomy), self.root, self.max_depth)
        buffer("lineage", lineage)  # [i, k]: the ancestor of i at depth k, and i itself below its own depth
        buffer("level_ancestors", lineage.T.copy())  # [k, i]: the same, a row per depth

        # height[i]: the longest way down from i to a leaf under it; information[i]: log2(#leaves / #leaves under i)
        height = np.zeros(len(taxonomy), dtype=np.int64)
        for level in reversed(self.depth_slices):
            np.maximum.at(height, parent[below[level]], height[below[level]] + 1)
        buffer("height", height)
        self.register_buffer("leaves_under", torch.from_numpy(taxonomy.leaves_under.copy()), persistent=False)
        information = np.log2(self.num_leaves / taxonomy.leaves_under)
        self.register_buffer("information", torch.as_tensor(information, dtype=torch.float32), persistent=False)
        self._level_space(taxonomy, depth, is_leaf, lineage)

    def _buffer(self, name: str, array: np.ndarray) -> None:
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(array)), persistent=False)

    def _level_space(self, taxonomy, depth, is_leaf, lineage) -> None:
        levels = [np.flatnonzero((depth == k) | (is_leaf & (depth < k))) for k in range(1, self.max_depth + 1)]
        self.level_sizes = tuple(len(nodes) for nodes in levels)
        self._buffer("level_nodes", np.concatenate(levels))
        # leaf_level_columns[l, k-1]: the column, in level space, of the class holding leaf l at depth k.
        column_of = np.full((self.max_depth, len(taxonomy)), -1, dtype=np.int64)
        offsets = np.cumsum((0,) + self.level_sizes[:-1])
        for k, (nodes, offset) in enumerate(zip(levels, offsets)):
            column_of[k, nodes] = offset + np.arange(len(nodes))
        leaf_lineage = lineage[taxonomy.leaves, 1:]
        self._buffer("leaf_level_columns", column_of[np.arange(self.max_depth)[None, :], leaf_lineage])

    # ---- score spaces ---------------------------------------------------------------------

    def width(self, space: str) -> int:
        return {"leaf": self.num_leaves, "node": self.num_nodes, "level": sum(self.level_sizes)}[space]

    def columns(self, space: str) -> torch.Tensor:
        """The node of each column of a leaf or level space."""
        return {"leaf": self.leaves, "level": self.level_nodes}[space]

    def space(self, scores: torch.Tensor, accepted: tuple[str, ...], who: str) -> str:
        """The first accepted space whose width matches the scores' last dimension."""
        for space in accepted:
            if scores.shape[-1] == self.width(space):
                return space
        expected = " or ".join(f"{space} scores ({self.width(space)} columns)" for space in accepted)
        raise InputError(f"{who} takes {expected}, got {scores.shape[-1]} columns; "
                         "pair it with a head whose scores are in that space")

    # ---- ancestry -------------------------------------------------------------------------

    def is_ancestor(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Element-wise (broadcast): a is b or an ancestor of b."""
        depth = self.depth[a]
        return (depth <= self.depth[b]) & (self.lineage[b, depth] == a)

    def ancestor_rows(self, nodes: torch.Tensor) -> torch.Tensor:
        """Bool [len(nodes), N]: each node and its ancestors."""
        rows = torch.zeros(len(nodes), self.num_nodes, dtype=torch.bool, device=nodes.device)
        return rows.scatter_(1, self.lineage[nodes], True)

    def descendant_rows(self, nodes: torch.Tensor) -> torch.Tensor:
        """Bool [len(nodes), N]: each node and everything below it."""
        return self.level_ancestors[self.depth[nodes]] == nodes[:, None]

    # ---- targets --------------------------------------------------------------------------

    def related(self, targets: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Bool [B, C]: the column's node is the target, one of its ancestors or one of its descendants.

        For leaf columns these are the leaves under the target; per level, the one class holding the
        target, or the target's descendants at that level when the target is an inner node above it.
        """
        below = self.level_ancestors[:, columns][self.depth[targets]] == targets[:, None]
        above = self.lineage[targets][:, self.depth[columns]] == columns
        return below | above

    def multi_hot(self, targets: torch.Tensor, space: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Bool multi-hot targets and mask of known entries, both [B, width of a leaf or node space].

        Positive: the target and its ancestors. Unknown: the nodes strictly below an inner-node target
        (a label that stops at genus says nothing about the species) and the root (always true).
        """
        positive = self.ancestor_rows(targets)
        known = positive | ~self.descendant_rows(targets)
        known[:, self.root] = False
        if space == "leaf":
            return positive[:, self.leaves], known[:, self.leaves]
        return positive, known

    # ---- lowest common ancestors ----------------------------------------------------------

    def lca(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Lowest common ancestor of node pairs (a[k], b[k]), [len(a)]."""
        paths = self.lineage[a]
        # The two root paths agree down to the LCA and differ below it (a path padded with its own end
        # never meets the other below the LCA), so the count of agreeing depths is depth(LCA) + 1.
        common = (paths == self.lineage[b]).sum(1, keepdim=True)
        return paths.gather(1, common - 1).squeeze(1)

    # ---- sums and maxima up the tree ------------------------------------------------------

    def sum_up(self, leaf_probabilities: torch.Tensor) -> torch.Tensor:
        """Node probabilities from a distribution over the leaves: each node holds the sum under it.

        The sums are added child by child from the deepest level up; adding non-negative numbers never
        rounds below any of them, so no child ends above its parent. Summed probabilities may round a
        hair above 1; clamping keeps the order, and the root is certain.
        """
        levels = self._leaf_levels(leaf_probabilities, 0.0)
        for k in range(self.max_depth, 0, -1):
            levels[k - 1] = levels[k - 1].index_add(1, self.up[self.up_slices[k - 1]], levels[k])
        levels[0] = torch.ones_like(levels[0])
        return torch.cat(levels, 1).clamp(max=1.0).index_select(1, self.position)

    def total_under(self, leaf_values: torch.Tensor) -> torch.Tensor:
        """[B, N]: each node's sum of the leaf values [B, num_leaves] at or below it (no clamping, any sign)."""
        levels = self._leaf_levels(leaf_values, 0.0)
        for k in range(self.max_depth, 0, -1):
            levels[k - 1] = levels[k - 1].index_add(1, self.up[self.up_slices[k - 1]], levels[k])
        return torch.cat(levels, 1).index_select(1, self.position)

    def log_sum_up(self, leaf_log_probabilities: torch.Tensor) -> torch.Tensor:
        """[B, N]: each node's log of the summed probability under it, from leaf log-probabilities.

        A log-sum-exp per parent, level by level, shifted by the largest child, so that a node whose
        leaves all lie below float's smallest probability still gets its finite log-probability.
        """
        levels = self._leaf_levels(leaf_log_probabilities, float("-inf"))
        for k in range(self.max_depth, 0, -1):
            up = self.up[self.up_slices[k - 1]]
            children, above = levels[k], levels[k - 1]
            # Inner parents start at -inf and take their children's log-sum-exp; leaves keep their own value.
            top = torch.full_like(above, float("-inf")).scatter_reduce_(1, up.expand_as(children), children.detach(),
                                                                        reduce="amax")
            top = torch.where(torch.isfinite(top), top, 0.0)
            total = torch.zeros_like(above).index_add_(1, up, (children - top.index_select(1, up)).exp())
            levels[k - 1] = torch.where(total > 0, total.clamp(min=torch.finfo(total.dtype).tiny).log() + top, above)
        return torch.cat(levels, 1).index_select(1, self.position)

    def max_up(self, node_probabilities: torch.Tensor) -> torch.Tensor:
        """The max-constraint (Giunchiglia & Lukasiewicz 2020): each node takes the max over itself and
        everything below it, so a confident descendant lifts its ancestors."""
        levels = list(node_probabilities.index_select(1, self.level_order).split(self.level_widths, 1))
        for k in range(self.max_depth, 0, -1):
            up = self.up[self.up_slices[k - 1]].expand_as(levels[k])
            levels[k - 1] = levels[k - 1].scatter_reduce(1, up, levels[k], reduce="amax")
        levels[0] = torch.ones_like(levels[0])
        return torch.cat(levels, 1).clamp(max=1.0).index_select(1, self.position)

    def _leaf_levels(self, leaf_values: torch.Tensor, fill: float) -> list[torch.Tensor]:
        """Leaf-space values [B, num_leaves] in level order, inner nodes at ``fill``, split into levels."""
        nodes = leaf_values.new_full((leaf_values.shape[0], self.num_nodes), fill)
        return list(nodes.index_copy(1, self.leaf_position, leaf_values).split(self.level_widths, 1))


def _lineage(below, parent, depth_slices, num_nodes: int, root: int, max_depth: int) -> np.ndarray:
    """[N, D + 1]: each node's ancestor at every depth, itself from its own depth down."""
    lineage = np.full((num_nodes, max_depth + 1), root, dtype=np.int64)
    for k, level in enumerate(depth_slices, start=1):
        nodes = below[level]
        lineage[nodes, :k] = lineage[parent[nodes], :k]
        lineage[nodes, k:] = nodes[:, None]
    return lineage
