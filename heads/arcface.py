"""ArcFace (Deng et al. 2019): additive angular margin over the leaves."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Head, check_angular


def cosine(embeddings: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cosine between each embedding and each centre, [B, C]."""
    return F.linear(F.normalize(embeddings, dim=-1), F.normalize(centres, dim=-1))


def angular_margin(cos_theta: torch.Tensor, margin: float) -> torch.Tensor:
    """cos(theta + m), continued past theta = pi - m by cos(theta) - m sin(m).

    cos(theta + m) turns back up once theta + m passes pi, which would reward pushing an embedding
    away from its centre; the continuation keeps the logit falling with theta (the guard of the
    ArcFace reference code, also in the method notes).
    """
    cos_theta = cos_theta.to(torch.promote_types(cos_theta.dtype, torch.float32))  # half precision underflows here
    # The floor stops the gradient of sin(theta) = sqrt(1 - cos^2) where it is infinite, on a centre or opposite it.
    sin_theta = (1 - cos_theta.square()).clamp_min(torch.finfo(cos_theta.dtype).tiny).sqrt()
    shifted = cos_theta * math.cos(margin) - sin_theta * math.sin(margin)
    return torch.where(cos_theta > math.cos(math.pi - margin), shifted, cos_theta - margin * math.sin(margin))


class ArcFace(Head):
    """ArcFace: additive angular margin on cosines to leaf centres, cross-entropy."""

    name = "arcface"
    default_loss = "ce"
    score_space = "leaf"

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.5):
        super().__init__(taxonomy)
        check_angular(self.name, scale, margin)
        self.scale = scale
        self.margin = margin
        # Gaussian rows point in uniformly random directions once normalised.
        self.centres = nn.Parameter(torch.randn(self.tree.num_leaves, in_features))

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """s·cos(theta); with targets, s·cos(theta + m) on the target leaf.

        An inner-node target puts the margin on every leaf under it: with the cross-entropy over the
        summed probability of those leaves, the embedding must then be m closer to one of them than
        to any leaf outside the target.
        """
        cos_theta = cosine(embeddings, self.centres)
        if targets is not None:
            positive = self.tree.related(targets, self.tree.leaves)
            cos_theta = torch.where(positive, angular_margin(cos_theta, self.margin), cos_theta)
        return self.scale * cos_theta

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return self.tree.sum_up(scores.softmax(-1))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}"
