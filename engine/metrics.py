"""Hierarchical metrics over node probabilities [N, num_nodes] and target node indices [N].

Targets may be inner nodes (a label that stops at genus). A prediction is *correct* when it is
the target, an ancestor of it, or — for an inner-node target — a node below it (the label
cannot refute it). Definitions follow Kiritchenko et al. 2005 (hierarchical P/R/F1),
Bertinetto et al. 2020 (mistake severity, hierarchical distance @k) and Valmadre 2022
(operating curve of correct vs information recall).
"""

from __future__ import annotations

import torch

from .hierarchy import TreeTensors


def decode(probs: torch.Tensor, threshold: float | torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """The deepest node whose probability is >= threshold; ties in depth go to the higher probability.

    ``threshold`` is a float or a per-sample tensor [N]. The root (probability 1) always qualifies.
    """
    threshold = torch.as_tensor(threshold, dtype=probs.dtype, device=probs.device)
    if threshold.ndim == 1:
        threshold = threshold[:, None]
    score = depth.to(probs.dtype) + 0.5 * probs  # depth decides, probability breaks ties
    return torch.where(probs >= threshold, score, torch.full_like(score, -1.0)).argmax(dim=1)


def top_leaves(probs: torch.Tensor, tree: TreeTensors, k: int = 1) -> torch.Tensor:
    """Node indices of the k most probable leaves [N, k]."""
    k = min(k, len(tree.leaves))
    return tree.leaves[probs[:, tree.leaves].topk(k, dim=1).indices]


def is_correct(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """Prediction on the target's path: the target, an ancestor, or a node below an inner-node target."""
    return tree.ancestors[target, pred] | tree.ancestors[pred, target]


def hierarchical_prf(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """Kiritchenko's hP, hR, hF over ancestor sets without the root; micro (pooled) and macro (per true class).

    The predicted set is cut at the target's depth: below an inner-node target the label says nothing.
    """
    root_free = tree.depth > 0
    pred_set = tree.ancestors[pred] & root_free & (tree.depth[None, :] <= tree.depth[target][:, None])
    true_set = tree.ancestors[target] & root_free
    overlap = (pred_set & true_set).sum(1).float()
    n_pred, n_true = pred_set.sum(1).float(), true_set.sum(1).float()
    hp = overlap.sum() / n_pred.sum().clamp(min=1)
    hr = overlap.sum() / n_true.sum().clamp(min=1)
    out = {"hierarchical_precision": hp.item(), "hierarchical_recall": hr.item(),
           "hierarchical_f1": _f1(hp, hr)}
    per_sample_p = torch.where(n_pred > 0, overlap / n_pred.clamp(min=1), torch.ones_like(overlap))
    per_sample_r = torch.where(n_true > 0, overlap / n_true.clamp(min=1), torch.ones_like(overlap))
    classes = target.unique()
    mp = torch.stack([per_sample_p[target == c].mean() for c in classes]).mean()
    mr = torch.stack([per_sample_r[target == c].mean() for c in classes]).mean()
    out["hierarchical_f1_macro"] = _f1(mp, mr)
    return out


def _f1(p: torch.Tensor, r: torch.Tensor) -> float:
    return (2 * p * r / (p + r)).item() if (p + r) > 0 else 0.0


def mistake_severity(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> float:
    """Mean height of the lowest common ancestor of prediction and target, over top-1 mistakes."""
    wrong = ~is_correct(pred_leaf, target, tree)
    if not wrong.any():
        return 0.0
    return tree.height[tree.lca(pred_leaf[wrong], target[wrong])].float().mean().item()


def hierarchical_distance_at_k(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, k: int) -> float:
    """Mean LCA height between the target and each of the k most probable leaves."""
    top = top_leaves(probs, tree, k)
    heights = tree.height[tree.lca(top.reshape(-1), target.repeat_interleave(top.shape[1]))]
    return heights.float().mean().item()


def information_recall(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """I(lca(pred, true)) / I(true), per sample; 1 when the target is the root."""
    info_true = tree.information[target]
    info_lca = tree.information[tree.lca(pred, target)]
    return torch.where(info_true > 0, info_lca / info_true.clamp(min=1e-12), torch.ones_like(info_true))


def at_confidence(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, threshold) -> dict[str, float]:
    pred = decode(probs, threshold, tree.depth)
    return {"correct": is_correct(pred, target, tree).float().mean().item(),
            "mean_depth": tree.depth[pred].float().mean().item(),
            "information_recall": information_recall(pred, target, tree).mean().item()}


def operating_curve(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors,
                    thresholds: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Fraction correct and mean information recall as the threshold sweeps (0, 1]."""
    if thresholds is None:
        thresholds = torch.linspace(0.01, 1.0, 100)
    correct, recall = [], []
    for t in thresholds.tolist():
        pred = decode(probs, t, tree.depth)
        correct.append(is_correct(pred, target, tree).float().mean().item())
        recall.append(information_recall(pred, target, tree).mean().item())
    return {"threshold": thresholds.tolist(), "correct": correct, "information_recall": recall}


def curve_area(curve: dict[str, list[float]]) -> float:
    """Area under correct-vs-information-recall, from recall 0 (answer the root: correct 1) to the largest."""
    points = sorted(zip(curve["information_recall"], curve["correct"]))
    points = [(0.0, 1.0)] + points
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))


def recall_at_correct(curve: dict[str, list[float]], level: float) -> float:
    """The best information recall among thresholds whose fraction correct is at least ``level``."""
    ok = [r for r, c in zip(curve["information_recall"], curve["correct"]) if c >= level]
    return max(ok) if ok else 0.0


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 15) -> float:
    edges = torch.linspace(0, 1, bins + 1)
    index = torch.bucketize(confidence.clamp(0, 1), edges[1:-1])
    ece = torch.zeros(())
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            ece += in_bin.float().mean() * (confidence[in_bin].mean() - correct[in_bin].float().mean()).abs()
    return ece.item()


def calibration_per_level(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, float]:
    """ECE of the most probable node at each depth, over samples whose target is at least that deep."""
    out = {}
    for level in range(1, int(tree.depth.max()) + 1):
        nodes = (tree.depth == level).nonzero().squeeze(1)
        keep = tree.depth[target] >= level
        if not keep.any() or len(nodes) == 0:
            continue
        p = probs[keep][:, nodes]
        confidence, column = p.max(dim=1)
        correct = tree.ancestors[target[keep], nodes[column]]
        out[level] = expected_calibration_error(confidence, correct)
    return out


def violation_rate(probs: torch.Tensor, parent: torch.Tensor, tolerance: float = 1e-6) -> float:
    """Share of (sample, edge) pairs where a child is more probable than its parent."""
    has_parent = parent >= 0
    child = probs[:, has_parent]
    par = probs[:, parent[has_parent]]
    return (child > par + tolerance).float().mean().item()


def per_class_recall(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, float]:
    correct = is_correct(pred_leaf, target, tree)
    return {int(c): correct[target == c].float().mean().item() for c in target.unique()}


def per_level_accuracy(pred_leaf: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[int, float]:
    """Top-1 accuracy at each depth: the predicted leaf's ancestor at that depth is the target's."""
    out = {}
    for level in range(1, int(tree.depth.max()) + 1):
        keep = tree.depth[target] >= level
        if not keep.any():
            continue
        nodes_at = tree.depth == level
        true_at = (tree.ancestors[target[keep]] & nodes_at).float().argmax(1)
        pred_at = tree.ancestors[pred_leaf[keep]] & nodes_at
        out[level] = pred_at[torch.arange(len(true_at)), true_at].float().mean().item()
    return out


def summary(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> dict[str, float]:
    """The per-epoch validation figures of ``hier fit``."""
    pred_leaf = top_leaves(probs, tree, 1)[:, 0]
    correct = is_correct(pred_leaf, target, tree)
    recall = per_class_recall(pred_leaf, target, tree)
    return {"leaf_accuracy": correct.float().mean().item(),
            "balanced_accuracy": sum(recall.values()) / max(len(recall), 1),
            **{k: v for k, v in hierarchical_prf(pred_leaf, target, tree).items() if k == "hierarchical_f1"},
            "mistake_severity": mistake_severity(pred_leaf, target, tree)}
