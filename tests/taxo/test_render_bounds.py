"""`hier taxo render` is bounded (issue 28, class 8): a tree too large to draw readably is refused at once,
with the size it can draw, before any figure is made."""

import json
import time

from hier.taxo.render import MAX_NODES


def test_a_huge_tree_is_refused_at_once_with_the_size_it_can_draw(run_cli, tmp_path):
    nodes = [{"id": "r", "parent": None}] + [{"id": f"g{k}", "parent": "r"} for k in range(1000)]
    nodes += [{"id": f"s{k}", "parent": f"g{k % 1000}"} for k in range(199_000)]
    (tmp_path / "big.json").write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": nodes}))
    started = time.monotonic()
    code, _, err = run_cli("taxo", "render", tmp_path / "big.json", "-o", tmp_path / "tree.png")
    assert code == 2 and f"200,001 nodes, over the {MAX_NODES:,}" in err and "big.json" in err, err
    assert time.monotonic() - started < 60 and not (tmp_path / "tree.png").exists()


def test_a_tree_within_the_bound_is_drawn(run_cli, tmp_path):
    nodes = [{"id": "r", "parent": None}] + [{"id": f"n{k}", "parent": "r"} for k in range(20)]
    (tmp_path / "small.json").write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": nodes}))
    code, _, err = run_cli("taxo", "render", tmp_path / "small.json", "-o", tmp_path / "tree.svg")
    assert code == 0 and (tmp_path / "tree.svg").stat().st_size > 0, err
