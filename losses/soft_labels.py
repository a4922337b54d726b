"""Soft labels (Bertinetto et al. 2020, "Making Better Mistakes")."""

from __future__ import annotations

import torch

from hier.core.errors import check_non_negative

from .base import Loss


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
        # A leaf's LCA with the target is the deepest ancestor a_k of the target above the leaf, so the
        # leaves fall into groups along the target's path: those under a_k and not under a_(k+1) weigh
        # w(a_k) = exp(-beta height(a_k) / height(root)). Telescoping the groups, the target's soft
        # distribution puts sum_k (w(a_k) - w(a_(k-1))) / Z on the leaves under a_k, Z its total mass.
        weight = torch.exp(-beta * tree.height.double() / tree.height[tree.root])[tree.lineage]  # [N, D + 1]
        step = torch.diff(weight, dim=1, prepend=torch.zeros(tree.num_nodes, 1, dtype=weight.dtype))
        total = (step * tree.leaves_under[tree.lineage]).sum(1, keepdim=True)
        self.register_buffer("path_weights", (step / total).float(), persistent=False)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against softmax(-beta d) over the leaves, d = height(LCA(leaf, target)) / height(root).

        Leaves under an inner-node target share its LCA and its top mass equally. The soft targets are
        built per batch from the target's path ([B, leaves], never a [nodes, leaves] table).
        """
        self.space(scores)
        soft = self.tree.spread_to_leaves(self.tree.lineage[targets], self.path_weights.to(scores.dtype)[targets])
        return -(soft * scores.log_softmax(-1)).sum(-1).mean()

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
