"""Binary cross-entropy on the multi-hot path of the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Loss, masked_mean


class BinaryCrossEntropy(Loss):
    """BCE on the target's path as a multi-hot vector; nodes below an inner target masked."""

    name = "bce"
    spaces = ("node", "leaf")

    def __init__(self, *, taxonomy):
        super().__init__(taxonomy)

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over the known entries of the batch (see ``TreeTensors.multi_hot``)."""
        positive, known = self.multi_hot(scores, targets)
        return masked_mean(F.binary_cross_entropy_with_logits(scores, positive, reduction="none"), known)
