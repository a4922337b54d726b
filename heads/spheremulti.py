"""SphereMulti (Ke et al. 2022, hyperspherical multi-label learning): one cosine logit per node."""

from __future__ import annotations

from typing import ClassVar

import torch

from .cosine import CosineHead, angular_margin


class SphereMulti(CosineHead):
    """One cosine logit per node, the path as a multi-hot target, BCE or ASL."""

    name = "spheremulti"
    default_loss = "bce"
    default_config: ClassVar[dict] = {"head_options": {"scale": 30.0, "margin": 0.2}, "loss": "bce", "loss_options": {}}
    score_space = "node"
    prior_link = "log_odds"  # per-node sigmoid logits: a node's prior adds its log-odds

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.2):
        super().__init__(in_features=in_features, taxonomy=taxonomy, scale=scale, margin=margin)

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """s·cos(theta + m) for every node, with and without targets.

        The margin is the same for every node whatever the target, so it is part of the logit and
        stays at inference: p > 0.5 needs theta < pi/2 - m, which makes a positive harder to claim
        than a negative to reject. Probabilities are those the loss was trained on.
        """
        return self.scale * angular_margin(self.cosine(embeddings), self.margin)

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Per-node sigmoids made consistent with the max-constraint (see ``TreeTensors.max_up``).

        Each sigmoid estimates the marginal probability that the object is at or below its node;
        an object recognised as a species is also of its genus, so a confident descendant must lift
        its ancestors (Giunchiglia & Lukasiewicz 2020). Where the sigmoids already respect the tree
        (what the hierarchical loss trains for) the max changes nothing.
        """
        return self.tree.max_up(torch.sigmoid(scores))


class SphereMultiHier(SphereMulti):
    """SphereMulti trained with the hierarchical BCE (violation and distance penalties)."""

    name = "spheremultihier"
    default_loss = "hbce"
    default_config: ClassVar[dict] = {
        "head_options": {"scale": 30.0, "margin": 0.2}, "loss": "hbce",
        "loss_options": {"hierarchy_penalty": 1.0, "distance_weight": 1.0, "level_weights": None, "edge_penalties": None}}
