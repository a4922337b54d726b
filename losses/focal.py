"""Sigmoid focal loss (Lin et al. 2017) on the multi-hot path of the target."""

from __future__ import annotations

import torch
from torchvision.ops import sigmoid_focal_loss

from hier.core.errors import InputError, check_non_negative, is_number

from .base import Loss, masked_mean


class FocalLoss(Loss):
    """Sigmoid focal loss (Lin et al. 2017) on the multi-hot path."""

    name = "focal"
    spaces = ("node", "leaf")

    def __init__(self, *, taxonomy, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__(taxonomy)
        if not (is_number(alpha) and (0 <= alpha <= 1 or alpha == -1)):
            raise InputError(f"loss 'focal': alpha must be between 0 and 1 (or -1 for none), got {alpha!r}")
        check_non_negative(self.name, gamma=gamma)
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """alpha_t (1 - p_t)^gamma BCE, averaged over the known entries."""
        positive, known = self.multi_hot(scores, targets)
        losses = sigmoid_focal_loss(scores, positive, alpha=self.alpha, gamma=self.gamma, reduction="none")
        return masked_mean(losses, known)
