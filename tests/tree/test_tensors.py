"""The taxonomy as tensors: levels, paths, heights, lowest common ancestors, masks and the consistent roll-ups."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hier.core.errors import InputError
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest)

# parents[i] < i + 1: every drawn list is a tree rooted at node 0
parent_lists = st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30).map(
    lambda draws: [int(u * (i + 1)) for i, u in enumerate(draws)])


@pytest.fixture(scope="module")
def tree(five):
    return TreeTensors(five)


def test_levels_move_short_leaves_down(tree):
    assert tree.level_sizes == (2, 3)
    assert tree.level_nodes.tolist() == [A, B, A1, A2, B]
    # leaf a1 is class a at level 1 (column 0) and itself at level 2 (column 2); b is b twice.
    assert tree.leaf_level_columns.tolist() == [[0, 2], [0, 3], [1, 4]]
    assert tree.lineage.tolist() == [[R, R, R], [R, A, A], [R, A, A1], [R, A, A2], [R, B, B]]


def test_widths_and_columns(tree):
    assert (tree.width("leaf"), tree.width("node"), tree.width("level")) == (3, 5, 5)
    assert tree.columns("leaf").tolist() == [A1, A2, B]
    assert tree.columns("level").tolist() == [A, B, A1, A2, B]


def test_height_and_information(tree):
    # height: edges down to the deepest leaf below; information: log2(3 leaves / leaves under the node)
    assert tree.height.tolist() == [2, 1, 0, 0, 0]
    assert tree.information.tolist() == pytest.approx([0, math.log2(3 / 2), math.log2(3), math.log2(3), math.log2(3)])


def test_lca_of_pairs(tree):
    a, b = torch.tensor([A1, A1, A1, A2, B, R]), torch.tensor([A2, B, A, A2, B, A1])
    assert tree.lca(a, b).tolist() == [A, R, A, A2, B, R]


def test_ancestry_by_hand(tree):
    assert tree.is_ancestor(torch.tensor([R, A, A, A1, B]), torch.tensor([A1, A1, A, A2, A2])).tolist() == [
        True, True, True, False, False]
    assert tree.ancestor_rows(torch.tensor([A1, B])).tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 1]]
    assert tree.descendant_rows(torch.tensor([A, A1])).tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]


@settings(max_examples=60, deadline=None)
@given(parents=parent_lists, seed=st.integers(0, 2**16))
def test_paths_agree_with_the_dense_ancestor_matrix(make_tree, parents, seed):
    taxonomy = make_tree(parents)
    tree = TreeTensors(taxonomy)
    dense = torch.from_numpy(taxonomy.ancestor_matrix)  # [i, j]: j is i or above i
    nodes = torch.arange(len(taxonomy))
    a, b = nodes.repeat_interleave(len(nodes)), nodes.repeat(len(nodes))
    assert torch.equal(tree.is_ancestor(b, a), dense[a, b])
    assert torch.equal(tree.ancestor_rows(nodes), dense)
    assert torch.equal(tree.descendant_rows(nodes), dense.T)
    related = dense | dense.T
    assert torch.equal(tree.related(nodes, tree.leaves), related[:, tree.leaves])
    assert torch.equal(tree.related(nodes, tree.level_nodes), related[:, tree.level_nodes])
    known = dense | ~dense.T
    known[:, tree.root] = False
    assert all(map(torch.equal, tree.multi_hot(nodes, "node"), (dense, known)))
    assert all(map(torch.equal, tree.multi_hot(nodes, "leaf"), (dense[:, tree.leaves], known[:, tree.leaves])))
    # the LCA: the deepest node above both
    common = dense[a] & dense[b]
    assert torch.equal(tree.lca(a, b), torch.where(common, tree.depth, -1).argmax(1))
    leaf_depth = torch.where(tree.is_leaf, tree.depth, -1)
    assert torch.equal(tree.height, torch.where(dense, leaf_depth[:, None], -1).amax(0) - tree.depth)
    # sums and maxima up the tree, against sums over the dense mask
    under = dense.T[:, tree.leaves].double()  # [node, leaf]: the leaf is at or below the node
    generator = torch.Generator().manual_seed(seed)
    leaf_log_p = (8 * torch.randn(3, tree.num_leaves, generator=generator, dtype=torch.float64)).log_softmax(-1)
    nodes = torch.randint(len(taxonomy), (3, 5), generator=generator)
    values = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    expected = (values[:, :, None] * under[nodes]).sum(1)  # [B, K, leaves] written out
    torch.testing.assert_close(tree.spread_to_leaves(nodes, values), expected)
    torch.testing.assert_close(tree.log_sum_up(leaf_log_p),
                               leaf_log_p[:, None, :].masked_fill(under == 0, float("-inf")).logsumexp(-1))
    expected = leaf_log_p.exp() @ under.T
    expected[:, tree.root] = 1
    torch.testing.assert_close(tree.sum_up(leaf_log_p.exp()), expected.clamp(max=1))
    p = torch.rand(3, tree.num_nodes, generator=generator, dtype=torch.float64)
    expected = torch.where(dense.T, p[:, None, :], 0).amax(-1)
    expected[:, tree.root] = 1
    torch.testing.assert_close(tree.max_up(p), expected)


def test_log_sum_up_stays_finite_below_the_smallest_float(tree):
    # both leaves under a sit 300 below b: their probabilities underflow, a's log-probability must not
    log_a = -300 + math.log1p(math.exp(-1))
    assert tree.log_sum_up(torch.tensor([[-300.0, -301.0, 0.0]]))[0].tolist() == pytest.approx(
        [0.0, log_a, -300.0, -301.0, 0.0])


def test_sum_up_by_hand(tree):
    p = tree.sum_up(torch.tensor([[0.2, 0.3, 0.5]]))
    torch.testing.assert_close(p, torch.tensor([[1.0, 0.5, 0.2, 0.3, 0.5]]))


def test_max_up_by_hand(tree):
    p = tree.max_up(torch.tensor([[0.4, 0.3, 0.6, 0.1, 0.2]]))
    torch.testing.assert_close(p, torch.tensor([[1.0, 0.6, 0.6, 0.1, 0.2]]))


def test_multi_hot_masks_what_an_inner_target_leaves_open(tree):
    positive, known = tree.multi_hot(torch.tensor([A, A1]), "node")
    assert positive.tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]
    # the root is always true; a genus label says nothing about its species
    assert known.tolist() == [[0, 1, 0, 0, 1], [0, 1, 1, 1, 1]]
    positive, known = tree.multi_hot(torch.tensor([A, A1]), "leaf")
    assert positive.tolist() == [[0, 0, 0], [1, 0, 0]]
    assert known.tolist() == [[0, 0, 1], [1, 1, 1]]


def test_related_columns(tree):
    targets = torch.tensor([A1, A, B])
    assert tree.related(targets, tree.leaves).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert tree.related(targets, tree.level_nodes).tolist() == [
        [1, 0, 1, 0, 0], [1, 0, 1, 1, 0], [0, 1, 0, 0, 1]]


def test_space_is_told_by_width_and_a_mismatch_names_both(tree):
    assert tree.space(torch.zeros(2, 5), ("node", "leaf"), "loss 'x'") == "node"
    assert tree.space(torch.zeros(2, 3), ("node", "leaf"), "loss 'x'") == "leaf"
    with pytest.raises(InputError, match=r"loss 'x' takes node scores \(5 columns\), got 4 columns"):
        tree.space(torch.zeros(2, 4), ("node",), "loss 'x'")


def test_single_node_taxonomy_is_refused():
    with pytest.raises(InputError, match="single node"):
        TreeTensors(Taxonomy([{"id": "r", "parent": None}]))


def test_buffers_stay_out_of_the_state_dict(tree):
    assert tree.state_dict() == {}


def test_roll_ups_are_exact_on_a_deep_chain(make_tree):
    # rounding must never put a child above its parent, however the sums are formed
    tree = TreeTensors(make_tree([0, 1, 2, 3, 3, 2, 1, 0, 8, 8]))
    generator = torch.Generator().manual_seed(0)
    leaf_p = torch.rand(500, tree.num_leaves, generator=generator).pow(8).softmax(-1)
    for p in (tree.sum_up(leaf_p), tree.max_up(torch.rand(500, tree.num_nodes, generator=generator))):
        assert (p <= p[:, tree.parent]).all()
        assert (p[:, tree.root] == 1).all()
