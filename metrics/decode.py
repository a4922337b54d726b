"""The confidence decoder and the operating curve, over node probabilities [N, num_nodes].

The decoder answers the deepest node whose probability is at least a threshold. Targets may be inner
nodes (a label that stops at genus). An answer is *correct* when it is the target, an ancestor of
it, or — for an inner-node target — a node below it (the label cannot refute it). The operating
curve (Valmadre 2022) is the fraction correct against the information recall of the answers, over
every threshold. docs/confidence.md states each one.
"""

from __future__ import annotations

import torch

from hier.heads.tree import TreeTensors

DECODE_ENTRIES = 2048 * 1024  # probabilities decoded at a time: the working set stays small and memory flat


def _chunks(probs: torch.Tensor) -> range:
    """Start rows of the chunks of about DECODE_ENTRIES probabilities each (fewer rows for a larger tree)."""
    return range(0, len(probs), max(1, DECODE_ENTRIES // max(1, probs.shape[1])))


RULES = ("deepest", "informative")


def preference(tree: TreeTensors, rule: str = "deepest") -> torch.Tensor:
    """The rank of each node for the decoder, higher preferred (integers; the root alone is lowest).

    ``deepest``: the depth. ``informative`` (Valmadre 2022): the information log(#leaves / #leaves under
    the node), which differs from depth on unbalanced trees; equally informative nodes by depth.
    """
    if rule == "deepest":
        return tree.depth
    if rule != "informative":
        raise ValueError(f"decoding rule must be one of {', '.join(RULES)}, got {rule!r}")
    order = tree.depth.argsort(stable=True)
    order = order[tree.information[order].argsort(stable=True)]  # by information, then depth
    info, depth = tree.information[order], tree.depth[order]
    new = torch.ones_like(depth, dtype=torch.bool)
    new[1:] = (info[1:] != info[:-1]) | (depth[1:] != depth[:-1])
    return torch.empty_like(depth).scatter_(0, order, new.cumsum(0) - 1)


def decode(probs: torch.Tensor, threshold: float | torch.Tensor, depth: torch.Tensor,
           rank: torch.Tensor | None = None) -> torch.Tensor:
    """The deepest node (the highest ``rank``, see :func:`preference`) whose probability is >= threshold;
    ties go to the higher probability.

    ``threshold`` is a float or a per-sample tensor [N]. The root (depth 0) answers when no other node
    qualifies, whatever probability a head gives it.
    """
    threshold = torch.as_tensor(threshold, dtype=probs.dtype, device=probs.device)
    # 2·rank + p: the rank decides (p <= 1 < 2), probability breaks ties; failing nodes drop to -1,
    # the root to no less than -0.5: below any node that qualifies, above every one that does not
    base = 2 * (depth if rank is None else rank).to(probs.dtype)
    root = int(depth.argmin())
    out = torch.empty(len(probs), dtype=torch.long, device=probs.device)
    chunks = _chunks(probs)
    # one working buffer for all chunks: a fresh one each time costs page faults on CPU
    keys = probs.new_empty(min(chunks.step, len(probs)), probs.shape[1])
    failing = torch.empty(keys.shape, dtype=torch.bool, device=probs.device)
    for start in chunks:
        p = probs[start:start + chunks.step]
        t = threshold[start:start + chunks.step, None] if threshold.ndim == 1 else threshold
        key, fails = torch.add(base, p, out=keys[:len(p)]), torch.lt(p, t, out=failing[:len(p)])
        key.masked_fill_(fails, -1.0)
        key[:, root].clamp_(min=-0.5)
        out[start:start + chunks.step] = key.max(dim=1).indices  # the first maximum, as argmax; faster on CPU
    return out


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


def at_confidence(probs: torch.Tensor, target: torch.Tensor, tree: TreeTensors, threshold,
                  rule: str = "deepest") -> dict[str, float]:
    pred = decode(probs, threshold, tree.depth, preference(tree, rule))
    return {"correct": is_correct(pred, target, tree).float().mean().item(),
            "mean_depth": tree.depth[pred].float().mean().item(),
            "information_recall": information_recall(pred, target, tree).mean().item()}


def decode_intervals(probs: torch.Tensor, depth: torch.Tensor,
                     rank: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """For each sample, every node :func:`decode` returns for some threshold, with that threshold range.

    Returns (row, node, low, high): ``decode(probs, t)[row] == node`` exactly for ``low < t <= high``.
    A node is decoded while it qualifies (t <= its probability) and no node ranked above it (deeper,
    or as deep and more probable) does (t > the largest probability among those). Thresholds run up
    to 1, where the root answers whatever its probability.
    """
    base = 2 * (depth if rank is None else rank).to(probs.dtype)
    root = depth.argmin().reshape(1)
    parts = []
    chunks = _chunks(probs)
    for start in chunks:
        p = probs[start:start + chunks.step].index_fill(1, root, 1.0)
        order = torch.add(base, p).argsort(dim=1, descending=True, stable=True)  # decode's preference order
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
                    thresholds: torch.Tensor | None = None, rule: str = "deepest") -> dict[str, list[float]]:
    """Fraction correct, mean information recall and mean depth of the decoded nodes, per threshold.

    Exact, not sampled: without ``thresholds`` the curve has a point at every threshold where some
    sample's decoded node changes (all the curve's corners), in increasing threshold order. ``rule``:
    the decoder's (see :func:`preference`).
    """
    row, node, low, high = decode_intervals(probs, tree.depth, preference(tree, rule))
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
