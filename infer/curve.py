"""The operating curve (Valmadre 2022): fraction correct against information recall of the answers, over
every threshold of the answer rule, computed exactly from the thresholds where some answer changes."""

from __future__ import annotations

import torch

from hier.metrics.correctness import information_recall, is_correct
from hier.metrics.hierarchical import weighted_mean
from hier.tree import TreeTensors

from .answer import decode, decode_intervals, preference


def at_confidence(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, threshold,
                  rule: str = "deepest", weights: torch.Tensor | None = None) -> dict[str, float]:
    """Fraction correct, mean depth and mean information recall of the answers at ``threshold`` (``weights``:
    one per sample, for a test set scored as if it had another class mix)."""
    pred = decode(probs, threshold, tree.depth, preference(tree, rule))
    return {"correct": weighted_mean(is_correct(pred, target, tree), weights),
            "mean_depth": weighted_mean(tree.depth[pred], weights),
            "information_recall": weighted_mean(information_recall(pred, target, tree), weights)}


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
                    thresholds: torch.Tensor | None = None, rule: str = "deepest",
                    weights: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Fraction correct, mean information recall and mean depth of the decoded nodes, per threshold.

    Exact, not sampled: without ``thresholds`` the curve has a point at every threshold where some
    sample's decoded node changes (all the curve's corners), in increasing threshold order. ``rule``:
    the decoder's (see :func:`preference`); ``weights``: one per sample, as in :func:`at_confidence`.
    """
    row, node, low, high = decode_intervals(probs, tree.depth, preference(tree, rule))
    truth = target[row]
    values = torch.stack([is_correct(node, truth, tree).double(), information_recall(node, truth, tree).double(),
                          tree.depth[node].double()], 1)
    if weights is not None:
        values = values * weights.double()[row, None]
    if thresholds is None:
        thresholds = high.unique()
    thresholds = torch.as_tensor(thresholds, dtype=probs.dtype, device=probs.device)
    total = len(target) if weights is None else weights.double().sum()
    sums = _sum_over_intervals(low, high, values, thresholds) / total
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
