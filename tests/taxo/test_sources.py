"""CSV and EcoTaxa sources on real-format files."""

import zipfile

import pytest

from hier.taxo import InputError
from hier.taxo.csv_source import build_from_table
from hier.taxo.ecotaxa import build_from_ecotaxa, read_export
from hier.taxo.prune import dead_nodes, prune_dead_nodes

RANKS = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]


@pytest.fixture
def phyto_csv(data_dir):
    return data_dir / "phytoplankton-taxonomy" / "taxonomy.csv"


def by_name(t, name):
    found = [i for i, n in enumerate(t.names) if n == name]
    assert len(found) == 1, (name, found)
    return found[0]


def names_to_root(t, i):
    return [t.names[j] for j in t.lineage(i)]


def test_phytoplankton_rank_columns_every_folder_is_a_node(phyto_csv):
    import csv

    folders = [row["folder"] for row in csv.DictReader(phyto_csv.open())]
    t = build_from_table(phyto_csv, rank_columns=RANKS, label_column="folder")
    labels = [i for i in range(len(t)) if t.is_label(i)]
    assert len(folders) == 95
    # A folder that names its deepest taxon is that node; the rest hang under it; merged folders
    # with the same lineage and the same name are one node.
    assert len(labels) == len(set(folders))
    # a folder equal to its genus is the genus node, and the genus keeps its species
    chaeto = by_name(t, "Chaetoceros")
    assert t.ranks[chaeto] == "genus" and t.is_label(chaeto)
    species = {t.names[c] for c in t.children[chaeto]}
    assert {"Chaetoceros affinis", "Chaetoceros danicus", "Chaetoceros socialis"} <= species
    # an empty rank is skipped: Bacteriastrum has no order, so it hangs under its family
    assert names_to_root(t, by_name(t, "Bacteriastrum"))[-3:] == ["Bacillariophyceae", "Chaetocerotaceae",
                                                                   "Bacteriastrum"]
    # a folder that is not its taxon becomes a new node under the row's deepest rank
    colony = by_name(t, "Bacillariophyceae_type1_colony")
    assert t.names[t.parent[colony]] == "Bacillariophyceae" and t.ranks[colony] is None
    # unplaced classes and non-living ones sit under the added root
    assert t.names[t.root] == "root"
    assert t.parent[by_name(t, "Zooplankton")] == t.root
    assert names_to_root(t, by_name(t, "Bubbles")) == ["root", "not-living", "Bubbles"]


def test_pruning_keeps_labels(phyto_csv):
    t = build_from_table(phyto_csv, rank_columns=RANKS, label_column="folder")
    pruned = prune_dead_nodes(t)
    assert dead_nodes(pruned) == []
    assert len(pruned) < len(t)
    kept = {pruned.ids[i] for i in range(len(pruned)) if pruned.is_label(i)}
    assert kept == {t.ids[i] for i in range(len(t)) if t.is_label(i)}
    # Heterokontophyta has one child (Bacillariophyceae) and is no label: removed
    assert "Heterokontophyta" in t.names and "Heterokontophyta" not in pruned.names
    # Bellerochea is a label with one species under it: kept
    b = by_name(pruned, "Bellerochea")
    assert len(pruned.children[b]) == 1


def test_lineage_column_with_zooscannet_slashes(tmp_path):
    f = tmp_path / "z.tsv"
    f.write_text("objid\tlineage\tlabel\n1\t/living/Copepoda/Calanus\tcalanus\n2\t/living/Copepoda\tcopepoda\n"
                 "3\t/not-living/detritus\tdetritus\n")
    t = build_from_table(f, lineage_column="lineage", sep="/")
    assert t.ids[t.root] == "root"
    assert names_to_root(t, t.index("living>Copepoda>Calanus")) == ["root", "living", "Copepoda", "Calanus"]
    assert t.is_label(t.index("living>Copepoda"))


