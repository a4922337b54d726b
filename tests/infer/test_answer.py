"""The answer rule's decoder, the correctness of its answers and its operating curve, against values worked out by hand on the small tree (tests/conftest.py)."""

import math

import pytest
import torch

from hier.infer import answer
from hier.infer import curve as curves
from hier.metrics import correctness
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

ROOT, A, C, A1, A2, X, Y = range(7)  # the node order of the conftest tree
I_A = math.log2(4 / 3)


def rows(*values):
    return torch.tensor(values, dtype=torch.float32)


# Consistent probabilities (each inner node holds the sum of its children).
SURE_OF_A2 = [1, .7, .3, .2, .5, .3, .2]
TIE_AT_DEPTH_1 = [1, .45, .55, .3, .15, .1, .05]


def test_decode_takes_the_deepest_node_at_or_above_the_threshold(tree):
    probs = rows(SURE_OF_A2)
    decoded = [answer.decode(probs, t, tree.depth).item() for t in (1.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)]
    assert decoded == [ROOT, A, A, A2, A2, X, X]  # at 0.2, x (0.3) and y (0.2) tie in depth: x is more probable


def test_decode_breaks_depth_ties_by_probability_and_takes_per_sample_thresholds(tree):
    probs = rows(SURE_OF_A2, TIE_AT_DEPTH_1)
    assert answer.decode(probs, 0.4, tree.depth).tolist() == [A2, C]  # A (0.45) and c (0.55) both qualify: c
    assert answer.decode(probs, torch.tensor([0.6, 0.3]), tree.depth).tolist() == [A, A1]
    assert answer.decode(probs, torch.tensor([0.3, 0.6]), tree.depth).tolist() == [X, ROOT]


def test_decode_in_chunks_matches_one_pass(tree, monkeypatch):
    probs = torch.rand(50, 7)
    thresholds = torch.rand(50)
    whole = answer.decode(probs, thresholds, tree.depth)
    monkeypatch.setattr(answer, "DECODE_ENTRIES", 7 * 7)  # chunks of 7 rows
    assert torch.equal(answer.decode(probs, thresholds, tree.depth), whole)


def test_decode_intervals(tree):
    row, node, low, high = answer.decode_intervals(rows(SURE_OF_A2), tree.depth)
    assert row.tolist() == [0, 0, 0, 0]
    assert node.tolist() == [X, A2, A, ROOT]
    assert low.tolist() == pytest.approx([0, .3, .5, .7])
    assert high.tolist() == pytest.approx([.3, .5, .7, 1])


def test_correct_and_information_recall(tree):
    pred, target = torch.tensor([A, C, X, A2, ROOT]), torch.tensor([X, X, A2, X, ROOT])
    assert correctness.is_correct(pred, target, tree).tolist() == [True, False, True, True, True]  # x is below target a2
    assert correctness.information_recall(pred, target, tree).tolist() == pytest.approx([I_A / 2, 0, 1, 0.5, 1])


def test_operating_curve_by_hand(tree):
    # sample 1 (target x): x on (0, .3], a2 on (.3, .5], A on (.5, .7], root above
    # sample 2 (target a1): x on (0, .1], a1 on (.1, .3], c on (.3, .55], root above
    probs, target = rows(SURE_OF_A2, TIE_AT_DEPTH_1), torch.tensor([X, A1])
    curve = curves.operating_curve(probs, target, tree)
    assert curve["threshold"] == pytest.approx([.1, .3, .5, .55, .7, 1])
    assert curve["correct"] == pytest.approx([.5, 1, .5, .5, 1, 1])
    assert curve["information_recall"] == pytest.approx([(1 + I_A / 2) / 2, 1, .25, I_A / 4, I_A / 4, 0])
    assert curve["mean_depth"] == pytest.approx([3, 2.5, 1.5, 1, .5, 0])
    assert curves.recall_at_correct(curve, 0.9) == pytest.approx(1)


