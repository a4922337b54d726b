"""ArcFaceMultiHead: one ArcFace head per level of the tree."""

from __future__ import annotations

from typing import ClassVar

import torch

from .arcface import ArcFace


class ArcFaceMultiHead(ArcFace):
    """One ArcFace head per level of the tree, levels combined over the leaves."""

    name = "arcface-multihead"
    default_loss = "ce"
    default_config: ClassVar[dict] = {"head_options": {"scale": 30.0, "margin": 0.5}, "loss": "ce", "loss_options": {}}
    score_space = "level"  # the level heads' centres, stacked: block k of the level space is head k
    prior_link = "log"  # softmax logits per level: a prior adds, per level, the log of each class's share

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
        return f"{super().extra_repr()}, levels={len(self.tree.level_sizes)}"
