"""The WordNet source, on the real WordNet 3.0 database (never skipped in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.taxo import wordnet
from hier.taxo.prune import dead_nodes
from hier.taxo.wordnet import build_wordnet, noun_index, read_wnids, wnids_from_folders

DATA = Path(__file__).parents[1] / "data"
TINY = DATA / "tiny_imagenet_wnids.txt"
DOG, CHIHUAHUA, EGYPTIAN_CAT, GOLDFISH = "n02084071", "n02085620", "n02124075", "n01443537"


def lineage(taxonomy, wnid):
    return [taxonomy.ids[j] for j in taxonomy.lineage(taxonomy.index(wnid))]


def all_root_paths(index, offset):
    """Every hypernym path from the root down to ``offset`` (brute force, for reference)."""
    above = index.hypernyms[offset]
    if not above:
        return [[offset]]
    return [path + [offset] for h in above for path in all_root_paths(index, h)]


# ---- the index -------------------------------------------------------------------------------


def test_cold_build_caches_the_whole_noun_hierarchy(cache):
    index = noun_index()
    assert index.version == "3.0"
    assert len(index.hypernyms) == 82115  # noun synsets of WordNet 3.0
    assert [o for o, above in index.hypernyms.items() if not above] == [1740]  # entity is the only root
    assert index.names[1443537] == "goldfish"
    assert index.hypernyms[2084071] == (2083346, 1317541)  # dog: canine.n.02, domestic_animal.n.01 (by name)
    assert (cache / "hier" / f"wordnet-nouns-v{wordnet._INDEX_VERSION}.json").is_file()


def test_warm_build_reads_only_the_cache_and_is_deterministic(cache):
    """A new process (another hash seed) builds the same tree from the cached index, without nltk."""
    expected = build_wordnet(read_wnids(TINY)).to_dict()
    assert build_wordnet(read_wnids(TINY)).to_dict() == expected
    code = ("import json, sys\n"
            "from hier.taxo.wordnet import build_wordnet, read_wnids\n"
            "taxonomy = build_wordnet(read_wnids(sys.argv[1]))\n"
            "print(json.dumps({'nltk': 'nltk' in sys.modules, 'taxonomy': taxonomy.to_dict()}))\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code, str(TINY)], check=False, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["nltk"] is False
    assert result["taxonomy"] == expected


def test_index_from_a_changed_database_is_not_used(cache, tmp_path):
    record = json.loads((cache / "hier" / f"wordnet-nouns-v{wordnet._INDEX_VERSION}.json").read_text())
    for stamp, usable in ((record["stamp"], True), ([record["stamp"][0] + 1, record["stamp"][1]], False)):
        path = tmp_path / f"index-{usable}.json"
        path.write_text(json.dumps({**record, "stamp": stamp}))
        st = path.stat()
        index = wordnet._read_index(path, st.st_size, st.st_mtime_ns)
        assert (index is not None) is usable


# ---- DAG -> tree -----------------------------------------------------------------------------


def test_tiny_imagenet_builds_prunes_and_every_wnid_is_a_leaf(cache):
    wnids = read_wnids(TINY)
    assert len(wnids) == len(set(wnids)) == 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no tiny-ImageNet class lies above another
        full = build_wordnet(wnids, prune=False)
        pruned = build_wordnet(wnids)
    for taxonomy in (full, pruned):
        assert taxonomy.source == "wordnet"
        assert sorted(taxonomy.ids[i] for i in taxonomy.leaves) == sorted(wnids)
        assert {taxonomy.ids[i] for i in range(len(taxonomy)) if taxonomy.is_label(i)} == set(wnids)
    assert full.ids[full.root] == "n00001740"
    assert dead_nodes(full) and not dead_nodes(pruned)
    assert len(pruned) < len(full)
    for wnid in wnids:  # pruning only drops nodes from each root path, never reorders it
        remaining = iter(lineage(full, wnid))
        assert all(node in remaining for node in lineage(pruned, wnid))


@pytest.mark.parametrize("wnid, path", [
    (GOLDFISH, ["n00015388", "n01466257", "n01471682", "n01473806", "n02512053", "n02514825", "n02528163",
                "n01428580", "n01438208", "n01439121"]),  # animal chordate vertebrate aquatic-vertebrate fish ...
    (EGYPTIAN_CAT, ["n01471682", "n01861778", "n01886756", "n02075296", "n02120997", "n02121620", "n02121808"]),
    ("n04540053", ["n00021939", "n03575240", "n03294048", "n03414162", "n02778669"]),  # volleyball: artifact ... ball
    ("n07747607", ["n13134947", "n07705931", "n07747055"]),  # orange: fruit, edible fruit, citrus
])
def test_known_hypernym_chains(cache, wnid, path):
    taxonomy = build_wordnet([wnid], prune=False)
    found = lineage(taxonomy, wnid)
    start = found.index(path[0])
    assert found[start:] == path + [wnid]
    assert found[0] == "n00001740"


def test_names_are_first_lemmas(cache):
    taxonomy = build_wordnet([GOLDFISH, EGYPTIAN_CAT, CHIHUAHUA])
    assert [taxonomy.names[taxonomy.index(w)] for w in (GOLDFISH, EGYPTIAN_CAT, CHIHUAHUA)] == [
        "goldfish", "Egyptian cat", "Chihuahua"]
    assert all(rank is None for rank in taxonomy.ranks)


def test_dog_keeps_a_different_parent_per_strategy(cache):
    """dog has two hypernyms: canine (deep, via mammal) and domestic animal (right under animal)."""
    parents = {}
    for tree in wordnet.TREES:
        taxonomy = build_wordnet([DOG], tree=tree, prune=False)
        parents[tree] = taxonomy.ids[taxonomy.parent[taxonomy.index(DOG)]]
    assert parents == {"longest": "n02083346", "shortest": "n01317541", "first": "n02083346"}
    shortest = build_wordnet([EGYPTIAN_CAT], tree="shortest", prune=False)
    assert lineage(shortest, EGYPTIAN_CAT) == ["n00001740", "n00001930", "n00002684", "n00003553", "n00004258",
                                               "n00004475", "n00015388", "n01317541", "n02121808", EGYPTIAN_CAT]


def test_root_paths_are_the_longest_or_shortest_hypernym_paths(cache):
    """Checked against every hypernym path, enumerated; ties go to the smaller offset."""
    index = noun_index()
    wnids = read_wnids(TINY)
    trees = {tree: build_wordnet(wnids, tree=tree, prune=False) for tree in wordnet.TREES}
    differs = 0
    for wnid in wnids:
        lengths = [len(p) - 1 for p in all_root_paths(index, int(wnid[1:]))]
        longest, shortest = (trees[t].depth[trees[t].index(wnid)] for t in ("longest", "shortest"))
        assert (longest, shortest) == (max(lengths), min(lengths))
        differs += longest != shortest
    assert differs > 0
    for tree, pick in (("longest", max), ("shortest", min)):
        taxonomy = trees[tree]
        for i in range(len(taxonomy)):
            if taxonomy.parent[i] < 0:
                continue
            above = index.hypernyms[int(taxonomy.ids[i][1:])]
            depth = {h: pick(len(p) - 1 for p in all_root_paths(index, h)) for h in above}
            best = pick(depth.values())
            assert taxonomy.ids[taxonomy.parent[i]] == f"n{min(h for h in above if depth[h] == best):08d}"
    first = trees["first"]
    for i in range(len(first)):
        if first.parent[i] >= 0:
            assert first.ids[first.parent[i]] == f"n{index.hypernyms[int(first.ids[i][1:])][0]:08d}"


def test_wnid_above_another_wnid_is_reported_and_stays_a_label(cache):
    with pytest.warns(UserWarning, match=f"{DOG} \\(dog\\) above {CHIHUAHUA} \\(Chihuahua\\)"):
        taxonomy = build_wordnet([DOG, CHIHUAHUA, EGYPTIAN_CAT])
    dog = taxonomy.index(DOG)
    assert not taxonomy.is_leaf(dog) and taxonomy.is_label(dog)
    assert sorted(taxonomy.ids[i] for i in taxonomy.leaves) == [CHIHUAHUA, EGYPTIAN_CAT]
    # toy dog, the single child of dog, is pruned; dog stays although it has one child left
    assert taxonomy.ids[taxonomy.parent[taxonomy.index(CHIHUAHUA)]] == DOG
    assert taxonomy.children[dog] == (taxonomy.index(CHIHUAHUA),)


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("wnids, message", [
    (["n99999999"], "n99999999 is not a noun synset of WordNet 3.0"),
    ([GOLDFISH, "dog"], "'dog' is not a WordNet noun id"),
    (["v01443537"], "'v01443537' is not a WordNet noun id"),
    ([], "no wnids given"),
])
def test_bad_wnids(cache, wnids, message):
    with pytest.raises(InputError, match=message):
        build_wordnet(wnids)


def test_unknown_tree_strategy(cache):
    with pytest.raises(InputError, match="unknown tree strategy 'deepest'"):
        build_wordnet([GOLDFISH], tree="deepest")


def test_read_wnids_skips_comments_and_takes_the_first_field(cache, tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# ImageNet classes\n\nn01443537 : goldfish, Carassius auratus\n  n02124075\t# Egyptian cat\n")
    assert read_wnids(path) == [GOLDFISH, EGYPTIAN_CAT]


@pytest.mark.parametrize("text, where", [
    ("n01443537\n# fine\nn0144353\n", "line 3: 'n0144353' is not a WordNet noun id"),
    ("n01443537\nn99999999\n", "line 2: n99999999 is not a noun synset"),
    ("n01443537\nn02124075\nn01443537\n", "line 3: n01443537 is listed twice (first on line 1)"),
    ("# nothing\n\n", "no wnids in the file"),
])
def test_read_wnids_errors_name_file_and_line(cache, tmp_path, text, where):
    path = tmp_path / "wnids.txt"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        read_wnids(path)
    assert str(error.value).startswith(str(path))
    assert where in str(error.value)


def test_read_wnids_missing_file(cache, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_wnids(tmp_path / "absent.txt")


# ---- class folders ---------------------------------------------------------------------------


def test_wnids_from_imagenet_layouts(cache, tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    for wnid in (EGYPTIAN_CAT, GOLDFISH):
        (root / "train" / wnid / "images").mkdir(parents=True)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "val" / "images").mkdir(parents=True)  # tiny-ImageNet's val/ is not class folders
    (root / "test" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text(f"{EGYPTIAN_CAT}\n{GOLDFISH}\n")
    assert wnids_from_folders(root) == [GOLDFISH, EGYPTIAN_CAT]
    assert wnids_from_folders(root / "train") == [GOLDFISH, EGYPTIAN_CAT]


def test_wnids_from_folders_errors(cache, tmp_path):
    classes = tmp_path / "classes"
    (classes / GOLDFISH).mkdir(parents=True)
    (classes / "images").mkdir()
    with pytest.raises(InputError, match="images: 'images' is not a WordNet noun id"):
        wnids_from_folders(classes)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        wnids_from_folders(tmp_path / "empty")
    with pytest.raises(InputError, match="no such folder"):
        wnids_from_folders(tmp_path / "absent")
    (tmp_path / "file.txt").write_text(GOLDFISH)
    with pytest.raises(InputError, match="expected a folder"):
        wnids_from_folders(tmp_path / "file.txt")
