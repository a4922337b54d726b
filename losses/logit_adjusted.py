"""The logit-adjusted loss (Menon et al. 2021): any loss on the scores plus a fixed offset per column.

With offsets ``tau log pi`` (pi: the training class proportions) the cross-entropy is Menon's logit-adjusted
loss and, at tau = 1, Ren et al. 2020's balanced softmax: the loss sees the training prior, so the raw scores
need not learn it and estimate the balanced posterior. ``hier.runs.prior`` computes the offsets in the head's
score space (log-odds per node for per-node sigmoids); ``long_tail: logit_adjust`` wraps the run's loss in this.
"""

from __future__ import annotations

import torch
from torch import nn


class LogitAdjusted(nn.Module):
    """``loss(scores + offsets, targets)``: the wrapped loss, its name and spaces, on shifted scores."""

    def __init__(self, loss: nn.Module, offsets: torch.Tensor):
        super().__init__()
        self.loss = loss
        self.name, self.spaces = loss.name, loss.spaces
        self.register_buffer("offsets", offsets, persistent=False)  # rebuilt from the run's counts, never saved

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss(scores + self.offsets.to(scores.dtype), targets)
