"""The per-class promise of ``hier calibrate --per-class``: a threshold that keeps a confidence level for every
class on its own, so that any mix of the classes keeps it (a new cruise, another season).

Mondrian (label-conditional) split conformal calibration, Vovk, Gammerman and Shafer, *Algorithmic Learning in
a Random World* (2005), ch. 4; classes too rare to certify alone are pooled with their relatives as in clustered
conformal prediction (Ding et al. 2023, "Class-conditional conformal prediction with many classes"), the
taxonomy giving the clusters. docs/confidence.md states the guarantee and its assumption.

Each calibration image gets a score w: the highest threshold at which its answer is wrong (0 when it is never
wrong). The answer at threshold t counts as right when t > w, so an image counts only where every higher
threshold answers it right too. For a group of n images and a level c, the threshold just above the
k-th smallest w, k = ceil((n + 1) c), answers a new image of the group right with probability at least c
(the conformal quantile); that needs n >= c / (1 - c) images (9 for 0.9, 19 for 0.95, 99 for 0.99). The
table's threshold is the highest over the groups: every group keeps the level.
"""

from __future__ import annotations

import math

import torch

from hier.metrics.correctness import is_correct
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

from .answer import decode_intervals, preference

GRID = 1000  # thresholds are multiples of 1/GRID, as in the marginal table


def wrong_until(probs: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, rule: str = "deepest") -> torch.Tensor:
    """Per image, the highest threshold at which its answer is wrong; 0 when no threshold answers it wrong."""
    row, node, _, high = decode_intervals(probs, tree.depth, preference(tree, rule))
    wrong = ~is_correct(node, targets[row], tree)
    score = torch.zeros(len(targets), dtype=torch.float64)
    return score.scatter_reduce_(0, row[wrong], high[wrong].double(), "amax")


def images_needed(level: float) -> int:
    """The fewest images a group needs for the conformal quantile at ``level`` to exist: ceil((n+1) c) <= n."""
    n = max(1, math.ceil(level / (1 - level) - 1e-9))
    while math.ceil((n + 1) * level - 1e-9) > n:
        n += 1
    return n


def class_groups(taxonomy: Taxonomy, targets: torch.Tensor,
                 needed: int) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """The groups of classes certified together, as (node, classes), and the classes left uncertified.

    A class (a label node) with ``needed`` images or more is a group of its own. The others are pooled up the
    tree: at each node, the classes below it not yet in a group (and the node's own label, if too rare alone)
    form a group named by the node once they hold ``needed`` images; what the root cannot group is uncertified,
    and so is every leaf or label of the taxonomy without calibration images.
    """
    counts = torch.bincount(targets, minlength=len(taxonomy)).tolist()
    groups = [(c, [c]) for c in range(len(taxonomy)) if counts[c] >= needed]
    pending: list[list[int]] = [[c] if 0 < counts[c] < needed else [] for c in range(len(taxonomy))]
    for node in reversed(taxonomy.breadth_first.tolist()):  # children before their parent; the root last
        pool = pending[node]
        if sum(counts[c] for c in pool) >= needed:
            groups.append((node, sorted(pool)))
            pool = []
        if node == taxonomy.root:
            unseen = [c for c in range(len(taxonomy))
                      if counts[c] == 0 and (taxonomy.is_leaf(c) or taxonomy.is_label(c))]
            return groups, sorted(pool + unseen)
        pending[int(taxonomy.parent[node])].extend(pool)
    raise AssertionError("unreachable: the root ends the loop")


def group_threshold(scores: torch.Tensor, level: float) -> float | None:
    """The lowest grid threshold above the conformal quantile of ``scores``; None above 1 (some image is
    wrong even at threshold 1: a node other than the root had probability 1)."""
    k = math.ceil((len(scores) + 1) * level - 1e-9)
    quantile = scores.sort().values[k - 1].item()
    threshold = (math.floor(quantile * GRID + 1e-9) + 1) / GRID
    return threshold if threshold <= 1 else None


def class_conditional_entries(probs: torch.Tensor, targets: torch.Tensor, taxonomy: Taxonomy, levels, *,
                              rule: str = "deepest") -> list[dict]:
    """Per level: the threshold every group keeps (None when some group cannot be certified), the groups
    with their own thresholds and sizes, and the classes no group covers; names as the taxonomy's ids."""
    scores = wrong_until(probs, targets, TreeTensors(taxonomy), rule)
    ids = taxonomy.ids
    entries = []
    for level in levels:
        groups, uncertified = class_groups(taxonomy, targets, images_needed(level))
        described = []
        for node, classes in groups:
            members = torch.isin(targets, torch.tensor(classes))
            described.append({"node": ids[node], "classes": [ids[c] for c in classes], "n": int(members.sum()),
                              "threshold": group_threshold(scores[members], level)})
        thresholds = [g["threshold"] for g in described]
        entries.append({"level": level, "threshold": None if None in thresholds or not thresholds else max(thresholds),
                        "groups": described, "uncertified": [ids[c] for c in uncertified]})
    return entries
