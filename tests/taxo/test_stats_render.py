import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from hier.taxo import InputError, Taxonomy
from hier.taxo.export import to_csv, to_dot
from hier.taxo.render import layout, render
from hier.taxo.stats import taxonomy_stats


@pytest.fixture
def small():
    # r -> a -> (a1, a2), r -> b -> b1 (b is dead), r -> c
    edges = {"r": None, "a": "r", "b": "r", "c": "r", "a1": "a", "a2": "a", "b1": "b"}
    return Taxonomy([{"id": k, "name": k, "parent": v, "rank": "genus" if k in ("a", "b") else None}
                     for k, v in edges.items()])


def test_stats(small):
    s = taxonomy_stats(small)
    assert (s["nodes"], s["leaves"], s["inner"], s["max_depth"]) == (7, 4, 3, 2)
    assert s["dead_nodes"] == 1 and s["branching_max"] == 3
    assert s["branching_mean"] == pytest.approx((3 + 2 + 1) / 3, abs=1e-3)
    assert s["mean_leaf_depth"] == pytest.approx((1 + 2 + 2 + 2) / 4)
    assert s["levels"][1] == {"depth": 1, "nodes": 3, "inner": 2, "leaves": 1}
    assert s["ranks"] == {"genus": 2}


def test_layout_puts_parents_between_children(small):
    x, y = layout(small)
    i = small.index
    assert sorted(y[j] for j in small.leaves) == [0, 1, 2, 3]
    assert y[i("a")] == (y[i("a1")] + y[i("a2")]) / 2
    assert x[i("a1")] == 2 and x[i("r")] == 0


def test_render_png_and_svg(small, tmp_path):
    render(small, tmp_path / "t.png")
    with Image.open(tmp_path / "t.png") as im:
        assert im.size[0] > 200 and im.size[1] > 200
        assert len(im.convert("L").getcolors(65536)) > 2  # something was drawn
    render(small, tmp_path / "t.svg")
    svg = ET.parse(tmp_path / "t.svg").getroot()
    assert svg.tag.endswith("svg")
    with pytest.raises(InputError, match="use .png or .svg"):
        render(small, tmp_path / "t.gif")
    assert not (tmp_path / "t.gif").exists()


def test_exports(small):
    lines = to_csv(small).splitlines()
    assert lines[0] == "id,parent,name,rank" and lines[1] == "r,,r," and "a1,a,a1," in lines
    dot = to_dot(small)
    assert dot.count("->") == 6 and '"a" -> "a1";' in dot
