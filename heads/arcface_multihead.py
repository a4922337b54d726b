"""ArcFaceMultiHead: one ArcFace head per level of the tree."""

from __future__ import annotations

import torch
from torch import nn

from .arcface import angular_margin, cosine
from .base import Head, check_angular


class ArcFaceMultiHead(Head):
    """One ArcFace head per level of the tree, levels combined over the leaves."""

    name = "arcface-multihead"
    default_loss = "ce"
    score_space = "level"

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.5):
        super().__init__(taxonomy)
        check_angular(self.name, scale, margin)
        self.scale = scale
        self.margin = margin
        # The level heads' centres, stacked: block k of the level space is head k.
        self.centres = nn.Parameter(torch.randn(self.tree.width("level"), in_features))

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated level logits s·cos(theta); with targets, s·cos(theta + m) on each level's class
        holding the target, or on all of the target's descendants at levels below an inner-node target."""
        cos_theta = cosine(embeddings, self.centres)
        if targets is not None:
            positive = self.tree.related(targets, self.tree.level_nodes)
            cos_theta = torch.where(positive, angular_margin(cos_theta, self.margin), cos_theta)
        return self.scale * cos_theta

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Levels combined as a product of experts over the leaves, then summed up the tree.

        Every level is a partition of the leaves (a leaf shallower than the level is its own class
        there), so each level's softmax scores every leaf through the class holding it. The leaf
        distribution is proportional to the product of those level probabilities; summing it up the
        tree gives node probabilities that are consistent by construction and use every level.
        """
        log_p = torch.cat([block.log_softmax(-1) for block in scores.split(self.tree.level_sizes, -1)], -1)
        leaf_logits = log_p[:, self.tree.leaf_level_columns].sum(-1)
        return self.tree.sum_up(leaf_logits.softmax(-1))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}, levels={len(self.tree.level_sizes)}"
