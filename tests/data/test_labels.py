"""Dataset labels to taxonomy nodes: by id, by lineage, folder-style; unmatched and ambiguous labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.data.labels import match_labels, resolve_labels, targets
from hier.data.readers import Sample
from hier.taxo import Taxonomy


@pytest.fixture
def small_taxonomy() -> Taxonomy:
    nodes = [("root", "root", None), ("living", "living", "root"), ("cop", "Copepoda", "living"),
             ("cal", "Calanus", "cop"), ("cal_f", "Calanus finmarchicus", "cal"), ("egg1", "egg", "cal"),
             ("oth", "other", "living"), ("egg2", "egg", "oth"), ("nl", "not-living", "root"),
             ("det", "detritus", "nl")]
    return Taxonomy([{"id": i, "name": n, "parent": p, "rank": None} for i, n, p in nodes])


@pytest.mark.parametrize("label, node", [
    ("cal_f", "cal_f"),                                         # an id
    ("root>living>cop>cal", "cal"),                             # a path of ids from the root
    ("living>Copepoda>Calanus>Calanus finmarchicus", "cal_f"),  # names, without the root
    ("Calanus>egg", "egg1"),                                    # the trailing part of a lineage
    ("other>egg", "egg2"),
    ("Calanus", "cal"),                                         # a unique name, inner node
    ("Calanus_finmarchicus", "cal_f"),                          # folder style
    ("DETRITUS", "det"),                                        # folder style ignores case
])
def test_labels_resolve_by_id_lineage_or_unique_name(small_taxonomy, label, node):
    assert resolve_labels([label], small_taxonomy) == {label: small_taxonomy.index(node)}


def test_unmatched_and_ambiguous_labels_are_listed(small_taxonomy):
    match = match_labels(["egg", "Oithona", "Calanus", "Oithona"], small_taxonomy)
    assert match.nodes == {"Calanus": small_taxonomy.index("cal")}
    assert match.unmatched == ["Oithona"]
    assert match.ambiguous == {"egg": [small_taxonomy.index("egg1"), small_taxonomy.index("egg2")]}
    with pytest.raises(InputError, match=r"2 labels match no single taxonomy node: 'Oithona' \(no node\); "
                                         r"'egg' \(2 nodes: 'egg1', 'egg2'\)"):
        resolve_labels([Sample(Path("a.png"), "egg"), Sample(Path("b.png"), "Oithona")], small_taxonomy)


def test_targets_are_node_indices(small_taxonomy):
    samples = [Sample(Path("a"), "Calanus"), Sample(Path("b"), "detritus"), Sample(Path("c"), "Calanus")]
    nodes = resolve_labels(samples, small_taxonomy)
    assert targets(samples, nodes).tolist() == [3, 9, 3]

