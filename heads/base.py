"""The head contract every built-in and third-party head follows.

A head maps embeddings to scores (logits) in one space (see :mod:`hier.tree`) and turns
scores into node probabilities: root = 1, no child above its parent, node order of the taxonomy.
Calibration calls ``node_probabilities(scores / T)``, so scores must be logits whose division by a
temperature softens or sharpens the probabilities.

A head may say how a change of class mix moves its scores (``prior_link``, see :mod:`hier.runs.prior`):
``"log"`` when they are the logits of a softmax (over the leaves, or over each level), so that a class prior
adds its log; ``"log_odds"`` when they are per-node sigmoid logits, so that a node's proportion adds its
log-odds. A head that leaves it None trains and answers as always; only ``long_tail`` or a ``prior`` other
than the training mix is refused with it, with a message naming the head.

The loss contract is in :mod:`hier.losses.base`.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from hier.tree import TreeTensors


class Head(nn.Module, abc.ABC):
    """Embeddings -> scores; scores -> node probabilities."""

    name: str  # the registry name
    default_loss: str  # the loss the head is trained with unless told otherwise
    score_space: str  # "leaf", "node" or "level"
    prior_link: str | None = None  # "log", "log_odds" or None: how a class prior moves the scores

    def __init__(self, taxonomy):
        super().__init__()
        self.tree = TreeTensors(taxonomy)

    @abc.abstractmethod
    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [B, width of the head's space]; margin heads apply their margin when given targets."""

    @abc.abstractmethod
    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Probabilities [B, num_nodes]: root = 1, p(child) <= p(parent)."""
