"""Hierarchical metrics against values worked out by hand on the conftest tree."""

import math

import numpy as np
import pytest
import torch

from hier.metrics import hierarchical as M
from hier.metrics.correctness import top_leaves

ROOT, A, C, A1, A2, X, Y = range(7)  # the node order of the conftest tree
I_A = math.log2(4 / 3)


def rows(*values):
    return torch.tensor(values, dtype=torch.float32)


# Consistent probabilities (each inner node holds the sum of its children).
SURE_OF_A2 = [1, .7, .3, .2, .5, .3, .2]


def test_tree_tensors(tree):
    assert tree.height.tolist() == [3, 2, 0, 0, 1, 0, 0]
    assert tree.information.tolist() == pytest.approx([0, I_A, 2, 2, 1, 2, 2])


# Four samples: (top-1 leaf, target) = (x, x) right, (c, a1) wrong, (y, A) right below an inner target,
# (a1, x) wrong. Leaf columns of the probabilities: c a1 x y (the inner nodes do not matter here).
LEAF_PROBS = [[.1, .1, .6, .2], [.5, .3, .1, .1], [.1, .2, .3, .4], [.15, .4, .35, .1]]
TARGETS = [X, A1, A, X]


@pytest.fixture
def leaf_case(tree):
    probs = torch.zeros(4, 7)
    probs[:, tree.leaves] = torch.tensor(LEAF_PROBS)
    pred = top_leaves(probs, tree, 1)[:, 0]
    assert pred.tolist() == [X, C, Y, A1]
    return probs, pred, torch.tensor(TARGETS)


def test_top_k_accuracy(tree, leaf_case):
    probs, _, target = leaf_case
    assert M.top_k_accuracy(probs, target, tree, 1) == 0.5
    assert M.top_k_accuracy(probs, target, tree, 2) == 1.0  # a1 second for sample 2, x second for sample 4


def test_hierarchical_precision_recall_f1(tree, leaf_case):
    _, pred, target = leaf_case
    # (overlap, |predicted|, |true|), root left out, predicted set cut at the target's depth:
    # (3, 3, 3), (0, 1, 2), (1, 1, 1) [y cut to A], (1, 2, 3)
    out = M.hierarchical_prf(pred, target, tree)
    assert out["hierarchical_precision"] == pytest.approx(5 / 7)
    assert out["hierarchical_recall"] == pytest.approx(5 / 9)
    assert out["hierarchical_f1"] == pytest.approx(0.625)
    # per class: x (4/5, 4/6), a1 (0, 0), A (1, 1)
    f1_x = 2 * 0.8 * (2 / 3) / (0.8 + 2 / 3)
    assert out["hierarchical_precision_macro"] == pytest.approx((0.8 + 0 + 1) / 3)
    assert out["hierarchical_recall_macro"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert out["hierarchical_f1_macro"] == pytest.approx((f1_x + 0 + 1) / 3)


def test_mistake_severity_and_hierarchical_distance(tree, leaf_case):
    probs, pred, target = leaf_case
    # mistakes: lca(c, a1) = root (height 3), lca(a1, x) = A (height 2)
    assert M.mistake_severity(pred, target, tree) == pytest.approx(2.5)
    assert M.hierarchical_distance_at_k(probs, target, tree, 1) == pytest.approx((0 + 3 + 0 + 2) / 4)
    # second leaves: y for x (lca a2, height 1), a1 for a1 (0), x under A (0), x for x (0)
    assert M.hierarchical_distance_at_k(probs, target, tree, 2) == pytest.approx((0 + 1 + 3 + 0 + 0 + 0 + 2 + 0) / 8)
    assert M.mistake_severity(target[:1], target[:1], tree) == 0.0
    # from the label up instead: a1 (depth 2) to the root 2 edges, x (depth 3) to A 2 edges
    assert M.mistake_severity(pred, target, tree, height="label") == pytest.approx(2.0)
    # c for x: the root is 3 high, and x 3 edges below it; x for c: the root still 3 high, c only 1 below
    assert M.mistake_height(torch.tensor([C, X]), torch.tensor([X, C]), tree, "label").tolist() == [3, 1]
    assert M.mistake_height(torch.tensor([C, X]), torch.tensor([X, C]), tree, "lca").tolist() == [3, 3]
    with pytest.raises(ValueError, match="lca, label"):
        M.mistake_severity(pred, target, tree, height="leaf")


def test_per_class_recall_and_per_level(tree, leaf_case):
    _, pred, target = leaf_case
    assert M.per_class_recall(pred, target, tree) == {A: (1.0, 1), A1: (0.0, 1), X: (0.5, 2)}
    levels = M.per_level(pred, target, tree)
    # depth 1: every target is under A; c was predicted once
    assert levels[1] == {"n": 4, "classes": 1, "accuracy": 0.75, "balanced_accuracy": 0.75,
                         "confusions": [(A, C, 1)]}
    # depth 2: targets x, a1, x -> a2, a1, a2; predictions x, c, a1 -> a2, (none: c is shallower), a1
    assert levels[2]["n"] == 3 and levels[2]["classes"] == 2 and levels[2]["accuracy"] == pytest.approx(1 / 3)
    assert levels[2]["balanced_accuracy"] == pytest.approx((0 + 0.5) / 2)
    assert levels[2]["confusions"] == [(A1, -1, 1), (A2, A1, 1)]
    assert levels[3] == {"n": 2, "classes": 1, "accuracy": 0.5, "balanced_accuracy": 0.5, "confusions": [(X, -1, 1)]}


def test_expected_calibration_error():
    confidence, correct = torch.tensor([.95, .95, .65, .25]), torch.tensor([1, 0, 1, 0])
    # bins of 0.1: [.95, .95] |1.9 - 1| / 4, [.65] |.65 - 1| / 4, [.25] |.25 - 0| / 4
    assert M.expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.225 + 0.0875 + 0.0625)


