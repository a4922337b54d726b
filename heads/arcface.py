"""ArcFace (Deng et al. 2019): additive angular margin over the leaves."""

from __future__ import annotations

from typing import ClassVar

import torch

from .cosine import CosineHead, angular_margin


class ArcFace(CosineHead):
    """ArcFace: additive angular margin on cosines to leaf centres, cross-entropy."""

    name = "arcface"
    default_loss = "ce"
    default_config: ClassVar[dict] = {"head_options": {"scale": 30.0, "margin": 0.5}, "loss": "ce", "loss_options": {}}
    score_space = "leaf"
    prior_link = "log"  # softmax logits: a class prior adds its log

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.5):
        super().__init__(in_features=in_features, taxonomy=taxonomy, scale=scale, margin=margin)

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """s·cos(theta); with targets, s·cos(theta + m) on the columns the target allows.

        An inner-node target puts the margin on every leaf under it: with the cross-entropy over the
        summed probability of those leaves, the embedding must then be m closer to one of them than
        to any leaf outside the target. Per level (arcface-multihead), the margin goes on the class
        holding the target, or on all of the target's descendants at levels below an inner-node target.
        """
        cos_theta = self.cosine(embeddings)
        if targets is not None:
            positive = self.tree.related(targets, self.tree.columns(self.score_space))
            cos_theta = torch.where(positive, angular_margin(cos_theta, self.margin), cos_theta)
        return self.scale * cos_theta

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return self.tree.sum_up(scores.softmax(-1))
