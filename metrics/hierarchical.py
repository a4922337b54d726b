"""Hierarchical metrics over node probabilities [N, num_nodes] and target node indices [N].

Correctness is that of :mod:`hier.metrics.correctness` (an ancestor of the target counts, and so does a
node below an inner-node target). Definitions follow Kiritchenko et al. 2005 (hierarchical P/R/F1)
and Bertinetto et al. 2020 (mistake severity, hierarchical distance @k); docs/confidence.md states
each one. ``weights`` (one per sample, None: all 1) are importance weights: the metric of a test set
scored as if it had another class mix (``hier evaluate --reweight``).
"""

from __future__ import annotations

import torch

from hier.metrics.correctness import is_correct, top_leaves
from hier.tree import TreeTensors


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """The mean of per-sample values, each with its weight (None: the plain mean)."""
    if weights is None:
        return values.float().mean().item()
    return ((values.double() * weights.double()).sum() / weights.double().sum()).item()


# ---- leaf (top-1) metrics ----------------------------------------------------------------------


def top_k_accuracy(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, k: int,
                   weights: torch.Tensor | None = None) -> float:
    """Share of samples with a correct leaf among the k most probable (under an inner-node target counts)."""
    top = top_leaves(probs, tree, k)
    return weighted_mean(is_correct(top, target[:, None].expand_as(top), tree).any(dim=1), weights)


def hierarchical_prf(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors,
                     weights: torch.Tensor | None = None) -> dict[str, float]:
    """Kiritchenko's hP, hR, hF over ancestor sets without the root; micro and macro.

    Micro pools the set sizes over all samples. Macro pools them within each true class, then averages
    the classes' hP, hR and hF (each class counts once, however rare). The predicted set loses only the
    nodes strictly below an inner-node target, about which the label says nothing; a prediction deeper
    than a leaf target, or off the target's branch, counts all its nodes (as in ``hiclass.metrics``).
    """
    # Both sets are root paths without the root: their sizes are depths, their overlap the LCA's depth.
    true_depth = tree.depth[target]
    pred_depth = torch.where(tree.is_ancestor(target, pred), true_depth, tree.depth[pred])
    counts = torch.stack([tree.depth[tree.lca(pred, target)], pred_depth, true_depth], 1).double()
    if weights is not None:  # micro pools weighted sizes; within a class the weight is one, so macro keeps its value
        counts = counts * weights.double()[:, None]
    classes, index = target.unique(return_inverse=True)
    per_class = counts.new_zeros(len(classes), 3).index_add_(0, index, counts)
    p_micro, r_micro = _ratios(counts.sum(0, keepdim=True))
    p_class, r_class = _ratios(per_class)
    return {"hierarchical_precision": p_micro.item(), "hierarchical_recall": r_micro.item(),
            "hierarchical_f1": _f1(p_micro, r_micro).item(),
            "hierarchical_precision_macro": p_class.mean().item(), "hierarchical_recall_macro": r_class.mean().item(),
            "hierarchical_f1_macro": _f1(p_class, r_class).mean().item()}


