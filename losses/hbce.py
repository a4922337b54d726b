"""Hierarchical BCE: BCE plus a hierarchy-violation penalty and a distance penalty, as tensor operations.

The method notes add to the BCE a penalty for every edge whose child is predicted while its parent
is not (after arXiv 2502.03591 and its CIHMLC code) and the tree distance between the deepest
predicted and the deepest true node. Both are computed there on thresholded predictions in Python
loops over nodes and samples, so neither carries a gradient and neither changes training. Here
both are soft and differentiable:

- violation: w_e · relu(p_child - p_parent) per edge, p the sigmoids, edges from the root left out
  as in the notes (the root is always true); at hard 0/1 predictions, the notes' violated edges;
- distance: |p - y| per known node, the expected number of wrongly predicted nodes; at hard
  predictions that respect the tree it is the tree distance between the deepest predicted node
  and the target, since both are root paths and the path between their ends is their symmetric
  difference.

The notes sum both per sample; here they are averaged, the violation over the penalised edges and
the distance over the known entries like the BCE, so that a weight means the same on a tree of 20
nodes and of 2,000. With hierarchy_penalty = h · (number of penalised edges) and distance_weight =
number of non-root nodes, the loss is the notes' one, with penalty h, at hard predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from hier.core.errors import InputError, check_non_negative, is_number

from .base import Loss


class HierarchicalBCE(Loss):
    """BCE plus differentiable hierarchy-violation and distance penalties."""

    name = "hbce"
    spaces = ("node",)

    def __init__(self, *, taxonomy, hierarchy_penalty: float = 1.0, distance_weight: float = 1.0,
                 level_weights: str | Sequence[float] | None = None,
                 edge_penalties: Mapping[str, float] | None = None, per_sample_sums: bool = False):
        """
        hierarchy_penalty: weight of the mean violation over the penalised edges (the fixed penalty
            of arXiv 2502.03591, averaged rather than summed).
        distance_weight: weight of the mean |p - y| over the known entries (the soft distance).
        level_weights: BCE weight per depth: None (all 1), "balanced" (every depth weighs the same in
            total) or one weight per depth 1..max depth.
        edge_penalties: node id -> factor on the penalty of the edge above that node, for data-driven
            weights such as 1 - P(child | not parent) estimated from training labels; others keep 1.
        per_sample_sums: sum both penalties over a sample's edges and nodes and average over the batch,
            as the notes do, rather than averaging them like the BCE (preset spheremultihier-notes.yaml).
        """
        super().__init__(taxonomy)
        check_non_negative(self.name, hierarchy_penalty=hierarchy_penalty, distance_weight=distance_weight)
        self.hierarchy_penalty = hierarchy_penalty
        self.distance_weight = distance_weight
        self.per_sample_sums = bool(per_sample_sums)
        self.register_buffer("node_weights", _level_weights(taxonomy, level_weights), persistent=False)
        self.register_buffer("edge_weights", _edge_factors(taxonomy, edge_penalties), persistent=False)
        self.num_penalised_edges = max(int((taxonomy.depth >= 2).sum()), 1)
        # Per target node: its path below the root (padded with itself) and which entries of it are real.
        tree = self.tree
        self.register_buffer("path", tree.lineage[:, 1:].contiguous(), persistent=False)
        levels = torch.arange(1, tree.max_depth + 1)
        self.register_buffer("on_path", (levels <= tree.depth[:, None]).float(), persistent=False)

    def terms(self, scores: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three weighted terms whose sum is the loss: bce, violation, distance."""
        self.space(scores)
        if bool(self.tree.is_leaf[targets].all()):  # one look on the host; it spares a dense mask
            # Leaf targets know every node but the root: one row serves the whole batch.
            known = self.tree.not_root.to(scores.dtype)
            num_known = len(targets) * (self.tree.num_nodes - 1)
        else:
            known = self.tree.multi_hot(targets, "node")[1].view(torch.uint8).to(scores.dtype)  # bool -> float: slow
            num_known = known.sum().clamp(min=1)
        node_weights = None if self.node_weights is None else self.node_weights.to(scores.dtype)
        bce, violation, distance = _HierarchicalBCESums.apply(
            scores, known, self.path[targets], self.on_path[targets].to(scores.dtype), node_weights,
            self.edge_weights.to(scores.dtype), self.tree.parent)
        batch = scores.shape[0]
        edges, entries = (1, batch) if self.per_sample_sums else (self.num_penalised_edges, num_known)
        return {"bce": bce / num_known,
                "violation": self.hierarchy_penalty * violation / (batch * edges),
                "distance": self.distance_weight * distance / entries}

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        terms = self.terms(scores, targets)
        return terms["bce"] + terms["violation"] + terms["distance"]

    def extra_repr(self) -> str:
        return f"hierarchy_penalty={self.hierarchy_penalty}, distance_weight={self.distance_weight}"