@pytest.mark.parametrize("rule", answer.RULES)
def test_operating_curve_agrees_with_decoding_at_each_threshold(tree, rule):

    g = torch.Generator().manual_seed(0)
    taxonomy = Taxonomy([{"id": i, "parent": p} for i, p in [("root", None), ("A", "root"), ("c", "root"),
                                                               ("a1", "A"), ("a2", "A"), ("x", "a2"), ("y", "a2")]])
    probs = TreeTensors(taxonomy).sum_up(torch.randn(200, 4, generator=g).mul(2).softmax(-1))
    target = torch.randint(0, 7, (200,), generator=g)
    thresholds = torch.tensor([0.05, 0.2, 0.5, 0.77, 0.95])
    curve = curves.operating_curve(probs, target, tree, thresholds, rule=rule)
    for t, correct, recall, depth in zip(thresholds.tolist(), curve["correct"], curve["information_recall"],
                                         curve["mean_depth"]):
        expected = curves.at_confidence(probs, target, tree, t, rule=rule)
        assert (correct, recall, depth) == pytest.approx(
            (expected["correct"], expected["information_recall"], expected["mean_depth"]), abs=1e-6)


def test_curve_area_is_under_the_upper_envelope():
    # recall descending: (1, .6), (.5, .9), (0, 1): best correct .6 on (.5, 1] and .9 on (0, .5]
    curve = {"information_recall": [0.5, 1.0, 0.0], "correct": [0.9, 0.6, 1.0]}
    assert curves.curve_area(curve) == pytest.approx(0.6 * 0.5 + 0.9 * 0.5)
    # a point that is worse on both axes than another changes nothing
    assert curves.curve_area({"information_recall": [0.5, 1.0, 0.0, 0.4], "correct": [0.9, 0.6, 1.0, 0.5]}) == \
        pytest.approx(0.75)
    assert curves.curve_area({"information_recall": [1.0, 0.0], "correct": [1.0, 1.0]}) == pytest.approx(1)
    assert curves.recall_at_correct(curve, 0.95) == 0.0 and curves.recall_at_correct(curve, 0.9) == 0.5


def test_informative_rule_prefers_the_more_informative_node(tree):
    # at 0.4 both c (a leaf at depth 1, information 2) and a2 (depth 2, information 1) qualify
    probs = rows([1, .6, .4, .1, .5, .25, .25])
    assert answer.decode(probs, 0.4, tree.depth).tolist() == [A2]
    assert answer.decode(probs, 0.4, tree.depth, answer.preference(tree, "informative")).tolist() == [C]
    # equally informative nodes go by depth: c and a1, x, y all carry 2 bits, a1 is deeper
    assert answer.preference(tree, "informative").tolist() == [0, 1, 3, 4, 2, 5, 5]
    with pytest.raises(ValueError, match="deepest, informative"):
        answer.preference(tree, "shallowest")


@pytest.mark.parametrize("rule", answer.RULES)
def test_the_root_answers_when_nothing_qualifies_whatever_a_head_gives_it(rule):
    # the root is the last node, and a faulty head gives it 0.3
    taxonomy = Taxonomy([{"id": "a", "parent": "r"}, {"id": "b", "parent": "r"}, {"id": "r", "parent": None}])
    tree = TreeTensors(taxonomy)
    probs = rows([0.2, 0.1, 0.3], [0.7, 0.1, 0.3])
    rank = answer.preference(tree, rule)
    assert answer.decode(probs, 0.5, tree.depth, rank).tolist() == [2, 0]
    assert answer.decode(probs, 0.25, tree.depth, rank).tolist() == [2, 0]
    curve = curves.operating_curve(probs, torch.tensor([0, 0]), tree, torch.tensor([0.25, 0.5, 0.9]), rule=rule)
    assert curve["mean_depth"] == pytest.approx([0.5, 0.5, 0])
