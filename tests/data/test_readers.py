"""Dataset readers: class folders, tables, EcoTaxa exports and zips, the same set read each way (torch-free)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.data.labels import resolve_labels
from hier.data.readers import read_dataset
from hier.taxo import Taxonomy
from hier.taxo.csv_source import build_from_table

PHYTO = Path(__file__).parents[1] / "data" / "phytoplankton"
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                        "3a7e9b550000000a49444154789c63600000000200015e0a4f8a0000000049454e44ae426082")


def _touch_images(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(PNG_1PX)


def _by_split(dataset, taxonomy) -> dict[str, list[tuple[str, int]]]:
    nodes = resolve_labels(dataset, taxonomy)
    return {name: sorted((str(s.path), nodes[s.label]) for s in samples) for name, samples in dataset.splits.items()}


# ---- the same synthetic set, read four ways -------------------------------------------------------


def test_folder_tree_ecotaxa_tsv_and_lineage_csv_give_the_same_samples(small_set):
    taxonomy = Taxonomy.load(small_set / "taxonomy.json")
    tree = read_dataset(small_set)
    assert tree.kind == "folders" and set(tree.splits) == {"train", "val", "test"}
    assert tree.ignored == [small_set / "unseen"]
    expected = _by_split(tree, taxonomy)
    assert sum(map(len, expected.values())) == 200

    tsv = read_dataset(small_set / "ecotaxa_export.tsv")
    assert tsv.kind == "ecotaxa"
    assert tsv.samples[0].label.startswith(("living>", "not-living>"))  # the hierarchy, not the folder name
    assert _by_split(tsv, taxonomy) == expected
    assert _by_split(read_dataset(small_set / "lineage.csv"), taxonomy) == expected
    assert _by_split(read_dataset(small_set / "lineage.csv", label_column="lineage"), taxonomy) == expected


def test_ecotaxa_zip_reads_like_the_tsv(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(small_set.rglob("*")):
            if path.is_file() and path.name != "lineage.csv" and "unseen" not in path.parts:
                z.write(path, f"export/{path.relative_to(small_set)}")
    taxonomy = Taxonomy.load(small_set / "taxonomy.json")
    zipped = read_dataset(archive)
    assert zipped.kind == "ecotaxa" and zipped.root.is_relative_to(tmp_path / "cache")

    def relative(dataset, root):
        return {k: sorted((str(Path(p).relative_to(root)), n) for p, n in v)
                for k, v in _by_split(dataset, taxonomy).items()}

    tsv = read_dataset(small_set / "ecotaxa_export.tsv")
    assert relative(zipped, zipped.root / "export") == relative(tsv, small_set)
    assert read_dataset(archive).root == zipped.root  # extracted once, then reused


def test_unseen_folder_holds_genera_of_the_held_out_species(small_set):
    taxonomy = Taxonomy.load(small_set / "taxonomy.json")
    unseen = read_dataset(small_set / "unseen")
    nodes = resolve_labels(unseen, taxonomy)
    assert len(nodes) == 2
    for label, node in nodes.items():
        assert taxonomy.ranks[node] == "genus" and not taxonomy.is_leaf(node)
        held_out = {s.path.name.rsplit("_", 1)[0] for s in unseen.samples if s.label == label}
        assert held_out and not held_out & set(taxonomy.ids)  # the species themselves are not in the taxonomy


# ---- folder layouts ----------------------------------------------------------------------------


def test_tiny_imagenet_layout_reads_with_wnid_labels(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819"]
    (root / "wnids.txt").parent.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for wnid in wnids:
        _touch_images(root / "train" / wnid / "images", [f"{wnid}_{k}.JPEG" for k in range(3)])
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t10\t10\n")
    _touch_images(root / "val" / "images", ["val_0.JPEG", "val_1.JPEG", "val_2.JPEG"])
    (root / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn01629819\t1\t2\t3\t4\nval_1.JPEG\tn01443537\t0\t0\t9\t9\nval_2.JPEG\tn01629819\t5\t5\t6\t6\n")
    _touch_images(root / "test" / "images", ["test_0.JPEG"])  # unlabelled

    with pytest.warns(UserWarning, match="split 'test' left out"):
        dataset = read_dataset(root)
    assert dataset.kind == "tiny-imagenet"
    assert set(dataset.splits) == {"train", "val"}
    assert Counter(s.label for s in dataset.split("train")) == {"n01443537": 3, "n01629819": 3}
    assert all(s.path.parent.name == "images" and s.path.suffix == ".JPEG" for s in dataset.split("train"))
    assert [(s.path.name, s.label) for s in dataset.split("val")] == [
        ("val_0.JPEG", "n01629819"), ("val_1.JPEG", "n01443537"), ("val_2.JPEG", "n01629819")]


def test_tiny_imagenet_annotation_naming_a_missing_image_is_an_input_error(tmp_path):
    _touch_images(tmp_path / "train" / "n01" / "images", ["a.JPEG"])
    _touch_images(tmp_path / "val" / "images", ["val_0.JPEG"])
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\nval_9.JPEG\tn01\n")
    with pytest.raises(InputError, match="val_9.JPEG"):
        read_dataset(tmp_path)


def test_whoi_year_folders_are_merged_and_the_class_folder_is_the_label(tmp_path):
    _touch_images(tmp_path / "2006" / "Asterionellopsis", ["a.png", "b.png"])
    _touch_images(tmp_path / "2007" / "Asterionellopsis", ["c.png"])
    _touch_images(tmp_path / "2007" / "detritus", ["d.png"])
    dataset = read_dataset(tmp_path)
    assert dataset.kind == "whoi" and list(dataset.splits) == ["all"]
    assert Counter(s.label for s in dataset.samples) == {"Asterionellopsis": 3, "detritus": 1}


def test_kaggle_train_folder_and_hidden_or_non_image_files(tmp_path):
    _touch_images(tmp_path / "train" / "copepod", ["1.jpg", "2.JPG", ".3.jpg"])
    (tmp_path / "train" / "copepod" / "notes.txt").write_text("not an image")
    _touch_images(tmp_path / "train" / ".ipynb_checkpoints", ["x.jpg"])
    dataset = read_dataset(tmp_path)
    assert list(dataset.splits) == ["train"] and dataset.has_splits
    assert [s.path.name for s in dataset.split("train")] == ["1.jpg", "2.JPG"]
    with pytest.raises(InputError, match="no split 'val'.*train"):
        dataset.split("val")


def test_empty_dataset_folder_and_empty_class_folder_are_input_errors_naming_the_folder(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: no class folders"):
        read_dataset(tmp_path)
    _touch_images(tmp_path / "diatom", ["a.png"])
    (tmp_path / "ciliate").mkdir()
    (tmp_path / "ciliate" / "readme.txt").write_text("")
    with pytest.raises(InputError, match=f"{tmp_path / 'ciliate'}: class folder without images"):
        read_dataset(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        read_dataset(tmp_path / "absent")


# ---- tables and EcoTaxa exports ------------------------------------------------------------------


def test_csv_with_set_column_and_detected_columns(tmp_path):
    _touch_images(tmp_path / "imgs", ["a.png", "b.png", "c.png"])
    (tmp_path / "list.csv").write_text("objid,path,taxon,set\n1,imgs/a.png,Calanus,train\n"
                                       "2,imgs/b.png,Oithona,validation\n3,imgs/c.png,Calanus,test\n")
    dataset = read_dataset(tmp_path / "list.csv")
    assert dataset.kind == "table"
    assert {k: [(s.path.name, s.label) for s in v] for k, v in dataset.splits.items()} == {
        "train": [("a.png", "Calanus")], "val": [("b.png", "Oithona")], "test": [("c.png", "Calanus")]}


def test_table_column_flags_and_errors(tmp_path):
    _touch_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "t.tsv").write_text("file_id\tname\tfold\na.png\tx\t1\nb.png\ty\t2\n")
    with pytest.raises(InputError, match="no image-path column.*--path-column"):
        read_dataset(tmp_path / "t.tsv")
    dataset = read_dataset(tmp_path / "t.tsv", path_column="file_id", label_column="name", split_column="fold")
    assert {k: [s.label for s in v] for k, v in dataset.splits.items()} == {"1": ["x"], "2": ["y"]}
    assert not dataset.missing
    with pytest.raises(InputError, match="no column 'nme'.*'name'"):
        read_dataset(tmp_path / "t.tsv", path_column="file_id", label_column="nme")


def test_listed_images_that_do_not_exist_are_left_out_with_a_warning(tmp_path):
    _touch_images(tmp_path, ["a.png"])
    (tmp_path / "t.csv").write_text("path,label\na.png,x\ngone.png,y\n")
    with pytest.warns(UserWarning, match="1 listed images do not exist"):
        dataset = read_dataset(tmp_path / "t.csv")
    assert [s.path.name for s in dataset.samples] == ["a.png"] and dataset.missing == [tmp_path / "gone.png"]
    (tmp_path / "none.csv").write_text("path,label\ngone.png,y\n")
    with pytest.raises(InputError, match="none of the 1 listed images exists"):
        read_dataset(tmp_path / "none.csv")


def test_ecotaxa_status_filter_and_extra_image_ranks(tmp_path):
    _touch_images(tmp_path / "img", ["1.jpg", "1b.jpg", "2.jpg", "3.jpg"])
    header = "object_id\timg_file_name\timg_rank\tobject_annotation_status\tobject_annotation_hierarchy\n"
    types = "[t]\t[t]\t[f]\t[t]\t[t]\n"
    rows = ("o1\timg/1.jpg\t0\tvalidated\tliving>Copepoda\no1\timg/1b.jpg\t1\tvalidated\tliving>Copepoda\n"
            "o2\timg/2.jpg\t0\tpredicted\tliving>Copepoda\no3\timg/3.jpg\t0\tValidated\tnot-living>detritus\n")
    (tmp_path / "export.tsv").write_text(header + types + rows)
    dataset = read_dataset(tmp_path / "export.tsv")
    assert [(s.path.name, s.label) for s in dataset.samples] == [("1.jpg", "living>Copepoda"),
                                                                 ("3.jpg", "not-living>detritus")]
    assert len(read_dataset(tmp_path / "export.tsv", status=None).samples) == 3
    assert len(read_dataset(tmp_path / "export.tsv", status=("predicted", "validated")).samples) == 3
    with pytest.raises(InputError, match="no row has status dubious.*predicted"):
        read_dataset(tmp_path / "export.tsv", status=("dubious",))


@pytest.mark.parametrize("member", ["../evil.png", "/tmp/evil.png", "a/../../evil.png"])
def test_zip_members_escaping_the_archive_are_refused(tmp_path, monkeypatch, member):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "sub" / "export.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("export.tsv", "img_file_name\tobject_annotation_hierarchy\nevil.png\tliving>x\n")
        z.writestr(member, PNG_1PX)
    with pytest.raises(InputError, match="unsafe member path"):
        read_dataset(archive)
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    assert not (tmp_path / "cache").exists()  # refused before anything was extracted


# ---- real data ---------------------------------------------------------------------------------


def test_real_phytoplankton_subset_reads_and_resolves_at_mixed_depth():
    dataset = read_dataset(PHYTO / "images")
    assert dataset.kind == "folders" and list(dataset.splits) == ["all"]
    assert Counter(s.label for s in dataset.samples) == {
        "Bubbles": 5, "Chaetoceros": 5, "Chaetoceros_affinis": 5, "Detritus": 5, "Tripos_fusus": 5}
    taxonomy = build_from_table(PHYTO / "taxonomy.csv", label_column="folder",
                                rank_columns="kingdom,phylum,class,order,family,genus,species".split(","))
    nodes = resolve_labels(dataset, taxonomy)
    genus, species = nodes["Chaetoceros"], nodes["Chaetoceros_affinis"]
    assert taxonomy.parent[species] == genus and taxonomy.names[species] == "Chaetoceros affinis"
    assert taxonomy.names[taxonomy.parent[nodes["Bubbles"]]] == "not-living"


def test_datasets_module_does_not_import_torch():
    code = "import sys, hier.data.readers, hier.data.synth; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dataset_root_may_be_a_symlinked_copy(tmp_path):
    shutil.copytree(PHYTO / "images", tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    dataset = read_dataset(tmp_path / "link")
    assert all(s.path.is_relative_to(tmp_path / "link") for s in dataset.samples)