def _ratios(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hP and hR from rows of (overlap, |predicted|, |true|); an empty predicted set (the root) has hP 1."""
    overlap, n_pred, n_true = counts.unbind(1)
    precision = torch.where(n_pred > 0, overlap / n_pred.clamp(min=1), torch.ones_like(overlap))
    recall = torch.where(n_true > 0, overlap / n_true.clamp(min=1), torch.ones_like(overlap))
    return precision, recall


def _f1(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-12), torch.zeros_like(p))


HEIGHTS = ("lca", "label")


def mistake_height(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors, height: str = "lca") -> torch.Tensor:
    """How far up a mistake reaches: ``lca`` the height of the LCA of prediction and label (its longest way
    down to a leaf, Bertinetto et al. 2020), ``label`` the edges from the label up to the LCA. They agree
    on trees whose leaves are all equally deep and differ on unbalanced ones like plankton taxonomies."""
    lca = tree.lca(pred, target)
    if height == "lca":
        return tree.height[lca]
    if height == "label":
        return tree.depth[target] - tree.depth[lca]
    raise ValueError(f"height must be one of {', '.join(HEIGHTS)}, got {height!r}")


def mistake_severity(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors, height: str = "lca",
                     weights: torch.Tensor | None = None) -> float:
    """Mean :func:`mistake_height` of the top-1 mistakes."""
    wrong = ~is_correct(pred_leaf, target, tree)
    if not wrong.any():
        return 0.0
    return weighted_mean(mistake_height(pred_leaf[wrong], target[wrong], tree, height),
                         None if weights is None else weights[wrong])


def hierarchical_distance_at_k(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, k: int,
                               height: str = "lca", weights: torch.Tensor | None = None) -> float:
    """Mean over the k most probable leaves of :func:`mistake_height` with the target; 0 for a correct leaf.

    For leaf targets this is Bertinetto's average hierarchical distance @k; a leaf under an inner-node
    target is correct and counts 0 (its LCA with the target is the target, of positive height).
    """
    top = top_leaves(probs, tree, k).reshape(-1)
    per_sample = min(k, len(tree.leaves))
    truth = target.repeat_interleave(per_sample)
    heights = torch.where(is_correct(top, truth, tree), 0, mistake_height(top, truth, tree, height))
    return weighted_mean(heights, None if weights is None else weights.repeat_interleave(per_sample))


def per_class_recall(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, tuple[float, int]]:
    """(recall, count) of the top-1 leaf per true class; their mean recall is the balanced accuracy."""
    correct = is_correct(pred_leaf, target, tree).double()
    classes, index = target.unique(return_inverse=True)
    hits = correct.new_zeros(len(classes)).index_add_(0, index, correct)
    counts = torch.bincount(index, minlength=len(classes))
    return {int(c): ((h / n).item(), int(n)) for c, h, n in zip(classes, hits, counts)}


def balanced_accuracy(recall: dict[int, tuple[float, int]]) -> float:
    """Mean recall over the true classes (each class counts once, however rare), from :func:`per_class_recall`."""
    return sum(r for r, _ in recall.values()) / max(len(recall), 1)


def ancestor_at(nodes: torch.Tensor, level: int, tree: TreeTensors) -> torch.Tensor:
    """Each node's ancestor at depth ``level`` (itself at its own depth); -1 for a node shallower than that."""
    return torch.where(tree.depth[nodes] >= level, tree.lineage[nodes, level], -1)


def per_level(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors, confusions: int = 3,
              weights: torch.Tensor | None = None) -> dict[int, dict]:
    """Per depth, over samples whose target is at least that deep: top-1 accuracy (the predicted leaf's
    ancestor there is the target's), the number of true classes there, balanced accuracy over them, and the
    most frequent confusions as (true node, predicted node or -1 for a leaf above the level, count of images)."""
    out = {}
    for level in range(1, int(tree.depth.max()) + 1):
        keep = tree.depth[target] >= level
        if not keep.any():
            continue
        true_at = ancestor_at(target[keep], level, tree)
        pred_at = ancestor_at(pred_leaf[keep], level, tree)
        right = pred_at == true_at
        classes, index = true_at.unique(return_inverse=True)
        recall = right.double().new_zeros(len(classes)).index_add_(0, index, right.double())
        recall /= torch.bincount(index, minlength=len(classes))
        pairs, counts = torch.stack([true_at[~right], pred_at[~right]], 1).unique(dim=0, return_counts=True)
        order = counts.argsort(descending=True, stable=True)[:confusions]
        out[level] = {"n": int(keep.sum()), "classes": len(classes),
                      "accuracy": weighted_mean(right, None if weights is None else weights[keep]),
                      "balanced_accuracy": recall.mean().item(),
                      "confusions": [(int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])) for i in order]}
    return out


