"""The taxonomy as tensors: levels, paths, heights, lowest common ancestors, masks and the consistent roll-ups."""

from __future__ import annotations

import math

import pytest
import torch

from hier.core.errors import InputError
from hier.heads.tree import TreeTensors
from hier.taxo import Taxonomy

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest)


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


def test_lca_table(tree):
    # rows: r a a1 a2 b; columns: the leaves a1 a2 b
    assert tree.lca_table(torch.arange(5), tree.leaves).tolist() == [
        [R, R, R], [A, A, R], [A1, A, R], [A, A2, R], [R, R, B]]
    # the table agrees with the element-wise lca on every pair
    a, b = torch.arange(5).repeat_interleave(5), torch.arange(5).repeat(5)
    assert tree.lca_table(torch.arange(5), torch.arange(5)).flatten().tolist() == tree.lca(a, b).tolist()


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
        assert (p[:, tree.by_depth] <= p[:, tree.by_depth_parent]).all()
        assert (p[:, tree.root] == 1).all()
