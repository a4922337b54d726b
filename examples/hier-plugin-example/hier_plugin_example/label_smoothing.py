"""Cross-entropy against a smoothed target: 1 - eps spread over the leaves the target allows, eps over all."""

import torch

from hier.heads.base import Loss


class LabelSmoothing(Loss):
    name = "label-smoothing"
    spaces = ("leaf",)

    def __init__(self, *, taxonomy, smoothing: float = 0.1):
        super().__init__(taxonomy)
        self.smoothing = smoothing

    def forward(self, scores, targets):
        self.space(scores)  # a clear error for scores of another space
        allowed = self.tree.related(targets, self.tree.leaves).to(scores.dtype)
        target = (1 - self.smoothing) * allowed / allowed.sum(1, keepdim=True) + self.smoothing / scores.shape[1]
        return -(target * torch.log_softmax(scores, dim=1)).sum(1).mean()
