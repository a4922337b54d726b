"""Cross-entropy over the leaves, or over each level of a per-level head."""

from __future__ import annotations

import torch

from .base import Loss


class CrossEntropy(Loss):
    """Cross-entropy; an inner-node target scores the leaves under it (per level for level heads)."""

    name = "ce"
    spaces = ("leaf", "level")

    def __init__(self, *, taxonomy):
        super().__init__(taxonomy)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-log sum of softmax over the target's classes, averaged over the batch (and the levels).

        Leaf space: the target's classes are the leaves at or under it, so a leaf target gives the
        usual cross-entropy. Level space: per level, the class holding the target, or the target's
        descendants at that level when the target is an inner node above it.
        """
        space = self.space(scores)
        sizes = (scores.shape[-1],) if space == "leaf" else self.tree.level_sizes
        positive = self.tree.related(targets, self.tree.columns(space))
        losses = [
            torch.logsumexp(block, -1) - torch.logsumexp(block.masked_fill(~mask, float("-inf")), -1)
            for block, mask in zip(scores.split(sizes, -1), positive.split(sizes, -1))
        ]
        return torch.stack(losses).mean()
