"""CosFace (Wang et al. 2018): normalised embeddings and class centres, additive cosine margin."""

import torch
import torch.nn.functional as F
from torch import nn

from hier.heads.base import Head


class CosFace(Head):
    name = "cosface"
    default_loss = "ce"
    score_space = "leaf"

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.35):
        super().__init__(taxonomy)
        self.scale, self.margin = scale, margin
        self.centres = nn.Parameter(torch.empty(self.tree.num_leaves, in_features))
        nn.init.xavier_normal_(self.centres)

    def forward(self, embeddings, targets=None):
        cosine = F.linear(F.normalize(embeddings), F.normalize(self.centres))
        if targets is not None:
            # the margin goes to every leaf the target allows (one leaf, or all leaves under an inner target)
            cosine = cosine - self.margin * self.tree.related(targets, self.tree.leaves).to(cosine.dtype)
        return self.scale * cosine

    def node_probabilities(self, scores):
        return self.tree.sum_up(scores.softmax(-1))
