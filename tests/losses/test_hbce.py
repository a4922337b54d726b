"""Hierarchical BCE: hand-computed values, the notes' loss at hard predictions, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hier.core.errors import InputError
from hier.plugins import create_loss

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest)
HARD = 40.0


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_terms_by_hand(five):
    scores = [0.3, -0.5, 1.0, 0.2, -1.2]  # r a a1 a2 b; target a1: a and a1 positive, root masked
    terms = create_loss("hbce", taxonomy=five).terms(torch.tensor([scores]), torch.tensor([A1]))
    s = dict(zip("r a a1 a2 b".split(), scores))
    p = {k: sigmoid(v) for k, v in s.items()}
    bce = (softplus(-s["a"]) + softplus(-s["a1"]) + softplus(s["a2"]) + softplus(s["b"])) / 4
    # edges under the root: a1 -> a and a2 -> a (edges from the root never count)
    violation = (max(p["a1"] - p["a"], 0) + max(p["a2"] - p["a"], 0)) / 2
    distance = ((1 - p["a"]) + (1 - p["a1"]) + p["a2"] + p["b"]) / 4
    for name, expected in (("bce", bce), ("violation", violation), ("distance", distance)):
        assert terms[name].item() == pytest.approx(expected, rel=1e-6), name


def test_inner_target_masks_the_nodes_below_it(five):
    scores = torch.tensor([[0.3, -0.5, 1.0, 0.2, -1.2]])
    terms = create_loss("hbce", taxonomy=five, hierarchy_penalty=0.0).terms(scores, torch.tensor([A]))
    # known: a (positive) and b (negative); a1 and a2 may or may not hold
    assert terms["bce"].item() == pytest.approx((softplus(0.5) + softplus(-1.2)) / 2, rel=1e-6)
    assert terms["distance"].item() == pytest.approx(((1 - sigmoid(-0.5)) + sigmoid(-1.2)) / 2, rel=1e-6)


def test_hard_predictions_give_the_notes_penalties(five):
    loss = create_loss("hbce", taxonomy=five)
    predicted_b = torch.tensor([[-HARD, -HARD, -HARD, -HARD, HARD]])
    terms = loss.terms(predicted_b, torch.tensor([A1]))
    # deepest predicted b, deepest true a1: a1 -> a -> r -> b, 3 edges, over 4 known entries
    assert terms["distance"].item() == pytest.approx(3 / 4)
    assert terms["violation"].item() == 0
    a2_without_a = torch.tensor([[-HARD, -HARD, -HARD, HARD, -HARD]])
    terms = loss.terms(a2_without_a, torch.tensor([A2]))
    assert terms["violation"].item() == pytest.approx(1 / 2)  # one violated edge of the two penalised


def test_level_weights_and_edge_penalties(five):
    scores = torch.tensor([[0.3, -0.5, 1.0, 0.2, -1.2]])
    target = torch.tensor([A1])
    weighted = create_loss("hbce", taxonomy=five, level_weights=[2.0, 0.5]).terms(scores, target)["bce"]
    expected = (2 * softplus(0.5) + 0.5 * softplus(-1.0) + 0.5 * softplus(0.2) + 2 * softplus(-1.2)) / 4
    assert weighted.item() == pytest.approx(expected, rel=1e-6)
    balanced = create_loss("hbce", taxonomy=five, level_weights="balanced")
    # depth 1 has 2 nodes, depth 2 has 2: each depth carries half of the 4 non-root weights
    assert balanced.node_weights[[A, B, A1, A2]].tolist() == [1.0, 1.0, 1.0, 1.0]
    loss = create_loss("hbce", taxonomy=five, edge_penalties={"a1": 0.0})
    p_a, p_a2 = sigmoid(-0.5), sigmoid(0.2)
    assert loss.terms(scores, target)["violation"].item() == pytest.approx((p_a2 - p_a) / 2, rel=1e-6)


def test_balanced_level_weights_on_an_uneven_tree(seven):
    weights = create_loss("hbce", taxonomy=seven, level_weights="balanced").node_weights
    # depths 1, 2, 3 hold 2, 2, 2 nodes of the 6 non-root: every depth weighs 2 in total
    assert weights[1:].tolist() == pytest.approx([1.0] * 6)


@pytest.mark.parametrize("options, message", [
    ({"level_weights": [1.0]}, "level_weights must be"),
    ({"level_weights": "deep"}, "level_weights must be"),
    ({"level_weights": [1.0, -1.0]}, "zero or more"),
    ({"edge_penalties": {"zz": 1.0}}, "'zz', which is not a node"),
    ({"edge_penalties": {"a1": -1.0}}, "zero or more"),
    ({"edge_penalties": {"a1": "high"}}, "must be a number"),
    ({"distance_weight": "1"}, "distance_weight must be a number"),
    ({"hierarchy_penalty": -0.1}, "hierarchy_penalty must be a number, zero or more"),
])
def test_bad_options_are_input_errors(five, options, message):
    with pytest.raises(InputError, match=message):
        create_loss("hbce", taxonomy=five, **options)


def test_leaf_scores_are_refused(five):
    with pytest.raises(InputError, match="loss 'hbce' takes node scores"):
        create_loss("hbce", taxonomy=five)(torch.zeros(2, 3), torch.tensor([A1, B]))


def dense_reference(taxonomy, scores, targets, hierarchy_penalty, distance_weight, node_weights, edge_factors):
    """The loss through autograd on dense masks, written as plainly as possible."""
    ancestors = torch.from_numpy(taxonomy.ancestor_matrix)
    positive = ancestors[targets]
    known = positive | ~ancestors.T[targets]
    known[:, taxonomy.root] = False
    known = known.to(scores.dtype)
    y = positive.to(scores.dtype)
    bce = (F.binary_cross_entropy_with_logits(scores, y, reduction="none") * known * node_weights).sum() / known.sum()
    p = torch.sigmoid(scores)
    penalised = [c for c in range(len(taxonomy)) if taxonomy.depth[c] >= 2]
    parents = [int(taxonomy.parent[c]) for c in penalised]
    violation = (F.relu(p[:, penalised] - p[:, parents]) * edge_factors[penalised]).sum(1).mean() / len(penalised)
    distance = ((p - y).abs() * known).sum() / known.sum()
    return bce + hierarchy_penalty * violation + distance_weight * distance


@pytest.mark.parametrize("inner_targets", [True, False])  # a dense mask of known entries, or one shared row
def test_written_out_gradient_matches_autograd(make_tree, inner_targets):
    taxonomy = make_tree([0, 0, 1, 1, 2, 2, 2, 3, 7, 7, 0, 11])
    generator = torch.Generator().manual_seed(0)
    scores = (3 * torch.randn(64, len(taxonomy), generator=generator, dtype=torch.float64)).requires_grad_()
    nodes = torch.arange(len(taxonomy)) if inner_targets else torch.from_numpy(taxonomy.leaves)
    targets = nodes[torch.randint(len(nodes), (64,), generator=generator)]
    weights = [0.5, 2.0, 3.0]
    factors = {f"n{i}": float(i) / 4 for i in range(3, 13)}
    loss = create_loss("hbce", taxonomy=taxonomy, hierarchy_penalty=0.7, distance_weight=0.3,
                       level_weights=weights, edge_penalties=factors)
    value = loss(scores, targets)
    (grad,) = torch.autograd.grad(value, scores)
    node_weights = torch.tensor([1.0, *weights], dtype=torch.float64)[torch.from_numpy(taxonomy.depth)]
    edge_factors = torch.ones(len(taxonomy), dtype=torch.float64)
    edge_factors[3:] = torch.arange(3, 13, dtype=torch.float64) / 4
    expected = dense_reference(taxonomy, scores, targets, 0.7, 0.3, node_weights, edge_factors)
    (expected_grad,) = torch.autograd.grad(expected, scores)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("targets", [[A1, A, B], [A1, A2, B]])
def test_gradcheck(five, targets):
    loss = create_loss("hbce", taxonomy=five, hierarchy_penalty=0.8, distance_weight=0.6, level_weights=[1.5, 0.5])
    scores = torch.tensor([[0.3, -0.5, 1.0, 0.2, -1.2], [0.1, 0.9, -0.4, 1.3, 0.7], [2.0, -1.0, 0.5, -0.3, 0.4]],
                          dtype=torch.float64, requires_grad=True)
    targets = torch.tensor(targets)
    assert torch.autograd.gradcheck(lambda s: loss(s, targets), (scores,))


def test_violation_gradient_lowers_the_child_and_raises_the_parent(five):
    loss = create_loss("hbce", taxonomy=five)
    scores = torch.tensor([[0.0, -2.0, 2.0, -3.0, 0.0]], requires_grad=True)  # a1 far above a
    violation = loss.terms(scores, torch.tensor([B]))["violation"]
    violation.backward()
    assert scores.grad[0, A1] > 0 > scores.grad[0, A]  # descent lowers a1 and raises a
    assert scores.grad[0, A2] == 0  # a2 is below a: no violation, no push