def test_same_name_under_different_parents_are_two_nodes(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("lineage\nliving>Calanus>egg\nliving>other>egg\n")
    t = build_from_table(f, lineage_column="lineage")
    eggs = [i for i, n in enumerate(t.names) if n == "egg"]
    assert len(eggs) == 2 and len({t.ids[i] for i in eggs}) == 2


def test_edge_list(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text("parent,child\n,life\nlife,animal\nlife,plant\nanimal,cat\n")
    t = build_from_table(f, parent_column="parent", child_column="child")
    assert t.ids[t.root] == "life"
    assert t.names[t.parent[t.index("cat")]] == "animal"


@pytest.mark.parametrize("content, options, message", [
    ("parent,child\na,b\nc,b\n", {"parent_column": "parent", "child_column": "child"},
     r"line 3: 'b' has two parents, 'a' and 'c'"),
    ("parent,child\na,b\nb,a\nr,x\n", {"parent_column": "parent", "child_column": "child"}, "cycle"),
    ("lineage\na>b\n", {"lineage_column": "lineag"}, r"no column 'lineag' \(did you mean 'lineage'\?\)"),
    ("lineage,x\na>b\n", {"lineage_column": "lineage"}, "line 2: 1 fields where the header has 2"),
    ("lineage\n", {"lineage_column": "lineage"}, "header but no rows"),
    ("lineage\na\n", {}, "choose one layout"),
])
def test_table_errors(tmp_path, content, options, message):
    f = tmp_path / "t.csv"
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        build_from_table(f, **options)


def test_ecotaxa_export_real_format(data_dir):
    path = data_dir / "ecotaxa_export.tsv"
    rows = read_export(path)
    assert len(rows) == 7 and rows[0].fields["object_id"] == "obj_1"  # quotes removed, [t] line skipped
    t = build_from_ecotaxa(path)  # validated only
    calanus = "living>Eukaryota>Opisthokonta>Holozoa>Metazoa>Arthropoda>Crustacea>Copepoda>Calanoida>Calanus"
    egg_calanus, egg_other = calanus + ">egg", "living>other>egg"
    assert t.names[t.index(egg_calanus)] == "egg<Calanus" and t.names[t.index(egg_other)] == "egg<other"
    assert t.parent[t.index(egg_calanus)] == t.index(calanus)  # a label with children stays a node
    assert "not-living>bubble" not in t  # predicted rows are left out by default
    assert "living>Eukaryota>Opisthokonta>Holozoa>Metazoa>Arthropoda>Crustacea>Copepoda>Calanoida>Acartiidae>Acartia" \
        not in t
    wide = build_from_ecotaxa(path, status=["validated", "dubious", "predicted"])
    assert "not-living>bubble" in wide and len(wide.leaves) == 6
    tree = prune_dead_nodes(t)
    assert [tree.names[i] for i in tree.lineage(tree.index(egg_calanus))] == [
        "root", "living", "Copepoda", "Calanus", "egg<Calanus"]


def test_ecotaxa_zip_and_traversal(tmp_path, data_dir):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as archive:
        archive.write(data_dir / "ecotaxa_export.tsv", "sample1/ecotaxa_sample1.tsv")
    assert len(build_from_ecotaxa(z).leaves) == 4
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.write(data_dir / "ecotaxa_export.tsv", "../evil.tsv")
    with pytest.raises(InputError, match="unsafe member path '../evil.tsv'"):
        build_from_ecotaxa(bad)


def test_ecotaxa_errors(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match="not an EcoTaxa export"):
        build_from_ecotaxa(f)
    f.write_text("object_annotation_hierarchy\tobject_annotation_status\nliving>a\tpredicted\n")
    with pytest.raises(InputError, match="no row has status validated .found: predicted"):
        build_from_ecotaxa(f)
    f.write_text("object_annotation_hierarchy\tx\nliving>a\t1\t2\n")
    with pytest.raises(InputError, match="x.tsv: line 2: 3 fields"):
        build_from_ecotaxa(f)
