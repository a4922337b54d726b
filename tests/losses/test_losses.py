"""The flat and multi-hot losses and the literature baselines: hand-computed values, masks, gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hier.core.errors import InputError
from hier.plugins import create_loss

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest); leaf columns a1 a2 b
LEAF_SCORES = [1.0, 2.0, 0.5]
NODE_SCORES = [0.3, -0.5, 1.0, 0.2, -1.2]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def logsumexp(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


def loss_value(name, taxonomy, scores, targets, **options) -> float:
    return create_loss(name, taxonomy=taxonomy, **options)(torch.tensor(scores), torch.tensor(targets)).item()


# ---- ce ------------------------------------------------------------------------------------

def test_ce_on_leaf_targets_is_the_usual_cross_entropy(five):
    scores = torch.tensor([LEAF_SCORES, [0.1, -0.3, 0.7]])
    value = create_loss("ce", taxonomy=five)(scores, torch.tensor([A1, B]))
    torch.testing.assert_close(value, F.cross_entropy(scores, torch.tensor([0, 2])))


def test_ce_on_an_inner_target_scores_the_leaves_under_it(five):
    expected = logsumexp(*LEAF_SCORES) - logsumexp(1.0, 2.0)  # -log(p(a1) + p(a2))
    assert loss_value("ce", five, [LEAF_SCORES], [A]) == pytest.approx(expected, rel=1e-6)
    assert loss_value("ce", five, [LEAF_SCORES], [R]) == pytest.approx(0.0, abs=1e-6)


def test_ce_per_level(five):
    # level space of the five-node tree: (a, b | a1, a2, b); as wide as node space, and ce reads levels
    scores = [0.2, -0.1, 1.0, 0.3, -0.5]
    level_1, level_2 = logsumexp(0.2, -0.1), logsumexp(1.0, 0.3, -0.5)
    cases = {
        A1: ((level_1 - 0.2) + (level_2 - 1.0)) / 2,
        B: ((level_1 + 0.1) + (level_2 + 0.5)) / 2,  # b moved down: its own class at level 2
        A: ((level_1 - 0.2) + (level_2 - logsumexp(1.0, 0.3))) / 2,  # a's descendants at level 2
    }
    for target, expected in cases.items():
        assert loss_value("ce", five, [scores], [target]) == pytest.approx(expected, rel=1e-6)


def test_ce_refuses_node_scores(seven):
    with pytest.raises(InputError, match=r"loss 'ce' takes leaf scores \(4 columns\) or level scores"):
        create_loss("ce", taxonomy=seven)(torch.zeros(1, 7), torch.tensor([3]))


# ---- bce, focal, asl -------------------------------------------------------------------------

def test_bce_node_space(five):
    s = NODE_SCORES
    expected = (softplus(-s[A]) + softplus(-s[A1]) + softplus(s[A2]) + softplus(s[B])) / 4
    assert loss_value("bce", five, [s], [A1]) == pytest.approx(expected, rel=1e-6)
    # target a: a1 and a2 unknown, the root always masked
    assert loss_value("bce", five, [s], [A]) == pytest.approx((softplus(-s[A]) + softplus(s[B])) / 2, rel=1e-6)


def test_bce_leaf_space(five):
    x = LEAF_SCORES
    assert loss_value("bce", five, [x], [A1]) == pytest.approx(
        (softplus(-x[0]) + softplus(x[1]) + softplus(x[2])) / 3, rel=1e-6)
    assert loss_value("bce", five, [x], [A]) == pytest.approx(softplus(x[2]), rel=1e-6)  # only b is known


def focal_term(score: float, positive: bool, alpha: float, gamma: float) -> float:
    p = sigmoid(score)
    p_t = p if positive else 1 - p
    alpha_t = alpha if positive else 1 - alpha
    return alpha_t * (1 - p_t) ** gamma * softplus(-score if positive else score)


def test_focal_by_hand(five):
    s = NODE_SCORES
    for alpha, gamma in ((0.25, 2.0), (0.6, 1.0)):
        expected = (focal_term(s[A], True, alpha, gamma) + focal_term(s[A1], True, alpha, gamma)
                    + focal_term(s[A2], False, alpha, gamma) + focal_term(s[B], False, alpha, gamma)) / 4
        value = loss_value("focal", five, [s], [A1], alpha=alpha, gamma=gamma)
        assert value == pytest.approx(expected, rel=1e-6)


def asl_reference(scores, y, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8):
    """Ridnik et al.'s AsymmetricLoss.forward (reference code), summed over labels and batch."""
    x_sigmoid = torch.sigmoid(scores)
    xs_pos, xs_neg = x_sigmoid, (1 - x_sigmoid + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps)) + (1 - y) * torch.log(xs_neg.clamp(min=eps))
    pt = xs_pos * y + xs_neg * (1 - y)
    loss = loss * torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -loss.sum()


