"""Tiny taxonomies for the head and loss tests.

The five-node tree, node order r a a1 a2 b (indices 0..4):

    r ─┬─ a ─┬─ a1      leaves a1 a2 b (leaf columns 0 1 2); b is one level short
       │     └─ a2      levels: depth 1 = (a, b), depth 2 = (a1, a2, b moved down)
       └─ b
"""

from __future__ import annotations

import pytest
import torch

from hier.taxo import Taxonomy


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: intra-op threads only add waiting, many times the work when cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tree_from_parents(parents) -> Taxonomy:
    """Node 0 is the root; node i + 1 hangs under parents[i] (an index below i + 1)."""
    nodes = [{"id": "n0", "parent": None}]
    nodes += [{"id": f"n{i + 1}", "parent": f"n{p}"} for i, p in enumerate(parents)]
    return Taxonomy(nodes)


@pytest.fixture(scope="session")
def five() -> Taxonomy:
    return Taxonomy([{"id": i, "name": i, "parent": p}
                     for i, p in [("r", None), ("a", "r"), ("a1", "a"), ("a2", "a"), ("b", "r")]])


@pytest.fixture(scope="session")
def seven() -> Taxonomy:
    """Leaves at depths 1, 2 and 3: r(a(c(c1, c2), d), b)."""
    return tree_from_parents([0, 1, 2, 2, 1, 0])


@pytest.fixture(scope="session")
def make_tree():
    """tree_from_parents, for tests that draw trees (hypothesis)."""
    return tree_from_parents
