"""Names that are not plain text in what predict writes (issue 28, class 5): file names that are not UTF-8,
cells a spreadsheet would run as formulas (OWASP: a leading single quote), backslashes in zip member names."""

from __future__ import annotations

import csv
import json
import os
import zipfile

from hier.infer.writers import object_id, path_cell, text_cell


def images(trained, folder, *names) -> None:
    """Copies of one test image under each name (bytes or text)."""
    os.makedirs(folder, exist_ok=True)
    data = next((trained.data / "test").rglob("*.png")).read_bytes()
    for name in names:
        with open(os.path.join(os.fsencode(folder), os.fsencode(name)), "wb") as f:
            f.write(data)


def test_a_file_name_that_is_not_utf8_gets_its_row(trained, run_cli, tmp_path):
    images(trained, tmp_path / "in", b"caf\xe9.png", "good.png")
    for out in ("p.csv", "p.jsonl"):
        code, _, err = run_cli("predict", trained.runs["classifier"], tmp_path / "in", "-c", "0.5",
                               "-o", tmp_path / out)
        assert code == 0, err
        text = (tmp_path / out).read_text(encoding="utf-8")
        paths = [json.loads(line)["path"] for line in text.splitlines()] if out.endswith(".jsonl") else \
            [row["path"] for row in csv.DictReader(text.splitlines())]
        assert sorted(os.path.basename(p) for p in paths) == ["caf\\xe9.png", "good.png"]


def test_formula_cells_are_escaped_and_numbers_kept(trained, run_cli, tmp_path):
    images(trained, tmp_path / "in", "=HYPERLINK(1).png", "+1.png", "-2.png", "@x.png")
    code, _, err = run_cli("predict", trained.runs["classifier"], tmp_path / "in", "-c", "0.5", "-o",
                           tmp_path / "p.csv", "--top-k", "2")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 4
    for row in rows:
        assert row["path"][0] not in "=+-@", row  # an absolute path, or "./" before a relative one
        assert float(row["confidence"]) >= 0 and float(row["top1_confidence"]) >= 0  # numbers stay numbers
    assert path_cell("=cmd.png") == "./=cmd.png" and path_cell("-0.5.png") == "./-0.5.png"
    assert [text_cell(t) for t in ("=1+1", "+1", "-x", "@SUM(A1)", "\tx", "\rx", "Calanus")] == \
        ["'=1+1", "'+1", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "Calanus"]


def test_ecotaxa_cells_are_escaped(trained, run_cli, tmp_path):
    images(trained, tmp_path / "in", "=cmd.png", "plain.png")
    out = tmp_path / "in" / "ecotaxa_p.tsv"
    code, _, err = run_cli("predict", trained.runs["classifier"], tmp_path / "in", "-c", "0.5", "-o", out)
    assert code == 0, err
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8-sig").splitlines()[2:]]
    first = {row[0]: row for row in rows}
    assert set(first) == {"./=cmd.png", "plain.png"}
    assert first["./=cmd.png"][1] == object_id("=cmd.png") == "%3Dcmd.png"
    assert all(cell[:1] not in "=+-@" for row in rows for cell in row)


def test_a_backslash_in_a_name_never_reaches_a_zip_as_a_separator(trained, run_cli, tmp_path):
    images(trained, tmp_path / "in", "x\\..\\..\\evil.png", "good.png")
    code, _, err = run_cli("predict", trained.runs["classifier"], tmp_path / "in", "-c", "0.5", "-o",
                           tmp_path / "p.zip")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        names = archive.namelist()
    assert "x_.._.._evil.png" in names and not any("\\" in n for n in names)
    code, _, err = run_cli("predict", trained.runs["classifier"], tmp_path / "in", "-c", "0.5", "-o",
                           tmp_path / "in" / "ecotaxa_p.tsv")
    assert code == 2 and "a backslash in an image's name" in err, err
