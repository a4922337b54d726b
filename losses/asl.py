"""Asymmetric loss (Ridnik et al. 2021) on the multi-hot path of the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hier.core.errors import check_non_negative

from .base import Loss


class AsymmetricLoss(Loss):
    """Asymmetric loss (Ridnik et al. 2021) on the multi-hot path."""

    name = "asl"
    spaces = ("node", "leaf")

    def __init__(self, *, taxonomy, gamma_neg: float = 4.0, gamma_pos: float = 1.0, clip: float = 0.05):
        super().__init__(taxonomy)
        check_non_negative(self.name, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """L+ = (1-p)^gamma_pos log p, L- = p_m^gamma_neg log(1 - p_m), p_m = max(p - clip, 0).

        The reference sums over labels and batch; here the sum runs over a sample's known labels and
        the batch is averaged, so the loss does not grow with the batch size. log p is log-sigmoid
        rather than the reference's log(clamp(p, 1e-8)), which stops the gradient of a positive
        whose logit is below -18, a value scaled cosine heads reach.
        """
        positive, known = self.multi_hot(scores, targets)
        p = torch.sigmoid(scores)
        shifted = (p - self.clip).clamp(min=0)
        log_not_shifted = torch.log1p(-shifted) if self.clip > 0 else F.logsigmoid(-scores)
        loss_pos = (1 - p).pow(self.gamma_pos) * F.logsigmoid(scores)
        loss_neg = shifted.pow(self.gamma_neg) * log_not_shifted
        losses = -(positive * loss_pos + (1 - positive) * loss_neg)
        return (losses * known).sum(-1).mean()
