"""The small tree of the metric tests.

    root ─┬─ A ─┬─ a1              node order: root A c a1 a2 x y
          │     └─ a2 ─┬─ x        leaves: c a1 x y (4); c is a leaf at depth 1
          │            └─ y        information I(v) = log2(4 / #leaves under v):
          └─ c                       root 0, A log2(4/3), c 2, a1 2, a2 1, x 2, y 2
                                   height: root 3, A 2, a2 1, leaves 0
"""

import pytest

from hier.heads.tree import TreeTensors
from hier.taxo import Taxonomy


@pytest.fixture(scope="module")
def tree():
    taxonomy = Taxonomy([{"id": "root", "parent": None}, {"id": "A", "parent": "root"},
                         {"id": "c", "parent": "root"}, {"id": "a1", "parent": "A"}, {"id": "a2", "parent": "A"},
                         {"id": "x", "parent": "a2"}, {"id": "y", "parent": "a2"}])
    return TreeTensors(taxonomy)
