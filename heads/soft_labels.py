"""Soft labels (Bertinetto et al. 2020, "Making Better Mistakes")."""

from __future__ import annotations

import torch

from .base import Loss, check_non_negative


class SoftLabels(Loss):
    """Soft-label cross-entropy (Bertinetto et al. 2020), a baseline."""

    name = "soft-labels"
    spaces = ("leaf",)

    def __init__(self, *, taxonomy, beta: float = 10.0):
        """beta: hardness; the target's mass on leaf l is proportional to exp(-beta d(l, target))."""
        super().__init__(taxonomy)
        check_non_negative(self.name, beta=beta)
        self.beta = beta
        tree = self.tree
        leaves_under = tree.descendants[:, tree.leaves]  # [node, leaf]
        leaf_depth = tree.depth[tree.leaves]
        height = torch.where(leaves_under, leaf_depth, -1).amax(1) - tree.depth
        # Common ancestors of a node and a leaf form a root path: their count is depth(LCA) + 1.
        common = tree.ancestors.float() @ tree.ancestors[tree.leaves].float().T
        lca = tree.lineage.gather(1, common.long() - 1)
        distance = height[lca] / height[tree.root]
        self.register_buffer("soft_targets", torch.softmax(-beta * distance, dim=1), persistent=False)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against softmax(-beta d) over the leaves, d = height(LCA(leaf, target)) / height(root).

        Leaves under an inner-node target share its LCA and its top mass equally.
        """
        self.space(scores)
        return -(self.soft_targets.to(scores.dtype)[targets] * scores.log_softmax(-1)).sum(-1).mean()

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
