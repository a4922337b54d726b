"""Classifier: a linear layer over the leaves, trained with cross-entropy."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .base import Head


class Classifier(Head):
    """Linear layer over the leaves, cross-entropy."""

    name = "classifier"
    default_loss = "ce"
    default_config: ClassVar[dict] = {"head_options": {"bias": True}, "loss": "ce", "loss_options": {}}
    score_space = "leaf"
    prior_link = "log"  # softmax logits: a class prior adds its log

    def __init__(self, *, in_features: int, taxonomy, bias: bool = True):
        super().__init__(taxonomy)
        self.linear = nn.Linear(in_features, self.tree.num_leaves, bias=bias)

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(embeddings)

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return self.tree.sum_up(scores.softmax(-1))
