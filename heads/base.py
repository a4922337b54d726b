"""The head and loss contract every built-in and third-party head follows.

A head maps embeddings to scores (logits) in one space (see :mod:`hier.heads.tree`) and turns
scores into node probabilities: root = 1, no child above its parent, node order of the taxonomy.
Calibration calls ``node_probabilities(scores / T)``, so scores must be logits whose division by a
temperature softens or sharpens the probabilities.

A loss is called as ``loss(scores, targets)`` with targets a LongTensor [B] of node indices at any
depth, and tells the space of the scores by their last dimension.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from hier.core.errors import InputError

from .tree import TreeTensors


class Head(nn.Module, abc.ABC):
    """Embeddings -> scores; scores -> node probabilities."""

    name: str  # the registry name
    default_loss: str  # the loss the head is trained with unless told otherwise
    score_space: str  # "leaf", "node" or "level"

    def __init__(self, taxonomy):
        super().__init__()
        self.tree = TreeTensors(taxonomy)

    @abc.abstractmethod
    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [B, width of the head's space]; margin heads apply their margin when given targets."""

    @abc.abstractmethod
    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Probabilities [B, num_nodes]: root = 1, p(child) <= p(parent)."""


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


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_non_negative(loss: str, **options: float) -> None:
    for option, value in options.items():
        if not (is_number(value) and value >= 0):
            raise InputError(f"loss {loss!r}: {option} must be a number, zero or more, got {value!r}")
