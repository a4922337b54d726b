# file: hier_cosface/label_smoothing.py
"""Cross-entropy against a smoothed target: 1 - eps over the leaves the target allows, eps over all."""

from hier.core.errors import InputError
from hier.losses.base import Loss


class LabelSmoothing(Loss):
    """Cross-entropy against a smoothed target over the leaves."""

    name = "label-smoothing"
    spaces = ("leaf",)

    def __init__(self, *, taxonomy, smoothing: float = 0.1):
        super().__init__(taxonomy)  # self.tree
        if not 0 <= smoothing < 1:
            raise InputError(f"loss {self.name!r}: smoothing must be in [0, 1), got {smoothing!r}")
        self.smoothing = smoothing

    def forward(self, scores, targets):
        self.space(scores)  # leaf scores, or a clear error
        allowed = self.tree.related(targets, self.tree.leaves).to(scores.dtype)
        target = (1 - self.smoothing) * allowed / allowed.sum(1, keepdim=True) + self.smoothing / scores.shape[1]
        return -(target * scores.log_softmax(-1)).sum(-1).mean()
