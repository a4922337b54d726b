"""The loss contract every built-in and third-party loss follows.

A loss is called as ``loss(scores, targets)`` with targets a LongTensor [B] of node indices at any
depth, and tells the space of the scores (see :mod:`hier.tree`) by their last dimension.
"""

from __future__ import annotations

import torch
from torch import nn

from hier.tree import TreeTensors


class Loss(nn.Module):
    """``loss(scores, targets) -> scalar``; subclasses name the spaces they accept."""

    name: str  # the registry name
    spaces: tuple[str, ...]  # accepted score spaces, preferred first

    def __init__(self, taxonomy):
        super().__init__()
        self.tree = TreeTensors(taxonomy)

    def space(self, scores: torch.Tensor) -> str:
        return self.tree.space(scores, self.spaces, f"loss {self.name!r}")

    def multi_hot(self, scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Multi-hot targets and known-entry mask in the scores' space and dtype (see ``TreeTensors.multi_hot``)."""
        positive, known = self.tree.multi_hot(targets, self.space(scores))
        # Through uint8: bool -> float is several times slower on CPU.
        return positive.view(torch.uint8).to(scores.dtype), known.view(torch.uint8).to(scores.dtype)


def masked_mean(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Mean over the known entries (zero when none is known, as for a root target in leaf space)."""
    return (values * known).sum() / known.sum().clamp(min=1)
