"""Hierarchical cross-entropy (Bertinetto et al. 2020, "Making Better Mistakes")."""

from __future__ import annotations

import torch

from hier.core.errors import check_non_negative

from .base import Loss


class HierarchicalCrossEntropy(Loss):
    """Hierarchical cross-entropy (Bertinetto et al. 2020), a baseline."""

    name = "hxe"
    spaces = ("leaf",)

    def __init__(self, *, taxonomy, alpha: float = 0.1):
        """alpha: the edge into a node at depth d weighs exp(-alpha d); 0 gives plain cross-entropy."""
        super().__init__(taxonomy)
        check_non_negative(self.name, alpha=alpha)
        self.alpha = alpha
        self.register_buffer("edge_weights", torch.exp(-alpha * self.tree.depth.double()).float(), persistent=False)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-sum over the edges (parent, child) of the target's path of w(child) log p(child | parent).

        p(node) is the summed softmax of the leaves under it, so the conditionals come from the flat
        softmax, as in the paper. The reference code divides all weights by their sum, which rescales
        the loss by a constant of the tree; they are left as they are here, so that alpha = 0 is exactly
        the cross-entropy. An inner-node target ends its path there.
        """
        self.space(scores)
        log_node = self.tree.log_sum_up(scores.log_softmax(-1))  # log p(node) for every node, level by level
        path = self.tree.lineage[targets]  # root to target, padded with the target: padded edges add 0
        log_path = log_node.gather(1, path)
        log_conditional = log_path[:, 1:] - log_path[:, :-1]
        weights = self.edge_weights.to(scores.dtype)[path[:, 1:]]
        return -(weights * log_conditional).sum(-1).mean()

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
