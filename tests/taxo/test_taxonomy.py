import json

import numpy as np
import pytest

from hier.taxo import InputError, Taxonomy


def tree(*edges):
    """Taxonomy from 'parent>child' strings; the first parent is the root."""
    nodes = {edges[0].split(">")[0]: None}
    for e in edges:
        parent, child = e.split(">")
        nodes[child] = parent
    return Taxonomy([{"id": n, "name": n.upper(), "parent": p, "rank": None} for n, p in nodes.items()])


def test_arrays_follow_file_order():
    t = tree("r>a", "r>b", "a>a1", "a>a2")
    assert t.ids == ["r", "a", "b", "a1", "a2"]
    assert t.parent.tolist() == [-1, 0, 0, 1, 1]
    assert t.depth.tolist() == [0, 1, 1, 2, 2]
    assert t.leaves.tolist() == [2, 3, 4]
    assert t.index("a2") == 4 and t.root == 0
    assert t.children[1] == (3, 4)
    assert t.leaves_under.tolist() == [3, 2, 1, 1, 1]
    assert t.leaf_position.tolist() == [-1, -1, 0, 1, 2]


def test_ancestors_and_lineage():
    t = tree("r>a", "r>b", "a>a1", "a>a2", "b>b1")
    a = t.ancestor_matrix
    assert a[t.index("a1")].nonzero()[0].tolist() == [0, 1, 3]
    assert [t.ids[i] for i in t.lineage(t.index("b1"))] == ["r", "b", "b1"]
    assert t.path_ids(t.index("a2")) == "r>a>a2"


def test_round_trip_keeps_extra_keys(tmp_path):
    t = Taxonomy([{"id": "r", "name": "root", "parent": None, "rank": None},
                  {"id": "x", "name": "x", "parent": "r", "rank": "genus", "aphia_id": 12, "label": True}],
                 source="csv")
    t.save(tmp_path / "t.json")
    back = Taxonomy.load(tmp_path / "t.json")
    assert back.nodes() == t.nodes() and back.source == "csv"
    assert back.is_label(1) and not back.is_label(0)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["format"] == "hier-taxonomy" and data["version"] == 1


@pytest.mark.parametrize("nodes, message", [
    ([], "no nodes"),
    ([{"id": "a", "parent": None}, {"id": "a", "parent": None}], "duplicate node id"),
    ([{"id": "a", "parent": None}, {"id": "b", "parent": None}], "2 roots"),
    ([{"id": "a", "parent": None}, {"id": "b", "parent": "zz"}], "parent 'zz' is not a node"),
    ([{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}], "no root"),
    ([{"id": "r", "parent": None}, {"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}], "cycle"),
    ([{"id": "r", "parent": None}, {"id": "a", "parent": "a"}], "its own parent"),
    ([{"id": "r", "parent": None}, {"id": "a", "parent": ["r"]}], r"node 'a': parent must be a node id \(text\) or null"),
    ([{"id": "r", "parent": None}, {"id": "a", "parent": 0}], "parent must be a node id"),
])
def test_malformed_trees_are_input_errors(nodes, message):
    with pytest.raises(InputError, match=message):
        Taxonomy(nodes)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "hier-taxonomy", "version": 1, "nodes": [{"id": "a", "parent": "b"}]}')
    with pytest.raises(InputError, match=r"bad\.json: node 'a': parent 'b' is not a node"):
        Taxonomy.load(bad)
    bad.write_text("{nope")
    with pytest.raises(InputError, match=r"bad\.json: line 1: not valid JSON"):
        Taxonomy.load(bad)
    bad.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match="binary file"):
        Taxonomy.load(bad)
    bad.write_bytes('{"a": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        Taxonomy.load(bad)
    with pytest.raises(InputError, match="no such file"):
        Taxonomy.load(tmp_path / "missing.json")
    bad.write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a hier-taxonomy file"):
        Taxonomy.load(bad)


def test_unknown_id_suggests_close_ones():
    t = tree("r>goldfish", "r>catfish")
    with pytest.raises(KeyError, match="did you mean 'goldfish'"):
        t.index("goldfsh")


def test_from_paths_shares_prefixes_and_adds_root_when_needed():
    paths = [[("A", "A", None), ("A>b", "b", None)], [("C", "C", None)]]
    t = Taxonomy.from_paths(paths, source="x", labels=["A>b", "C"])
    assert t.ids == ["root", "A", "A>b", "C"]
    assert t.is_label(t.index("C")) and not t.is_label(t.index("A"))
    single = Taxonomy.from_paths([[("A", "A", None), ("A>b", "b", None)], [("A", "A", None)]], source="x")
    assert single.ids == ["A", "A>b"]
    assert np.array_equal(single.parent, [-1, 0])


def test_saved_files_are_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        tree("r>a").save(tmp_path / "t.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.json").stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
