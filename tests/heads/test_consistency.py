"""node_probabilities on random trees and scores: root = 1, no child above its parent, at any temperature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hier.plugins import create_head

HEADS = ["arcface", "arcface-multihead", "classifier", "spheremulti", "spheremultihier"]

# parents[i] < i + 1: every drawn list is a tree rooted at node 0
parent_lists = st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=24).map(
    lambda draws: [int(u * (i + 1)) for i, u in enumerate(draws)])


@pytest.mark.parametrize("name", HEADS)
@settings(max_examples=40, deadline=None)
@given(parents=parent_lists, data=st.data())
def test_node_probabilities_are_consistent(name, make_tree, parents, data):
    taxonomy = make_tree(parents)
    head = create_head(name, in_features=4, taxonomy=taxonomy)
    width = head.tree.width(head.score_space)
    scores = data.draw(arrays(np.float32, (3, width), elements=st.floats(-80, 80, width=32)))
    temperature = data.draw(st.floats(0.05, 20))
    p = head.node_probabilities(torch.from_numpy(scores) / temperature)
    assert p.shape == (3, len(taxonomy))
    assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert (p[:, taxonomy.root] == 1).all()
    child = torch.from_numpy(np.flatnonzero(taxonomy.parent >= 0))
    assert (p[:, child] <= p[:, taxonomy.parent[child]]).all()  # exactly, not within a tolerance


@pytest.mark.parametrize("name", ["arcface", "classifier"])
@settings(max_examples=20, deadline=None)
@given(parents=parent_lists, seed=st.integers(0, 2**16))
def test_flat_heads_keep_the_leaf_softmax(name, make_tree, parents, seed):
    taxonomy = make_tree(parents)
    head = create_head(name, in_features=4, taxonomy=taxonomy)
    scores = 5 * torch.randn(3, len(taxonomy.leaves), generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(head.node_probabilities(scores)[:, taxonomy.leaves], scores.softmax(-1))
