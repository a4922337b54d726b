"""Whether an answer is right, and how much it tells: over node indices, for any answer rule.

An answer is *correct* when it is the target, an ancestor of it, or, for an inner-node target (a label
that stops at genus), a node below it: the label cannot refute it.
"""

from __future__ import annotations

import torch

from hier.tree import TreeTensors


def top_leaves(probs: torch.Tensor, tree: TreeTensors, k: int = 1) -> torch.Tensor:
    """Node indices of the k most probable leaves [N, k]."""
    k = min(k, len(tree.leaves))
    return tree.leaves[probs[:, tree.leaves].topk(k, dim=1).indices]


def is_correct(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """Prediction on the target's path: the target, an ancestor, or a node below an inner-node target."""
    return tree.is_ancestor(pred, target) | tree.is_ancestor(target, pred)


def information_recall(pred: torch.Tensor, target: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """I(lca(pred, true)) / I(true), per sample; 1 when the target is the root."""
    info_true = tree.information[target]
    info_lca = tree.information[tree.lca(pred, target)]
    return torch.where(info_true > 0, info_lca / info_true.clamp(min=1e-12), torch.ones_like(info_true))
