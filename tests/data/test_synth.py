"""The synthetic plankton benchmark: layout, taxonomy shape, long tail, ambiguity, determinism, CLI."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hier.cli.data import app
from hier.core.errors import InputError
from hier.data.synth import (
    AMBIGUOUS_FRACTION,
    BRANCHING,
    NON_LIVING,
    TRAITS,
    build_tree,
    class_order,
    class_sizes,
    draw_object,
    sample_grid,
    species_accuracy_bound,
    synthesize,
)
from hier.taxo import Taxonomy


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path, delimiter: str = ",") -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


# ---- taxonomy shape ----------------------------------------------------------------------------


def test_taxonomy_shape_at_default_depth(small_set):
    taxonomy = Taxonomy.load(small_set / "taxonomy.json")
    living = taxonomy.index("living")
    ranks = Counter(r for r in taxonomy.ranks if r)
    # 3 phyla -> 3+2+2 classes -> 2,3,2,3,2,3,2 genera -> species 3,2,4,... (50), two held out
    assert ranks == {"phylum": 3, "class": 7, "genus": 17, "species": 48}
    assert taxonomy.max_depth == 5 and len(taxonomy.leaves) == 50
    for leaf in taxonomy.leaves:
        if taxonomy.ids[leaf] in NON_LIVING:
            assert taxonomy.ids[taxonomy.parent[leaf]] == "not-living"
            assert not taxonomy.ancestor_matrix[leaf, living]
        else:
            assert taxonomy.ranks[leaf] == "species" and taxonomy.ancestor_matrix[leaf, living]


@pytest.mark.parametrize("depth, species", [(3, 35), (4, 50), (5, 65), (6, 112)])
def test_each_rank_above_species_is_drawn_by_its_own_trait(depth, species):
    tree = build_tree(depth)
    looks = {leaf: look for leaf, look in tree.looks.items() if "t" in look}
    assert len(looks) == species
    traits = TRAITS[: depth - 1]
    parent = {r["id"]: r["parent"] for r in tree.records}
    by_genus: dict[str, list[dict]] = {}
    for leaf, look in looks.items():
        by_genus.setdefault(parent[leaf], []).append(look)
    # species of a genus share every trait and differ only in their position t
    for members in by_genus.values():
        assert len({tuple(m[t] for t in traits) for m in members}) == 1
        assert len({m["t"] for m in members}) == len(members) >= 2
    # each genus has its own combination of traits, and siblings at rank k differ in trait k
    assert len({tuple(m[0][t] for t in traits) for m in by_genus.values()}) == len(by_genus)
    assert len(BRANCHING[depth]) == depth


def test_held_out_species_leave_at_least_two_in_their_genus():
    tree = build_tree(4, unseen=5)
    assert len(tree.held_out) == 5
    for species in tree.held_out:
        siblings = [s for s, g in tree.genus_of.items() if g == tree.genus_of[species] and s != species]
        assert len(siblings) >= 2
        assert all(tree.looks[species]["t"] not in tree.neighbours[s] for s in siblings)
    with pytest.raises(InputError, match="--unseen must be between 0 and 11"):
        build_tree(4, unseen=12)
    with pytest.raises(InputError, match="--depth"):
        build_tree(7)


# ---- long tail and ambiguity ------------------------------------------------------------------------


def test_class_sizes_follow_zipf_above_a_floor():
    # 3 classes, 3 per class floor, 30 spare split as 1 : 1/2 : 1/3 = 16.36, 8.18, 5.45
    assert class_sizes(3, 39) == [3 + 16, 3 + 8, 3 + 6]
    sizes = class_sizes(49, 10_000)
    assert sum(sizes) == 10_000 and sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 3 + round(9853 / sum(1 / r for r in range(1, 50)))
    assert min(sizes) >= 3
    with pytest.raises(InputError, match="at least 147"):
        class_sizes(49, 146)


def test_written_class_sizes_ambiguous_fraction_and_split(small_set):
    rows = _rows(small_set / "lineage.csv")
    sizes = Counter(r["label"] for r in rows)
    tree = build_tree(4, unseen=2)
    order = class_order(tree)
    assert [sizes[label] for label in order] == class_sizes(len(order), 200)
    assert order[0] == "detritus"
    ambiguous = Counter(r["label"] for r in rows if r["ambiguous"] == "1")
    for label, count in sizes.items():
        expected = 0 if label in NON_LIVING else round(AMBIGUOUS_FRACTION * count)
        assert ambiguous[label] == expected
    by_split = {split: Counter(r["label"] for r in rows if r["split"] == split) for split in ("train", "val", "test")}
    assert all(len(by_split[s]) == len(sizes) for s in by_split)  # every class (>= 3 images) in every split


def test_ambiguous_images_go_halfway_to_an_adjacent_species_only():
    tree = build_tree(4)
    genus = next(g for g in tree.genus_of.values() if sum(v == g for v in tree.genus_of.values()) == 4)
    species = [s for s, g in tree.genus_of.items() if g == genus]
    assert [tree.looks[s]["t"] for s in species] == [-0.75, -0.25, 0.25, 0.75]
    assert [tree.neighbours[s] for s in species] == [[-0.25], [-0.75, 0.25], [-0.25, 0.75], [0.25]]


def test_species_accuracy_bound():
    # non-ambiguous images are right but for the tails (2.1 sd to a midpoint), ambiguous ones at least half the time
    bound = species_accuracy_bound(draws=50_000)
    assert 0.8 * 0.96 + 0.2 * 0.5 < bound < 0.97
    assert species_accuracy_bound(draws=50_000) == bound


def test_ambiguous_images_sit_between_sibling_species():
    """Body aspect carries the species: ambiguous images' aspect lies between the two species' own."""
    tree = build_tree(4)
    genus = next(g for g in tree.genus_of.values() if sum(v == g for v in tree.genus_of.values()) == 2)
    first, second = [s for s, g in tree.genus_of.items() if g == genus]
    look = {**tree.looks[first], "shape": "disc", "appendage": "none", "texture": "plain"}

    def aspect(species_look, ambiguous, seed):
        image = np.asarray(draw_object(species_look, 96, np.random.default_rng(seed), ambiguous=ambiguous))
        ys, xs = np.nonzero(image < image[0, 0] - 30)
        coords = np.stack([xs, ys], 1).astype(float)
        eig = np.linalg.eigvalsh(np.cov(coords.T))
        return np.sqrt(eig[1] / eig[0])

    looks = {name: {**look, "t": tree.looks[name]["t"], "neighbours": tree.neighbours[name]}
             for name in (first, second)}
    low = np.median([aspect(looks[first], False, k) for k in range(12)])
    high = np.median([aspect(looks[second], False, k) for k in range(12)])
    middle = np.median([aspect(looks[first], True, k) for k in range(12)])
    assert low < middle < high
    assert abs(middle - (low + high) / 2) < 0.25 * (high - low)


# ---- files --------------------------------------------------------------------------------------


def test_layout_and_tables(small_set):
    assert sorted(p.name for p in small_set.iterdir()) == [
        "ecotaxa_export.tsv", "lineage.csv", "taxonomy.json", "test", "train", "unseen", "val"]
    taxonomy = Taxonomy.load(small_set / "taxonomy.json")
    for split in ("train", "val", "test"):
        assert all(folder.name in taxonomy for folder in (small_set / split).iterdir())
    lines = (small_set / "ecotaxa_export.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:5] == ["object_id", "img_file_name", "object_annotation_status",
                                        "object_annotation_category", "object_annotation_hierarchy"]
    assert set(lines[1].split("\t")) == {"[t]", "[f]"}
    export = _rows(small_set / "ecotaxa_export.tsv", "\t")[1:]
    lineage = _rows(small_set / "lineage.csv")
    assert len(export) == len(lineage) == 200
    for e, r in zip(export, lineage):
        assert e["img_file_name"] == r["path"] and (small_set / r["path"]).is_file()
        assert e["object_annotation_hierarchy"] == r["lineage"] and e["object_set"] == r["split"]
        assert e["object_annotation_status"] == "validated"
        node = taxonomy.index(r["label"])
        assert r["lineage"] == ">".join(taxonomy.names[i] for i in taxonomy.lineage(node)[1:])


def test_images_are_grayscale_cropped_and_of_varied_size(small_set):
    sizes = set()
    for path in list((small_set / "train").rglob("*.png"))[:60]:
        with Image.open(path) as image:
            assert image.mode == "L" and max(image.size) <= 32
            sizes.add(image.size)
    assert len(sizes) > 10


def test_same_seed_same_bytes_any_worker_count_other_seed_differs(tmp_path):
    synthesize(tmp_path / "a", seed=7, images=160, size=24, unseen=1, depth=3, workers=1)
    synthesize(tmp_path / "b", seed=7, images=160, size=24, unseen=1, depth=3, workers=2)
    synthesize(tmp_path / "c", seed=8, images=160, size=24, unseen=1, depth=3, workers=1)
    a, b, c = (_digest(tmp_path / name) for name in "abc")
    assert a == b
    assert a["taxonomy.json"] == c["taxonomy.json"]
    assert sum(a[k] != c.get(k) for k in a) > 100


def test_jpeg_format(tmp_path):
    synthesize(tmp_path / "j", seed=0, images=120, size=24, unseen=0, depth=3, image_format="jpg", workers=1)
    files = list((tmp_path / "j").rglob("*.jpg"))
    assert len(files) == 120 and not list((tmp_path / "j").rglob("*.png"))
    assert not (tmp_path / "j" / "unseen").exists()
    with pytest.raises(InputError, match="--format"):
        synthesize(tmp_path / "k", images=120, depth=3, image_format="gif")


def test_non_empty_out_dir_needs_force_and_interrupted_runs_leave_nothing(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not empty.*--force"):
        synthesize(out, images=120, size=24, unseen=0, depth=3, workers=1)
    assert (out / "mine.txt").read_text() == "keep"

    with pytest.raises(InputError, match="'mine.txt', which hier did not write there"):  # --force: own output only
        synthesize(out, images=120, size=24, unseen=0, depth=3, workers=1, force=True)
    assert (out / "mine.txt").read_text() == "keep"
    (out / "mine.txt").unlink()
    synthesize(out, images=120, size=24, unseen=0, depth=3, workers=1)
    first = (out / "lineage.csv").read_text()

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthesize(out, images=120, size=24, unseen=0, depth=3, workers=1, seed=1, force=True, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"] and (out / "lineage.csv").read_text() == first

    synthesize(out, images=120, size=24, unseen=0, depth=3, workers=1, seed=1, force=True)
    assert (out / "lineage.csv").read_text() != first and (out / "taxonomy.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no staging or old folder left


# ---- command line and picture ----------------------------------------------------------------------


def test_cli_writes_and_reports(tmp_path):
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--images", "150", "--size", "24",
                                      "--depth", "3", "--unseen", "1", "--seed", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "36 classes (train 78, val 36, test 36;" in output  # 35 species - 1 held out + 2 non-living
    assert "4 unseen images of 1 held-out species" in output
    assert len(list((tmp_path / "s").rglob("*.png"))) == 150 + 4


def test_cli_bad_input_raises_input_error(tmp_path):
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--images", "10"])
    assert isinstance(result.exception, InputError) and "--images must be at least" in str(result.exception)


def test_sample_grid_has_a_row_per_rank(tmp_path):
    sample_grid(tmp_path / "grid.png", size=32)
    with Image.open(tmp_path / "grid.png") as image:
        width, height = image.size
    assert image.format == "PNG" and height > 5 * 100 and width > height
