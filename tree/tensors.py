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
import torch.nn.functional as F
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
        buffer("not_root", np.arange(len(taxonomy)) != self.root)
        buffer("depth", depth)
        parent = np.where(taxonomy.parent >= 0, taxonomy.parent, self.root)  # the root is its own parent
        buffer("parent", parent)
        self._levels(taxonomy, parent)
        lineage = np.full((len(taxonomy), self.max_depth + 1), self.root, dtype=np.int64)
        for k in range(1, self.max_depth + 1):
            nodes = taxonomy.breadth_first[self.level_slice(k)]
            lineage[nodes, :k] = lineage[parent[nodes], :k]
            lineage[nodes, k:] = nodes[:, None]
        buffer("lineage", lineage)  # [i, k]: the ancestor of i at depth k, and i itself below its own depth
        self._depth_first(taxonomy, parent)
        # height[i]: the longest way down from i to a leaf under it; information[i]: log2(#leaves / #leaves under i)
        height = np.zeros(len(taxonomy), dtype=np.int64)
        for k in range(self.max_depth, 0, -1):
            nodes = taxonomy.breadth_first[self.level_slice(k)]
            np.maximum.at(height, parent[nodes], height[nodes] + 1)
        buffer("height", height)
        buffer("leaves_under", taxonomy.leaves_under)
        self._buffer("information", np.log2(self.num_leaves / taxonomy.leaves_under).astype(np.float32))
        self._level_space(taxonomy, depth, is_leaf, lineage)

    def _buffer(self, name: str, array: np.ndarray) -> None:
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(array)), persistent=False)

    def _levels(self, taxonomy, parent) -> None:
        """Level order: breadth-first from the root, so each level lists its nodes grouped by parent."""
        order = taxonomy.breadth_first
        self.level_widths = tuple(int(n) for n in np.bincount(taxonomy.depth, minlength=self.max_depth + 1))
        self.level_starts = tuple(int(s) for s in np.cumsum((0,) + self.level_widths))
        position = np.empty(len(taxonomy), dtype=np.int64)
        position[order] = np.arange(len(taxonomy))
        self._buffer("level_order", order)
        self._buffer("position", position)  # of each node in level order
        # up: for each node below the root in level order, its parent's column within the level above
        self._buffer("up", position[parent[order[1:]]] - np.asarray(self.level_starts)[taxonomy.depth[order[1:]] - 1])
        # leaf_source: for each position in level order, the leaf column it takes, or num_leaves for an inner node
        leaf_column = np.full(len(taxonomy), len(taxonomy.leaves), dtype=np.int64)
        leaf_column[taxonomy.leaves] = np.arange(len(taxonomy.leaves))
        self._buffer("leaf_source", leaf_column[order])

    def level_slice(self, k: int) -> slice:
        """The columns of depth k in level order."""
        return slice(self.level_starts[k], self.level_starts[k + 1])

    def _depth_first(self, taxonomy, parent) -> None:
        """Depth-first (pre-order) numbering: the nodes under i are exactly those numbered pre[i] .. end[i] - 1."""
        size = taxonomy.sum_under(np.ones(len(taxonomy), dtype=np.int64))
        pre = np.zeros(len(taxonomy), dtype=np.int64)
        for k in range(1, self.max_depth + 1):
            nodes = taxonomy.breadth_first[self.level_slice(k)]  # grouped by parent, siblings in node order
            before = np.cumsum(size[nodes]) - size[nodes]  # subtree sizes before each node in the level
            first = np.flatnonzero(np.r_[True, parent[nodes][1:] != parent[nodes][:-1]])
            siblings_before = before - np.repeat(before[first], np.diff(np.r_[first, len(nodes)]))
            pre[nodes] = pre[parent[nodes]] + 1 + siblings_before
        self._buffer("pre", pre)
        self._buffer("end", pre + size)
        # The leaves in depth-first order, and the run of them under each node.
        leaf_order = np.argsort(pre[taxonomy.leaves])
        leaf_rank = np.empty_like(leaf_order)
        leaf_rank[leaf_order] = np.arange(len(leaf_order))
        self._buffer("leaf_rank", leaf_rank)  # of each leaf column in depth-first order
        leaf_pre = pre[taxonomy.leaves][leaf_order]
        self._buffer("leaf_start", np.searchsorted(leaf_pre, pre))
        self._buffer("leaf_stop", np.searchsorted(leaf_pre, pre + size))

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
        pre_b = self.pre[b]
        return (self.pre[a] <= pre_b) & (pre_b < self.end[a])

    def ancestor_rows(self, nodes: torch.Tensor) -> torch.Tensor:
        """Bool [len(nodes), N]: each node and its ancestors."""
        pre = self.pre[nodes, None]
        return (self.pre <= pre) & (pre < self.end)

    def descendant_rows(self, nodes: torch.Tensor) -> torch.Tensor:
        """Bool [len(nodes), N]: each node and everything below it."""
        return (self.pre >= self.pre[nodes, None]) & (self.pre < self.end[nodes, None])

    # ---- targets --------------------------------------------------------------------------

    def related(self, targets: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Bool [B, C]: the column's node is the target, one of its ancestors or one of its descendants.

        For leaf columns these are the leaves under the target; per level, the one class holding the
        target, or the target's descendants at that level when the target is an inner node above it.
        """
        # Two subtrees are nested or apart: their depth-first runs overlap exactly when one holds the other.
        return (self.pre[columns] < self.end[targets, None]) & (self.pre[targets, None] < self.end[columns])

    def multi_hot(self, targets: torch.Tensor, space: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Bool multi-hot targets and mask of known entries, both [B, width of a leaf or node space].

        Positive: the target and its ancestors. Unknown: the nodes strictly below an inner-node target
        (a label that stops at genus says nothing about the species) and the root (always true).
        """
        positive = torch.zeros(len(targets), self.num_nodes, dtype=torch.bool, device=targets.device)
        positive.scatter_(1, self.lineage[targets], True)
        if bool(self.is_leaf[targets].all()):  # one look on the host: then every row knows all but the root
            known = self.not_root.expand(len(targets), -1)
        else:
            known = (self.pre <= self.pre[targets, None]) | (self.pre >= self.end[targets, None])
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
            levels[k - 1] = levels[k - 1].index_add(1, self._up(k), levels[k])
        levels[0] = torch.ones_like(levels[0])
        return torch.cat(levels, 1).clamp(max=1.0).index_select(1, self.position)

    def log_sum_up(self, leaf_log_probabilities: torch.Tensor) -> torch.Tensor:
        """[B, N]: each node's log of the summed probability under it, from leaf log-probabilities.

        A log-sum-exp per parent, level by level, shifted by the largest child, so that a node whose
        leaves all lie below float's smallest probability still gets its finite log-probability.
        """
        levels = self._leaf_levels(leaf_log_probabilities, float("-inf"))
        for k in range(self.max_depth, 0, -1):
            up, children, above = self._up(k), levels[k], levels[k - 1]
            # Inner parents start at -inf and take their children's log-sum-exp; leaves keep their own value.
            top = torch.full_like(above, float("-inf")).scatter_reduce_(1, up.expand_as(children), children.detach(),
                                                                        "amax")
            top = torch.where(torch.isfinite(top), top, 0.0)
            total = torch.zeros_like(above).index_add_(1, up, (children - top.index_select(1, up)).exp())
            levels[k - 1] = torch.where(total > 0, total.clamp(min=torch.finfo(total.dtype).tiny).log() + top, above)
        return torch.cat(levels, 1).index_select(1, self.position)

    def max_up(self, node_probabilities: torch.Tensor) -> torch.Tensor:
        """The max-constraint (Giunchiglia & Lukasiewicz 2020): each node takes the max over itself and
        everything below it, so a confident descendant lifts its ancestors."""
        levels = list(node_probabilities.index_select(1, self.level_order).split(self.level_widths, 1))
        for k in range(self.max_depth, 0, -1):
            levels[k - 1] = levels[k - 1].scatter_reduce(1, self._up(k).expand_as(levels[k]), levels[k], "amax")
        levels[0] = torch.ones_like(levels[0])
        return torch.cat(levels, 1).clamp(max=1.0).index_select(1, self.position)

    def spread_to_leaves(self, nodes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """[B, num_leaves]: each leaf's sum of values[b, k] over the nodes[b, k] at or above it (both [B, K]).

        The leaves under a node are a run of the depth-first order: each value is added where its run
        starts and taken off where it ends, and a running sum (in float64, so that nothing is left
        where a run ends) spreads it over the run; no [B, K, leaves] mask is written.
        """
        steps = torch.zeros(len(nodes), self.num_leaves + 1, dtype=torch.float64, device=nodes.device)
        steps.scatter_add_(1, self.leaf_start[nodes], values.double())
        steps.scatter_add_(1, self.leaf_stop[nodes], -values.double())
        return steps[:, :-1].cumsum(1).to(values.dtype).index_select(1, self.leaf_rank)

    def _up(self, k: int) -> torch.Tensor:
        """For each node of depth k, its parent's column within depth k - 1 (level order)."""
        return self.up[self.level_starts[k] - 1:self.level_starts[k + 1] - 1]

    def _leaf_levels(self, leaf_values: torch.Tensor, fill: float) -> list[torch.Tensor]:
        """Leaf-space values [B, num_leaves] in level order, inner nodes at ``fill``, split into levels."""
        # F.pad, not a cat with a [B, 1] column: an exported graph then takes any batch size
        padded = F.pad(leaf_values, (0, 1), value=fill)
        return list(padded.index_select(1, self.leaf_source).split(self.level_widths, 1))
