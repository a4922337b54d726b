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
        lca = tree.lca_table(torch.arange(tree.num_nodes), tree.leaves)  # [target, leaf]
        distance = tree.height[lca] / tree.height[tree.root]
        self.register_buffer("soft_targets", torch.softmax(-beta * distance, dim=1), persistent=False)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against softmax(-beta d) over the leaves, d = height(LCA(leaf, target)) / height(root).

        Leaves under an inner-node target share its LCA and its top mass equally.
        """
        self.space(scores)
        return -(self.soft_targets.to(scores.dtype)[targets] * scores.log_softmax(-1)).sum(-1).mean()

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
