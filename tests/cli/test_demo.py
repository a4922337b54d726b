"""``hier demo`` on the vendored real plankton (a slice of it, one epoch) and on the synthetic benchmark."""

import csv

import pytest

from hier.cli import demo_plan as demo
from hier.taxo import Taxonomy


def test_the_vendored_sample_spans_the_tree_within_its_budget(run_cli, tmp_path):
    sample = demo.vendored_sample()
    classes = demo.sample_classes()
    assert len(classes) == 30
    assert all(len(list((sample / "images" / c).glob("*.jpg"))) == 40 for c in classes)
    assert sum(p.stat().st_size for p in sample.rglob("*") if p.is_file()) < 5e6
    assert "Apache License" in (sample / "LICENSE").read_text() and "ai4os-hub" in (sample / "SOURCE.md").read_text()
    with (sample / "taxonomy.csv").open(newline="") as f:
        assert sorted(row["folder"] for row in csv.DictReader(f)) == classes

    code, _, err = run_cli(
        "taxo",
        "build",
        "--source",
        "csv",
        sample / "taxonomy.csv",
        "--rank-columns",
        demo.RANKS,
        "--label-column",
        "folder",
        "-o",
        tmp_path / "t.json",
    )
    assert code == 0, err
    tree = Taxonomy.load(tmp_path / "t.json")
    genus = tree.names.index("Chaetoceros")  # a genus label with species labels below it
    assert tree.is_label(genus) and tree.ranks[genus] == "genus" and not tree.is_leaf(genus)
    assert {tree.ranks[i] for i in range(len(tree))} >= {"kingdom", "phylum", "class", "genus", "species"}


def test_real_demo_answers_shallower_at_the_higher_confidence(run_cli, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--out", out, "--classes", 10, "--epochs", 1, "--image-size", 64)  # 32 calibration images: 0.9 certifiable
    assert code == 0, err
    assert "$ hier taxo build --source csv" in stdout and "at 0.9" in stdout and "Next:" in stdout
    assert (out / "run" / "calibration.json").is_file() and (out / "curve.png").stat().st_size > 0
    assert "$ hier report" in stdout and str(out / "report.html") in " ".join(stdout.split())
    assert "<!doctype html>" in (out / "report.html").read_text().lower()[:200]

    def depths(name):
        with (out / name).open(newline="") as f:
            return {row["path"]: int(row["depth"]) for row in csv.DictReader(f)}

    sure, bold = depths("sure.csv"), depths("bold.csv")
    held_out = {p.name.split("__")[0] for p in (out / "sample").iterdir()}
    assert held_out == set(demo.sample_classes()[:10])
    assert len(sure) == len(list((out / "sample").iterdir())) and sure.keys() == bold.keys()
    assert all(bold[p] >= sure[p] for p in sure)  # a lower confidence never answers higher up the tree


def test_demo_force_keeps_files_it_did_not_write(run_cli, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli("demo", "--out", out, "--force")
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "mine"
    code, _, err = run_cli("demo", "--out", tmp_path / "other", "--classes", 1)
    assert code == 2 and "--classes must be between 2 and 30" in err and not (tmp_path / "other").exists()


@pytest.mark.slow  # the synthetic path is the demo's former one, unchanged; the real one above is the default
def test_synthetic_demo_is_still_there(run_cli, tmp_path):
    code, stdout, err = run_cli("demo", "--synthetic", "--out", tmp_path / "demo", "--images", 600, "--epochs", 1)
    assert code == 0, err
    assert "$ hier data synth" in stdout and (tmp_path / "demo" / "bold.csv").is_file()
