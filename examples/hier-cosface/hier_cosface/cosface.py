# file: hier_cosface/cosface.py
"""CosFace (Wang et al. 2018): normalised embeddings and centres, an additive cosine margin."""

from typing import ClassVar

from hier.heads.cosine import CosineHead


class CosFace(CosineHead):
    """Large-margin cosine head: s * (cos(theta) - m) on the true class."""

    name = "cosface"
    score_space = "leaf"
    default_loss = "label-smoothing"
    default_config: ClassVar[dict] = {
        "head_options": {"scale": 30.0, "margin": 0.35},
        "loss": "label-smoothing",
        "loss_options": {"smoothing": 0.1},
    }

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.35):
        # self.tree, self.centres [num_leaves, in_features], self.scale, self.margin
        super().__init__(in_features=in_features, taxonomy=taxonomy, scale=scale, margin=margin)

    def forward(self, embeddings, targets=None):
        cosine = self.cosine(embeddings)  # [B, num_leaves]
        if targets is not None:  # the margin goes to every leaf the target allows
            allowed = self.tree.related(targets, self.tree.leaves)
            cosine = cosine - self.margin * allowed.to(cosine.dtype)
        return self.scale * cosine

    def node_probabilities(self, scores):
        return self.tree.sum_up(scores.softmax(-1))  # [B, num_nodes]
