"""The taxonomy as tensors, shared by every head and loss.

Scores live in one of three spaces, told apart by their last dimension:

- ``leaf``: one column per leaf, in ``taxonomy.leaves`` order;
- ``node``: one column per node, in node order;
- ``level``: the per-level heads' space, one block per depth 1..D; block k holds the nodes at depth k
  and the leaves shallower than k (moved down to every deeper level), each block in node order.

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

        ancestors = torch.from_numpy(taxonomy.ancestor_matrix.copy())
        self.register_buffer("ancestors", ancestors, persistent=False)  # [i, j]: j is i or above i
        self.register_buffer("descendants", ancestors.T.contiguous(), persistent=False)  # [i, j]: j is i or below i
        # known[t, j]: whether a multi-hot target t says anything about node j (see multi_hot)
        known = ancestors | ~ancestors.T
        known[:, self.root] = False
        self.register_buffer("known", known, persistent=False)
        self.register_buffer("leaves", torch.from_numpy(taxonomy.leaves.copy()), persistent=False)
        self.register_buffer("is_leaf", torch.from_numpy(is_leaf), persistent=False)
        self.register_buffer("depth", torch.from_numpy(depth.copy()), persistent=False)
        self.register_buffer("root_index", torch.tensor([self.root]), persistent=False)
        parent = np.where(taxonomy.parent >= 0, taxonomy.parent, self.root)  # the root is its own parent
        self.register_buffer("parent", torch.from_numpy(parent), persistent=False)
        # height[i]: the longest way down from i to a leaf under it; information[i]: log2(#leaves / #leaves under i)
        leaf_depth = np.where(is_leaf, depth, -1)
        height = np.max(np.where(taxonomy.ancestor_matrix, leaf_depth[:, None], -1), axis=0) - depth
        self.register_buffer("height", torch.from_numpy(height), persistent=False)
        information = np.log2(self.num_leaves / taxonomy.leaves_under)
        self.register_buffer("information", torch.as_tensor(information, dtype=torch.float32), persistent=False)

        # Non-root nodes sorted by depth: one slice per level lets bottom-up passes run level by level.
        by_depth = np.flatnonzero(taxonomy.parent >= 0)
        by_depth = by_depth[np.argsort(depth[by_depth], kind="stable")]
        bounds = np.searchsorted(depth[by_depth], np.arange(1, self.max_depth + 2))
        self.depth_slices = tuple(slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
        self.register_buffer("by_depth", torch.from_numpy(by_depth), persistent=False)
        self.register_buffer("by_depth_parent", torch.from_numpy(parent[by_depth]), persistent=False)

        # lineage[i, k]: the ancestor of i at depth k, and i itself below its own depth.
        lineage = np.full((len(taxonomy), self.max_depth + 1), self.root, dtype=np.int64)
        for k, level in enumerate(self.depth_slices, start=1):
            nodes = by_depth[level]
            lineage[nodes, :k] = lineage[parent[nodes], :k]
            lineage[nodes, k:] = nodes[:, None]
        self.register_buffer("lineage", torch.from_numpy(lineage), persistent=False)

        levels = [np.flatnonzero((depth == k) | (is_leaf & (depth < k))) for k in range(1, self.max_depth + 1)]
        self.level_sizes = tuple(len(nodes) for nodes in levels)
        self.register_buffer("level_nodes", torch.from_numpy(np.concatenate(levels)), persistent=False)
        # leaf_level_columns[l, k-1]: the column, in level space, of the class holding leaf l at depth k.
        column_of = np.full((self.max_depth, len(taxonomy)), -1, dtype=np.int64)
        offsets = np.cumsum((0,) + self.level_sizes[:-1])
        for k, (nodes, offset) in enumerate(zip(levels, offsets)):
            column_of[k, nodes] = offset + np.arange(len(nodes))
        leaf_lineage = lineage[taxonomy.leaves, 1:]
        leaf_columns = column_of[np.arange(self.max_depth)[None, :], leaf_lineage]
        self.register_buffer("leaf_level_columns", torch.from_numpy(leaf_columns), persistent=False)

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

    # ---- targets --------------------------------------------------------------------------

    def related(self, targets: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Bool [B, C]: the column's node is the target, one of its ancestors or one of its descendants.

        For leaf columns these are the leaves under the target; per level, the one class holding the
        target, or the target's descendants at that level when the target is an inner node above it.
        """
        return (self.ancestors[targets] | self.descendants[targets])[:, columns]

    def multi_hot(self, targets: torch.Tensor, space: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Bool multi-hot targets and mask of known entries, both [B, width of a leaf or node space].

        Positive: the target and its ancestors. Unknown: the nodes strictly below an inner-node target
        (a label that stops at genus says nothing about the species) and the root (always true).
        """
        positive, known = self.ancestors[targets], self.known[targets]
        if space == "leaf":
            return positive[:, self.leaves], known[:, self.leaves]
        return positive, known

    # ---- lowest common ancestors ----------------------------------------------------------

    def lca(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Lowest common ancestor of node pairs (a[k], b[k]), [len(a)]."""
        common = (self.ancestors[a] & self.ancestors[b]).sum(1)
        return self._lca_from_count(a, common.unsqueeze(1)).squeeze(1)

    def lca_table(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Lowest common ancestor of every pair (a[i], b[j]), [len(a), len(b)]."""
        common = self.ancestors[a].float() @ self.ancestors[b].float().T
        return self._lca_from_count(a, common.long())

    def _lca_from_count(self, a: torch.Tensor, common: torch.Tensor) -> torch.Tensor:
        # The common ancestors of two nodes form a root path: their count is depth(LCA) + 1.
        return self.lineage[a].gather(1, common - 1)

    # ---- consistent node probabilities ----------------------------------------------------

    def sum_up(self, leaf_probabilities: torch.Tensor) -> torch.Tensor:
        """Node probabilities from a distribution over the leaves: each node holds the sum under it.

        The sums are added child by child from the deepest level up; adding non-negative numbers never
        rounds below any of them, so no child ends above its parent.
        """
        p = leaf_probabilities.new_zeros(leaf_probabilities.shape[0], self.num_nodes)
        p = p.index_copy(1, self.leaves, leaf_probabilities)
        for level in reversed(self.depth_slices):
            p = p.index_add(1, self.by_depth_parent[level], p[:, self.by_depth[level]])
        return self._rooted(p)

    def max_up(self, node_probabilities: torch.Tensor) -> torch.Tensor:
        """The max-constraint (Giunchiglia & Lukasiewicz 2020): each node takes the max over itself and
        everything below it, so a confident descendant lifts its ancestors."""
        p = node_probabilities
        for level in reversed(self.depth_slices):
            children = p[:, self.by_depth[level]]
            parents = self.by_depth_parent[level].expand_as(children)
            p = p.scatter_reduce(1, parents, children, reduce="amax")
        return self._rooted(p)

    def _rooted(self, p: torch.Tensor) -> torch.Tensor:
        # Summed probabilities may round a hair above 1; clamping keeps the order and the root is certain.
        return p.clamp(max=1.0).index_fill(1, self.root_index, 1.0)
