"""Output formats of ``hier predict`` (the rows themselves are checked end to end in test_predict.py), and the
EcoTaxa import read back the way EcoTaxa's own import code reads it."""

import csv
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from hier.infer import predict as inference
from hier.infer import writers
from hier.infer.answer import answer_rule
from hier.taxo import InputError

# EcoTaxa's annotation states (DB/Object.py classif_qual_revert) and its table prefixes (BO/Mappings.py)
ECOTAXA_STATUSES = {"predicted", "dubious", "validated", "discarded"}
ECOTAXA_PREFIXES = {"object", "sample", "acq", "process", "img", "complement"}


def test_output_format():
    assert writers.output_format(Path("a.JSONL"), None) == "jsonl"
    assert writers.output_format(None, None) == "csv"
    assert writers.output_format(Path("ecotaxa_x.txt"), "ecotaxa") == "ecotaxa"
    assert writers.output_format(Path("upload.zip"), None) == "ecotaxa"
    with pytest.raises(InputError, match="unknown output type '.txt'"):
        writers.output_format(Path("x.txt"), None)
    with pytest.raises(InputError, match="--format must be one of"):
        writers.output_format(None, "xml")
    with pytest.raises(InputError, match="only tables named ecotaxa.*name it ecotaxa_preds.tsv"):
        writers.output_format(Path("preds.tsv"), None)
    with pytest.raises(InputError, match="--format ecotaxa writes a file"):
        writers.output_format(None, "ecotaxa")


def test_object_ids_are_unique_where_a_slash_or_an_extension_used_to_merge_them(tmp_path):
    paths = [tmp_path / "a" / "b_c.png", tmp_path / "a_b" / "c.png", tmp_path / "x.png", tmp_path / "x.jpg"]
    names = writers.ecotaxa_names(paths, tmp_path / "ecotaxa_p.tsv")
    ids = [writers.object_id(names[p]) for p in paths]
    assert len(set(ids)) == 4 and ids[0] == "a%2Fb_c.png"
    assert ids == [writers.object_id(n) for n in writers.ecotaxa_names(paths, tmp_path / "ecotaxa_p.tsv").values()]


def test_images_outside_the_tables_folder_are_refused(tmp_path):
    with pytest.raises(InputError, match="1 images lie outside the table's folder.*-o NAME.zip"):
        writers.ecotaxa_names([tmp_path / "a.png", tmp_path.parent / "b.png"], tmp_path / "ecotaxa_p.tsv")
    with pytest.raises(InputError, match="given twice"):
        writers.ecotaxa_names([tmp_path / "a.png", tmp_path / "d" / ".." / "a.png"], tmp_path / "ecotaxa_p.tsv")


# ---- read back as EcoTaxa does ------------------------------------------------------------------