def test_asl_matches_the_reference_per_sample(five):
    generator = torch.Generator().manual_seed(0)
    scores = 2 * torch.randn(6, 5, generator=generator, dtype=torch.float64)
    targets = torch.tensor([A1, A2, B, A1, B, A2])  # leaf targets: every non-root node known
    y = torch.from_numpy(five.ancestor_matrix[targets.numpy()]).double()
    expected = asl_reference(scores[:, 1:], y[:, 1:]) / 6
    value = create_loss("asl", taxonomy=five)(scores, targets)
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)


def test_asl_by_hand_with_an_inner_target(five):
    s = NODE_SCORES
    p_b = sigmoid(s[B])
    shifted = max(p_b - 0.05, 0)
    expected = -(1 - sigmoid(s[A])) * math.log(sigmoid(s[A])) - shifted ** 4 * math.log(1 - shifted)
    assert loss_value("asl", five, [s], [A]) == pytest.approx(expected, rel=1e-6)


def test_asl_keeps_the_gradient_of_a_far_positive(five):
    # log(clamp(p, 1e-8)) in the reference has no gradient below logit -18; log-sigmoid does
    scores = torch.tensor([[0.0, -30.0, -30.0, -30.0, -30.0]], requires_grad=True)
    create_loss("asl", taxonomy=five)(scores, torch.tensor([A1])).backward()
    assert scores.grad[0, A1] < -0.9


@pytest.mark.parametrize("name, options, message", [
    ("focal", {"alpha": 2.0}, "alpha must be between 0 and 1"),
    ("focal", {"gamma": -1.0}, "gamma must be a number, zero or more"),
    ("asl", {"clip": -0.1}, "clip must be a number, zero or more"),
    ("hxe", {"alpha": -1.0}, "alpha must be a number, zero or more"),
    ("soft-labels", {"beta": -1.0}, "beta must be a number, zero or more"),
])
def test_bad_options_are_input_errors(five, name, options, message):
    with pytest.raises(InputError, match=message):
        create_loss(name, taxonomy=five, **options)


def test_unknown_option_is_named(five):
    with pytest.raises(InputError, match="does not accept option"):
        create_loss("bce", taxonomy=five, gamma=2.0)


# ---- hierarchical cross-entropy and soft labels ---------------------------------------------

def test_hxe_by_hand(five):
    p = [math.exp(x - logsumexp(*LEAF_SCORES)) for x in LEAF_SCORES]
    alpha = 0.5
    # target a1: edge r -> a (depth 1) and a -> a1 (depth 2)
    a1 = -math.exp(-alpha) * math.log(p[0] + p[1]) - math.exp(-2 * alpha) * math.log(p[0] / (p[0] + p[1]))
    b = -math.exp(-alpha) * math.log(p[2])
    a = -math.exp(-alpha) * math.log(p[0] + p[1])  # an inner target ends its path at a
    value = loss_value("hxe", five, [LEAF_SCORES] * 3, [A1, B, A], alpha=alpha)
    assert value == pytest.approx((a1 + b + a) / 3, rel=1e-6)


def test_hxe_with_alpha_zero_is_cross_entropy(seven):
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(16, 4, generator=generator)
    targets = torch.randint(7, (16,), generator=generator)
    hxe = create_loss("hxe", taxonomy=seven, alpha=0.0)(scores, targets)
    torch.testing.assert_close(hxe, create_loss("ce", taxonomy=seven)(scores, targets))