# ---- calibration and consistency ----------------------------------------------------------------


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 15,
                               weights: torch.Tensor | None = None) -> float:
    """Sum over equal-width confidence bins of (share of samples) x |mean confidence - fraction correct|."""
    if len(confidence) == 0:
        return 0.0
    weights = torch.ones_like(confidence, dtype=torch.float64) if weights is None else weights.double()
    index = torch.bucketize(confidence.clamp(0, 1), torch.linspace(0, 1, bins + 1, device=confidence.device)[1:-1])
    gap = (torch.bincount(index, weights=confidence.double() * weights, minlength=bins)
           - torch.bincount(index, weights=correct.double() * weights, minlength=bins)).abs()
    return (gap.sum() / weights.sum()).item()


def top_node_per_level(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, tuple]:
    """Per depth, over samples whose target is at least that deep: (confidence, correct, which samples) of the
    most probable node at that depth."""
    out = {}
    for level in range(1, int(tree.depth.max()) + 1):
        nodes = (tree.depth == level).nonzero().squeeze(1)
        keep = tree.depth[target] >= level
        if not keep.any() or len(nodes) == 0:
            continue
        confidence, column = probs[keep][:, nodes].max(dim=1)
        out[level] = (confidence, tree.is_ancestor(nodes[column], target[keep]), keep)
    return out


def calibration_per_level(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors,
                          weights: torch.Tensor | None = None) -> dict[int, float]:
    """ECE of the most probable node at each depth, over samples whose target is at least that deep."""
    return {level: expected_calibration_error(confidence, correct, weights=None if weights is None else weights[keep])
            for level, (confidence, correct, keep) in top_node_per_level(probs, target, tree).items()}


def calibration_error(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors,
                      weights: torch.Tensor | None = None) -> float:
    """ECE of the most probable node of every depth at once: all (sample, level) pairs in the same bins."""
    triples = top_node_per_level(probs, target, tree).values()
    if not triples:
        return 0.0
    confidence, correct = (torch.cat(column) for column in list(zip(*triples))[:2])
    kept = None if weights is None else torch.cat([weights[keep] for _, _, keep in triples])
    return expected_calibration_error(confidence, correct, weights=kept)


def violation_rate(probs: torch.Tensor, parent: torch.Tensor, tolerance: float = 1e-6,
                   weights: torch.Tensor | None = None) -> float:
    """Share of (sample, edge) pairs where a child is more probable than its parent."""
    has_parent = parent >= 0
    child = probs[:, has_parent]
    par = probs[:, parent[has_parent]]
    return weighted_mean((child > par + tolerance).float().mean(1), weights)


# ---- held-out classes -------------------------------------------------------------------------


def unseen_placement(pred: torch.Tensor, known: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """Where samples of classes missing from the taxonomy land; ``known`` is each one's deepest true node.

    ``at_known_ancestor``: the prediction is that node or above it (right, as far as the taxonomy can say);
    ``at_deepest_known``: exactly that node; ``in_wrong_leaf``: any leaf (every leaf is wrong, the true
    class is not in the taxonomy); ``elsewhere``: an inner node off the true path.
    """
    right = tree.is_ancestor(pred, known)
    leaf = torch.zeros(len(tree.depth), dtype=torch.bool, device=pred.device)
    leaf[tree.leaves] = True
    wrong_leaf = leaf[pred] & ~right
    return {"at_known_ancestor": right.float().mean().item(),
            "at_deepest_known": (pred == known).float().mean().item(),
            "in_wrong_leaf": wrong_leaf.float().mean().item(),
            "elsewhere": (~right & ~wrong_leaf).float().mean().item()}


def summary(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """The per-epoch validation figures of ``hier fit``."""
    pred_leaf = top_leaves(probs, tree, 1)[:, 0]
    correct = is_correct(pred_leaf, target, tree)
    return {"leaf_accuracy": correct.float().mean().item(),
            "balanced_accuracy": balanced_accuracy(per_class_recall(pred_leaf, target, tree)),
            "hierarchical_f1": hierarchical_prf(pred_leaf, target, tree)["hierarchical_f1"],
            "mistake_severity": mistake_severity(pred_leaf, target, tree)}
