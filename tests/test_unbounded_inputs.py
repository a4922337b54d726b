"""Inputs whose cost has no bound, and raw exceptions (issue 28, class 3): each one line naming the file,
exit 2 (exit 1 for a full disk, naming the folder), no traceback, nothing written."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

EXPORT = "img_file_name\tobject_annotation_hierarchy\tobject_annotation_status\n"


def one_line(run_cli, *args, code=2):
    exit_code, _, err = run_cli(*args)
    lines = [line for line in err.splitlines() if not line.startswith("hier: warning:")]
    assert exit_code == code and len(lines) == 1 and lines[0].startswith("hier: error: "), err
    assert "Traceback" not in err
    return lines[0]


def alias_bomb(levels: int = 6) -> str:
    """Nine of the level below on each level: a few hundred bytes; the real one has more levels."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, levels)]
    return "\n".join(lines) + f"\nmean: *a{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_at_its_first_alias(run_cli, synth_dataset, tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    line = one_line(run_cli, "fit", synth_dataset, "--config", tmp_path / "bomb.yaml", "-o", tmp_path / "run")
    assert "bomb.yaml: line 2: not valid YAML (an alias (*a0) is not allowed" in line
    assert not (tmp_path / "run").exists()


def test_a_run_config_with_an_alias_is_refused(trained, run_copy, run_cli, tmp_path):
    run = run_copy()
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("interpolation: bilinear", "interpolation: *x")
                      .replace("head: classifier", "head: &x classifier"))
    image = next((trained.data / "test").rglob("*.png"))
    line = one_line(run_cli, "predict", run, image, "-c", "0.5", "-o", tmp_path / "p.csv")
    assert "config.yaml" in line and "alias" in line and not (tmp_path / "p.csv").exists()


def ecotaxa_zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_zip_bomb_is_refused_before_anything_is_extracted(run_cli, taxonomy_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    table = (EXPORT + "a.png\tliving>a\tvalidated\n").encode() + b" " * 20_000_000  # 20 MB, ~20 KB deflated
    ecotaxa_zip(tmp_path / "bomb.zip", {"export.tsv": table})
    line = one_line(run_cli, "taxo", "validate", taxonomy_file, tmp_path / "bomb.zip")
    assert "bomb.zip: member 'export.tsv' would expand to 20,000,0" in line and "zip bomb" in line
    assert not list((tmp_path / "cache").rglob("*.tsv"))


def test_taxo_build_from_a_zip_bomb_is_refused_too(run_cli, tmp_path):
    table = (EXPORT + "a.png\tliving>a\tvalidated\n").encode() + b" " * 20_000_000
    ecotaxa_zip(tmp_path / "bomb.zip", {"export.tsv": table})
    line = one_line(run_cli, "taxo", "build", "--source", "ecotaxa", tmp_path / "bomb.zip", "-o", tmp_path / "t.json")
    assert "bomb.zip: member 'export.tsv' would expand" in line and not (tmp_path / "t.json").exists()


def test_a_zip_with_a_bad_crc_is_named(run_cli, taxonomy_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    path = ecotaxa_zip(tmp_path / "bad.zip", {"export.tsv": (EXPORT + "a.png\tliving>a\tvalidated\n").encode()},
                       zipfile.ZIP_STORED)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"living>a", b"living>b", 1))  # the stored bytes change, not their CRC
    line = one_line(run_cli, "taxo", "validate", taxonomy_file, path)
    assert "bad.zip: damaged member 'export.tsv'" in line and "CRC" in line
    assert not (tmp_path / "cache" / "zips").exists() or not any((tmp_path / "cache" / "zips").iterdir())


def test_a_zip_with_a_file_and_a_folder_of_one_name_is_refused(run_cli, taxonomy_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    path = ecotaxa_zip(tmp_path / "clash.zip", {"export.tsv": (EXPORT + "a/b.png\tliving>a\tvalidated\n").encode(),
                                                 "a": b"a file", "a/b.png": b"an image"})
    line = one_line(run_cli, "taxo", "validate", taxonomy_file, path)
    assert "clash.zip: holds both a file and a folder named 'a'" in line


def test_a_table_cell_over_the_bound_names_the_line(run_cli, tmp_path):
    (tmp_path / "big.csv").write_text("lineage\nliving>a\nliving>" + "b" * 200_000 + "\n")
    line = one_line(run_cli, "taxo", "build", "--source", "csv", tmp_path / "big.csv", "--lineage-column", "lineage",
                    "-o", tmp_path / "out.json")
    assert "big.csv: line 3: a cell longer than 131,072 characters" in line
    assert not (tmp_path / "out.json").exists()


def test_an_empty_backbone_name_after_a_family_is_refused(run_cli, synth_dataset, tmp_path):
    line = one_line(run_cli, "fit", synth_dataset, "--backbone", "timm:", "-o", tmp_path / "run")
    assert "backbone 'timm:' needs a name after the ':'" in line
    assert not (tmp_path / "run").exists()


@pytest.fixture
def taxonomy_file(tmp_path):
    path = tmp_path / "taxonomy.json"
    path.write_text('{"format": "hier-taxonomy", "version": 1, "nodes": [{"id": "living", "parent": null}, '
                    '{"id": "a", "parent": "living"}]}')
    return path


def mounted(folder: Path, options: str) -> bool:
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          check=False, capture_output=True).returncode == 0


@pytest.mark.parametrize("options, code, message", [
    ("size=256k", 1, "cannot write (No space left on device); nothing was kept"),
    ("ro,size=256k", 2, "the folder is not writable"),
], ids=["full disk", "read-only disk"])
def test_data_synth_on_a_full_or_read_only_disk(run_cli, tmp_path, options, code, message):
    disk = tmp_path / "disk"
    if not mounted(disk, options):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        line = one_line(run_cli, "data", "synth", disk / "synth", "--images", "400", "--size", "64", code=code)
        assert message in line and str(disk) in line
        assert not list(disk.iterdir())  # nothing half-written kept
    finally:
        subprocess.run(["umount", str(disk)], check=False)