def ecotaxa_read(bundle: Path) -> list[dict]:
    """The rows EcoTaxa would import from a folder: BO/Bundle.py's TSV_FILTERS, then BO/TSVFile.py's open()
    (latin-1 unless a UTF-8 byte order mark), validate_structure (Table_Field headers, type line) and
    validate_content (object_id present, image found relative to the table, no (object, image) twice, a
    category with a status and a status with a category). Fails on what EcoTaxa would report."""
    tables = sorted(p for pattern in ("**/ecotaxa*.txt", "**/ecotaxa*.tsv") for p in bundle.glob(pattern))
    assert tables, "No .txt or .tsv file was found, of which name starts with 'ecotaxa'"
    rows, seen_objects = [], set()
    for table in tables:
        with open(table, encoding="latin_1") as f:
            bom = f.read(3) == "ï»¿"
        assert bom, "without a byte order mark EcoTaxa reads the table as latin-1"
        with open(table, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quotechar='"')
            fields = {raw: raw.strip(" \t").lower() for raw in reader.fieldnames}
            types = next(reader)
            for field in fields.values():
                prefix, _, rest = field.partition("_")
                assert rest and prefix in ECOTAXA_PREFIXES, f"Invalid Header '{field}'"
            assert set(types.values()) <= {"[t]", "[f]"}
            for line, row in enumerate(reader, start=3):
                lig = {fields[k]: v for k, v in row.items()}
                object_id, image = lig["object_id"].strip(), lig["img_file_name"].strip()
                assert object_id, f"line {line}: Missing object_id."
                assert table.parent.joinpath(image).exists(), f"line {line}: Missing Image '{image}'."
                assert not os.path.isabs(image)
                assert (object_id, image) not in seen_objects
                status, category = lig["object_annotation_status"], lig["object_annotation_category"].strip()
                assert bool(status) == bool(category), f"line {line}: a category needs a status and the reverse"
                assert not status or status in ECOTAXA_STATUSES
                for field, kind in types.items():
                    if kind == "[f]" and lig[fields[field]].strip():
                        float(lig[fields[field]])
                seen_objects.add((object_id, image))
                rows.append(lig)
    assert len({r["object_id"] for r in rows}) == len(rows), "EcoTaxa merges rows with one object_id"
    return rows


def check_rows(rows: list[dict], count: int) -> None:
    assert len(rows) == count
    for row in rows:
        hierarchy, category = row["object_annotation_hierarchy"], row["object_annotation_category"]
        assert row["object_id"] == writers.object_id(row["img_file_name"])
        if hierarchy:  # an answer below the placeholder root: the lineage beside the name
            assert hierarchy.split(">")[0] in ("living", "not-living") and hierarchy.split(">")[-1] == category
            assert row["object_annotation_status"] == "predicted" and int(row["object_hier_depth"]) >= 1
        assert 0.3 <= float(row["object_hier_confidence"]) <= 1


def test_ecotaxa_table_imports_as_ecotaxa_reads_it(trained, tmp_path):
    images = tmp_path / "export" / "imgs"
    for k, p in enumerate(sorted((trained.data / "test").rglob("*.png"))[:4]):
        target = images / ("a" if k % 2 else "a_b") / ("b_c.png" if k < 2 else f"é{k}.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    (images / "zz.png").write_bytes(b"not an image")
    out = tmp_path / "export" / "ecotaxa_import.tsv"
    run = trained.runs["classifier"]
    summary = inference.predict(run, [images], answer_rule(run, 0.3, use_calibration=False), out=out,
                                progress=False)
    assert summary.unreadable == 1  # left out: an import cannot hold it
    rows = ecotaxa_read(out.parent)
    check_rows(rows, 4)
    assert {r["img_file_name"] for r in rows} >= {"imgs/a/b_c.png", "imgs/a_b/b_c.png", "imgs/a_b/é2.png"}


def test_ecotaxa_zip_holds_the_images_and_imports(trained, tmp_path):
    images = sorted((trained.data / "test").rglob("*.png"))[:3]
    out = tmp_path / "upload.zip"
    run = trained.runs["classifier"]
    inference.predict(run, images, answer_rule(run, 0.3, use_calibration=False), out=out, progress=False)
    with zipfile.ZipFile(out) as archive:
        assert "ecotaxa_upload.tsv" in archive.namelist()
        archive.extractall(tmp_path / "unpacked")
    check_rows(ecotaxa_read(tmp_path / "unpacked"), 3)


# ---- one output, two writers --------------------------------------------------------------------


def test_an_output_written_meanwhile_is_kept_and_the_second_writer_fails(tmp_path):
    out = tmp_path / "p.csv"
    with pytest.raises(InputError, match="written by another process while this one ran"), \
            writers.atomic_open(out, "w", exclusive=True) as f:
        f.write("second\n")
        out.write_text("first\n")  # what another predict run renames into place meanwhile
    assert out.read_text() == "first\n" and [p.name for p in tmp_path.iterdir()] == ["p.csv"]
