"""CosFace (Wang et al. 2018): normalised embeddings and class centres, additive cosine margin."""

from hier.heads.cosine import CosineHead


class CosFace(CosineHead):
    name = "cosface"
    default_loss = "ce"
    score_space = "leaf"

    def __init__(self, *, in_features: int, taxonomy, scale: float = 30.0, margin: float = 0.35):
        super().__init__(in_features=in_features, taxonomy=taxonomy, scale=scale, margin=margin)

    def forward(self, embeddings, targets=None):
        cosine = self.cosine(embeddings)
        if targets is not None:
            # the margin goes to every leaf the target allows (one leaf, or all leaves under an inner target)
            cosine = cosine - self.margin * self.tree.related(targets, self.tree.leaves).to(cosine.dtype)
        return self.scale * cosine

    def node_probabilities(self, scores):
        return self.tree.sum_up(scores.softmax(-1))