def test_soft_labels_by_hand(five):
    beta = 2.0
    log_p = [x - logsumexp(*LEAF_SCORES) for x in LEAF_SCORES]
    # heights: r 2, a 1, leaves 0; distances to a1: a1 0, a2 height(a)/2, b height(r)/2
    for target, distances in ((A1, [0, 0.5, 1]), (B, [1, 1, 0]), (A, [0.5, 0.5, 1])):
        weights = [math.exp(-beta * d) for d in distances]
        expected = -sum(w * lp for w, lp in zip(weights, log_p)) / sum(weights)
        assert loss_value("soft-labels", five, [LEAF_SCORES], [target], beta=beta) == pytest.approx(expected, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(parents=st.lists(st.floats(0, 1, exclude_max=True), min_size=2, max_size=30), seed=st.integers(0, 2**16))
def test_hxe_and_soft_labels_agree_with_their_dense_formulas(make_tree, parents, seed):
    """The losses sum along the target's path; here every leaf and every pair is written out."""
    taxonomy = make_tree([int(u * (i + 1)) for i, u in enumerate(parents)])
    dense = torch.from_numpy(taxonomy.ancestor_matrix)  # [i, j]: j is i or above i
    leaves = torch.from_numpy(taxonomy.leaves)
    depth, height = torch.from_numpy(taxonomy.depth), create_loss("hxe", taxonomy=taxonomy).tree.height
    generator = torch.Generator().manual_seed(seed)
    scores = 4 * torch.randn(6, len(leaves), generator=generator, dtype=torch.float64)
    targets = torch.randint(len(taxonomy), (6,), generator=generator)
    log_p = scores.log_softmax(-1)
    # hxe: log p(node) over the leaves under it, every edge of the target's path
    log_node = log_p[:, None, :].masked_fill(~dense.T[:, leaves], float("-inf")).logsumexp(-1)
    expected = []
    for b, t in enumerate(targets.tolist()):
        path = taxonomy.lineage(t)
        expected.append(-sum(math.exp(-0.3 * depth[c]) * (log_node[b, c] - log_node[b, p]).item()
                             for p, c in itertools.pairwise(path)))
    hxe = create_loss("hxe", taxonomy=taxonomy, alpha=0.3)(scores, targets)
    assert hxe.item() == pytest.approx(sum(expected) / 6, rel=1e-6, abs=1e-9)  # float32 edge weights
    # soft labels: softmax over the leaves of -beta height(LCA(leaf, target)) / height(root)
    lca_depth = torch.where(dense[targets][:, None, :] & dense[leaves][None, :, :], depth, -1).amax(-1)
    lca = torch.where((dense[targets][:, None, :] & dense[leaves][None, :, :]) & (depth == lca_depth[..., None]),
                      torch.arange(len(taxonomy)), 0).amax(-1)
    soft = torch.softmax(-3.0 * height[lca].double() / height[taxonomy.root], -1)
    value = create_loss("soft-labels", taxonomy=taxonomy, beta=3.0)(scores, targets)
    assert value.item() == pytest.approx(-(soft * log_p).sum(-1).mean().item(), rel=1e-6)


def test_hxe_and_soft_labels_stay_finite_far_from_the_target(five):
    # a confident wrong answer: the target's leaves lie 200 below b, past float's smallest probability
    scores = torch.tensor([[-200.0, -201.0, 0.0]], requires_grad=True)
    for name in ("hxe", "soft-labels"):
        loss = create_loss(name, taxonomy=five)(scores, torch.tensor([A1]))
        (gradient,) = torch.autograd.grad(loss, scores)
        assert torch.isfinite(loss) and loss.item() > 10 and torch.isfinite(gradient).all()


# ---- every loss ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, width", [("ce", 3), ("ce", 5), ("bce", 5), ("bce", 3), ("focal", 5),
                                         ("asl", 5), ("asl", 3), ("hxe", 3), ("soft-labels", 3)])
def test_gradcheck(five, name, width):
    loss = create_loss(name, taxonomy=five)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, width, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([A1, A, B, A2])
    assert torch.autograd.gradcheck(lambda s: loss(s, targets), (scores,))