class _HierarchicalBCESums(torch.autograd.Function):
    """Batch sums of the weighted BCE, the weighted soft violations and the soft distance.

    Positives are few (the target's path) and are handled as corrections gathered along the path,
    so every dense pass treats all entries as negatives; ``known`` is [B, N], or one row [N] shared by
    the batch; the gradient is written out. Through autograd with dense multi-hot masks the same
    sums cost about three times as much on CPU, where these passes are bound by memory traffic.
    """

    @staticmethod
    def forward(ctx, scores, known, path, on_path, node_weights, edge_weights, parent):
        p = torch.sigmoid(scores)
        weight = known if node_weights is None else known * node_weights
        path_weight = weight.expand_as(scores).gather(1, path) * on_path
        # BCE: softplus(s) for a negative; softplus(-s) = softplus(s) - s for a positive. softplus(s) =
        # s - log p reuses p at half the cost of softplus; the clamp covers p underflowing to 0 below s = -87.
        softplus = (scores - torch.log(p)).clamp_(min=0)
        bce = _total(softplus, weight) - (path_weight * scores.gather(1, path)).sum()
        # |p - y|: p for a negative, p + (1 - 2p) for a positive.
        distance = _total(p, known) + ((1 - 2 * p.gather(1, path)) * on_path).sum()
        excess = (p - p.index_select(1, parent)).clamp_(min=0)  # child above parent; the root is its own parent
        ctx.save_for_backward(p, known, weight, excess, path, on_path, path_weight, edge_weights, parent)
        return bce, (excess @ edge_weights).sum(), distance

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bce, grad_violation, grad_distance):
        p, known, weight, excess, path, on_path, path_weight, edge_weights, parent = ctx.saved_tensors
        slope = torch.addcmul(p, p, p, value=-1)  # dp/ds
        # relu(p_child - p_parent) pushes its child's probability down and its parent's up.
        push = torch.sign(excess).mul_(grad_violation * edge_weights)
        along_p = push.sub_(torch.zeros_like(push).index_add_(1, parent, push)).addcmul_(known, grad_distance)
        grad = along_p.mul_(slope).addcmul_(p, weight * grad_bce)
        # Positives: d softplus(-s)/ds = p - 1 and d(1 - p)/ds = -slope.
        path_grad = path_weight * grad_bce + 2 * grad_distance * on_path * slope.gather(1, path)
        return grad.scatter_add_(1, path, -path_grad), None, None, None, None, None, None


def _total(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum(values * weight) for weight [B, N] or one row [N], without writing the product."""
    return torch.dot(values.flatten(), weight.flatten()) if weight.dim() == 2 else (values @ weight).sum()


def _level_weights(taxonomy, level_weights) -> torch.Tensor | None:
    depth = torch.from_numpy(taxonomy.depth.copy())
    max_depth = int(depth.max())
    if level_weights is None:
        return None  # all 1: the loss skips the multiplication
    if level_weights == "balanced":
        # Every depth carries the same total weight, however many nodes it has.
        counts = torch.bincount(depth, minlength=max_depth + 1).float()
        return (len(taxonomy) - 1) / (max_depth * counts[depth])
    if (isinstance(level_weights, str) or len(level_weights) != max_depth
            or not all(is_number(w) and w >= 0 for w in level_weights)):
        raise InputError(f"loss 'hbce': level_weights must be null, 'balanced' or {max_depth} numbers, "
                         f"zero or more (one per depth 1..{max_depth}), got {level_weights!r}")
    return torch.tensor([1.0, *map(float, level_weights)])[depth]


def _edge_factors(taxonomy, edge_penalties) -> torch.Tensor:
    factors = torch.ones(len(taxonomy))
    for node_id, factor in (edge_penalties or {}).items():
        if node_id not in taxonomy:
            raise InputError(f"loss 'hbce': edge_penalties names {node_id!r}, which is not a node of the taxonomy")
        if not (is_number(factor) and factor >= 0):
            raise InputError(f"loss 'hbce': edge_penalties[{node_id!r}] must be a number, zero or more, got {factor!r}")
        factors[taxonomy.index(node_id)] = float(factor)
    factors[taxonomy.depth <= 1] = 0.0  # no edge above the root; edges from it never violate
    return factors
