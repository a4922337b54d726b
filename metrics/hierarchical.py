"""Hierarchical metrics over node probabilities [N, num_nodes] and target node indices [N].

Targets may be inner nodes (a label that stops at genus). A prediction is *correct* when it is
the target, an ancestor of it, or — for an inner-node target — a node below it (the label
cannot refute it). Definitions follow Kiritchenko et al. 2005 (hierarchical P/R/F1),
Bertinetto et al. 2020 (mistake severity, hierarchical distance @k) and Valmadre 2022
(operating curve of correct vs information recall). docs/confidence.md states each one.
"""

from __future__ import annotations

import torch

from hier.heads.tree import TreeTensors

DECODE_ROWS = 2048  # rows decoded at a time: the working set stays small and memory flat


def decode(probs: torch.Tensor, threshold: float | torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """The deepest node whose probability is >= threshold; ties in depth go to the higher probability.

    ``threshold`` is a float or a per-sample tensor [N]. The root (probability 1) always qualifies.
    """
    threshold = torch.as_tensor(threshold, dtype=probs.dtype, device=probs.device)
    # 2·depth + p: depth decides (p <= 1 < 2), probability breaks ties; failing nodes drop to -1
    rank = 2 * depth.to(probs.dtype)
    out = torch.empty(len(probs), dtype=torch.long, device=probs.device)
    for start in range(0, len(probs), DECODE_ROWS):
        p = probs[start:start + DECODE_ROWS]
        t = threshold[start:start + DECODE_ROWS, None] if threshold.ndim == 1 else threshold
        key = torch.add(rank, p)
        key.masked_fill_(p < t, -1.0)
        out[start:start + DECODE_ROWS] = key.max(dim=1).indices  # the first maximum, as argmax; faster on CPU
    return out


def top_leaves(probs: torch.Tensor, tree: TreeTensors, k: int = 1) -> torch.Tensor:
    """Node indices of the k most probable leaves [N, k]."""
    k = min(k, len(tree.leaves))
    return tree.leaves[probs[:, tree.leaves].topk(k, dim=1).indices]


def is_correct(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """Prediction on the target's path: the target, an ancestor, or a node below an inner-node target."""
    return tree.ancestors[target, pred] | tree.ancestors[pred, target]


def information_recall(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """I(lca(pred, true)) / I(true), per sample; 1 when the target is the root."""
    info_true = tree.information[target]
    info_lca = tree.information[tree.lca(pred, target)]
    return torch.where(info_true > 0, info_lca / info_true.clamp(min=1e-12), torch.ones_like(info_true))


# ---- leaf (top-1) metrics ----------------------------------------------------------------------


def top_k_accuracy(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, k: int) -> float:
    """Share of samples with a correct leaf among the k most probable (under an inner-node target counts)."""
    top = top_leaves(probs, tree, k)
    return is_correct(top, target[:, None].expand_as(top), tree).any(dim=1).float().mean().item()


def hierarchical_prf(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """Kiritchenko's hP, hR, hF over ancestor sets without the root; micro and macro.

    Micro pools the set sizes over all samples. Macro pools them within each true class, then averages
    the classes' hP, hR and hF (each class counts once, however rare). The predicted set is cut at the
    target's depth: below an inner-node target the label says nothing.
    """
    root_free = tree.depth > 0
    pred_set = tree.ancestors[pred] & root_free & (tree.depth[None, :] <= tree.depth[target][:, None])
    true_set = tree.ancestors[target] & root_free
    counts = torch.stack([(pred_set & true_set).sum(1), pred_set.sum(1), true_set.sum(1)], 1).double()
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


def mistake_severity(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> float:
    """Mean height of the lowest common ancestor of prediction and target, over top-1 mistakes."""
    wrong = ~is_correct(pred_leaf, target, tree)
    if not wrong.any():
        return 0.0
    return tree.height[tree.lca(pred_leaf[wrong], target[wrong])].float().mean().item()


def hierarchical_distance_at_k(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, k: int) -> float:
    """Mean over the k most probable leaves of the LCA height with the target; 0 for a correct leaf.

    For leaf targets this is Bertinetto's average hierarchical distance @k; a leaf under an inner-node
    target is correct and counts 0 (its LCA with the target is the target, of positive height).
    """
    top = top_leaves(probs, tree, k).reshape(-1)
    truth = target.repeat_interleave(min(k, len(tree.leaves)))
    heights = torch.where(is_correct(top, truth, tree), 0, tree.height[tree.lca(top, truth)])
    return heights.float().mean().item()


def per_class_recall(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, tuple[float, int]]:
    """(recall, count) of the top-1 leaf per true class; their mean recall is the balanced accuracy."""
    correct = is_correct(pred_leaf, target, tree).double()
    classes, index = target.unique(return_inverse=True)
    hits = correct.new_zeros(len(classes)).index_add_(0, index, correct)
    counts = torch.bincount(index, minlength=len(classes))
    return {int(c): ((h / n).item(), int(n)) for c, h, n in zip(classes, hits, counts)}


def ancestor_at(nodes: torch.Tensor, level: int, tree: TreeTensors) -> torch.Tensor:
    """Each node's ancestor at depth ``level`` (itself at its own depth); -1 for a node shallower than that."""
    at_level = tree.ancestors[nodes] & (tree.depth == level)
    return torch.where(at_level.any(1), at_level.float().argmax(1), -1)


def per_level(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors, confusions: int = 3) -> dict[int, dict]:
    """Per depth, over samples whose target is at least that deep: top-1 accuracy (the predicted leaf's
    ancestor there is the target's), the number of true classes there, balanced accuracy over them, and the
    most frequent confusions as (true node, predicted node or -1 for a leaf above the level, count)."""
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
        out[level] = {"n": int(keep.sum()), "classes": len(classes), "accuracy": right.float().mean().item(),
                      "balanced_accuracy": recall.mean().item(),
                      "confusions": [(int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])) for i in order]}
    return out


# ---- decoding at a confidence, and the operating curve ------------------------------------------


def at_confidence(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, threshold) -> dict[str, float]:
    pred = decode(probs, threshold, tree.depth)
    return {"correct": is_correct(pred, target, tree).float().mean().item(),
            "mean_depth": tree.depth[pred].float().mean().item(),
            "information_recall": information_recall(pred, target, tree).mean().item()}


def decode_intervals(probs: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """For each sample, every node :func:`decode` returns for some threshold, with that threshold range.

    Returns (row, node, low, high): ``decode(probs, t)[row] == node`` exactly for ``low < t <= high``.
    A node is decoded while it qualifies (t <= its probability) and no node ranked above it (deeper,
    or as deep and more probable) does (t > the largest probability among those).
    """
    rank = 2 * depth.to(probs.dtype)
    parts = []
    for start in range(0, len(probs), DECODE_ROWS):
        p = probs[start:start + DECODE_ROWS]
        order = torch.add(rank, p).argsort(dim=1, descending=True, stable=True)  # decode's preference order
        ranked = p.gather(1, order)
        beaten_below = torch.cat([ranked.new_zeros(len(p), 1), ranked.cummax(dim=1).values[:, :-1]], 1)
        rows, cols = (ranked > beaten_below).nonzero(as_tuple=True)
        parts.append((rows + start, order[rows, cols], beaten_below[rows, cols], ranked[rows, cols]))
    return tuple(torch.cat(column) for column in zip(*parts))


def _sum_over_intervals(low: torch.Tensor, high: torch.Tensor, values: torch.Tensor,
                        thresholds: torch.Tensor) -> torch.Tensor:
    """For each threshold t, the sum of ``values`` rows whose interval (low, high] holds t.

    sum over {low < t <= high} = sum over {high >= t} - sum over {low >= t}, since low >= t implies high > t.
    """
    def at_or_above(edges: torch.Tensor) -> torch.Tensor:
        order = edges.argsort()
        tail = torch.cat([values[order].flip(0).cumsum(0).flip(0), values.new_zeros(1, values.shape[1])])
        return tail[torch.searchsorted(edges[order].contiguous(), thresholds, right=False)]

    return at_or_above(high) - at_or_above(low)


def operating_curve(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors,
                    thresholds: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Fraction correct, mean information recall and mean depth of the decoded nodes, per threshold.

    Exact, not sampled: without ``thresholds`` the curve has a point at every threshold where some
    sample's decoded node changes (all the curve's corners), in increasing threshold order.
    """
    row, node, low, high = decode_intervals(probs, tree.depth)
    truth = target[row]
    values = torch.stack([is_correct(node, truth, tree).double(), information_recall(node, truth, tree).double(),
                          tree.depth[node].double()], 1)
    if thresholds is None:
        thresholds = high.unique()
    thresholds = torch.as_tensor(thresholds, dtype=probs.dtype, device=probs.device)
    sums = _sum_over_intervals(low, high, values, thresholds) / len(target)
    return {"threshold": thresholds.tolist(), "correct": sums[:, 0].tolist(),
            "information_recall": sums[:, 1].tolist(), "mean_depth": sums[:, 2].tolist()}


def curve_area(curve: dict[str, list[float]]) -> float:
    """Area under the curve's upper envelope: at each information recall x, the best fraction correct
    among thresholds whose recall is at least x, integrated from 0 to the largest recall.

    The envelope is what a user can reach by choosing the threshold; it is a step function, so the
    area is exact, and it is the inverse of :func:`recall_at_correct`. A perfect model scores 1.
    """
    recall = torch.tensor(curve["information_recall"], dtype=torch.float64)
    correct = torch.tensor(curve["correct"], dtype=torch.float64)
    order = recall.argsort(descending=True)
    recall, best = recall[order], correct[order].cummax(0).values
    widths = recall - torch.cat([recall[1:], recall.new_zeros(1)])
    return (best * widths).sum().item()


def recall_at_correct(curve: dict[str, list[float]], level: float) -> float:
    """The best information recall among thresholds whose fraction correct is at least ``level``."""
    ok = [r for r, c in zip(curve["information_recall"], curve["correct"]) if c >= level]
    return max(ok) if ok else 0.0


# ---- calibration and consistency ----------------------------------------------------------------


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 15) -> float:
    """Sum over equal-width confidence bins of (share of samples) x |mean confidence - fraction correct|."""
    if len(confidence) == 0:
        return 0.0
    index = torch.bucketize(confidence.clamp(0, 1), torch.linspace(0, 1, bins + 1, device=confidence.device)[1:-1])
    count = torch.bincount(index, minlength=bins).double()
    gap = (torch.bincount(index, weights=confidence.double(), minlength=bins)
           - torch.bincount(index, weights=correct.double(), minlength=bins)).abs()
    return (gap.sum() / count.sum()).item()


def top_node_per_level(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, tuple]:
    """Per depth, over samples whose target is at least that deep: (confidence, correct) of the most
    probable node at that depth."""
    out = {}
    for level in range(1, int(tree.depth.max()) + 1):
        nodes = (tree.depth == level).nonzero().squeeze(1)
        keep = tree.depth[target] >= level
        if not keep.any() or len(nodes) == 0:
            continue
        confidence, column = probs[keep][:, nodes].max(dim=1)
        out[level] = (confidence, tree.ancestors[target[keep], nodes[column]])
    return out


def calibration_per_level(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, float]:
    """ECE of the most probable node at each depth, over samples whose target is at least that deep."""
    return {level: expected_calibration_error(confidence, correct)
            for level, (confidence, correct) in top_node_per_level(probs, target, tree).items()}


def calibration_error(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> float:
    """ECE of the most probable node of every depth at once: all (sample, level) pairs in the same bins."""
    pairs = top_node_per_level(probs, target, tree).values()
    if not pairs:
        return 0.0
    confidence, correct = (torch.cat(column) for column in zip(*pairs))
    return expected_calibration_error(confidence, correct)


def violation_rate(probs: torch.Tensor, parent: torch.Tensor, tolerance: float = 1e-6) -> float:
    """Share of (sample, edge) pairs where a child is more probable than its parent."""
    has_parent = parent >= 0
    child = probs[:, has_parent]
    par = probs[:, parent[has_parent]]
    return (child > par + tolerance).float().mean().item()


# ---- held-out classes -------------------------------------------------------------------------


def unseen_placement(pred: torch.Tensor, known: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """Where samples of classes missing from the taxonomy land; ``known`` is each one's deepest true node.

    ``at_known_ancestor``: the prediction is that node or above it (right, as far as the taxonomy can say);
    ``at_deepest_known``: exactly that node; ``in_wrong_leaf``: any leaf (every leaf is wrong, the true
    class is not in the taxonomy); ``elsewhere``: an inner node off the true path.
    """
    right = tree.ancestors[known, pred]
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
    recall = per_class_recall(pred_leaf, target, tree)
    return {"leaf_accuracy": correct.float().mean().item(),
            "balanced_accuracy": sum(r for r, _ in recall.values()) / max(len(recall), 1),
            "hierarchical_f1": hierarchical_prf(pred_leaf, target, tree)["hierarchical_f1"],
            "mistake_severity": mistake_severity(pred_leaf, target, tree)}