def test_calibration_per_level_and_pooled(tree):
    probs = rows([1, .82, .18, .1, .72, .58, .1], [1, .28, .72, .21, .05, .03, .02])
    target = torch.tensor([X, A1])
    # depth 1: (.82, right) (.72 for c, wrong); depth 2: (.72 a2, right) (.21 a1, right); depth 3: (.58 x, right)
    per_level = M.calibration_per_level(probs, target, tree)
    assert per_level[1] == pytest.approx((0.18 + 0.72) / 2)
    assert per_level[2] == pytest.approx(0.28 / 2 + 0.79 / 2)
    assert per_level[3] == pytest.approx(0.42)
    # pooled, bins of 1/15: .82 alone, .72 with .72, .21 alone, .58 alone
    assert M.calibration_error(probs, target, tree) == pytest.approx((0.18 + abs(1.44 - 1) + 0.79 + 0.42) / 5)


def test_violation_rate(tree):
    probs = rows([1, .5, .5, .6, .1, .05, .05], SURE_OF_A2)  # a1 (.6) above A (.5): 1 of 12 edges
    parent = torch.tensor([-1, 0, 0, 1, 1, 4, 4])
    assert M.violation_rate(probs, parent) == pytest.approx(1 / 12)


def test_unseen_placement(tree):
    pred = torch.tensor([A2, A, X, C, ROOT, A2])
    known = torch.tensor([A2, A2, A2, A2, A2, A1])  # the last: an unseen class under a1, placed at a2
    out = M.unseen_placement(pred, known, tree)
    assert out == pytest.approx({"at_known_ancestor": 3 / 6, "at_deepest_known": 1 / 6, "in_wrong_leaf": 2 / 6,
                                 "elsewhere": 1 / 6})


def test_summary_for_fit(tree, leaf_case):
    probs, _, target = leaf_case
    out = M.summary(probs, target, tree)
    assert out == pytest.approx({"leaf_accuracy": 0.5, "balanced_accuracy": 0.5, "hierarchical_f1": 0.625,
                                 "mistake_severity": 2.5})


def test_hierarchical_precision_counts_a_prediction_deeper_than_a_leaf_label(tree):
    # label c (a leaf at depth 1), prediction x (depth 3): Kiritchenko's hP is 0/3, not 0/1 as a cut
    # at the label's depth would have it; below an inner label (A) the cut stays: y counts as A only
    out = M.hierarchical_prf(torch.tensor([X, Y]), torch.tensor([C, A]), tree)
    assert out["hierarchical_precision"] == pytest.approx((0 + 1) / (3 + 1))
    assert out["hierarchical_recall"] == pytest.approx((0 + 1) / (1 + 1))


@pytest.mark.parametrize("seed", range(20))
def test_hierarchical_prf_agrees_with_hiclass(seed):
    """hiclass.metrics as an oracle, on random trees: labels anywhere, predictions anywhere but below
    an inner-node label (hiclass knows no unknown nodes), sets as root paths without the root."""
    hiclass_metrics = pytest.importorskip("hiclass.metrics")
    from hier.taxo import Taxonomy
    from hier.tree import TreeTensors

    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 60))
    parent = (rng.random(size - 1) * np.arange(1, size)).astype(int)
    taxonomy = Taxonomy([{"id": "n0", "parent": None}] + [{"id": f"n{i + 1}", "parent": f"n{p}"}
                                                          for i, p in enumerate(parent)])
    tree = TreeTensors(taxonomy)
    target = torch.from_numpy(rng.integers(1, size, 40))
    pred = torch.from_numpy(rng.integers(1, size, 40))
    keep = ~tree.is_ancestor(target, pred) | (pred == target)
    target, pred = target[keep], pred[keep]

    def paths(nodes):
        rows = [taxonomy.lineage(int(n))[1:] for n in nodes]
        width = max(map(len, rows))
        return np.array([[taxonomy.ids[i] for i in row] + [""] * (width - len(row)) for row in rows])

    y_true, y_pred = paths(target), paths(pred)
    out = M.hierarchical_prf(pred, target, tree)
    assert out["hierarchical_precision"] == pytest.approx(hiclass_metrics.precision(y_true, y_pred))
    assert out["hierarchical_recall"] == pytest.approx(hiclass_metrics.recall(y_true, y_pred))
    assert out["hierarchical_f1"] == pytest.approx(hiclass_metrics.f1(y_true, y_pred))
