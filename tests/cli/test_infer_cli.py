"""``hier calibrate | predict | evaluate | compare`` as a user runs them: exit codes, output, files."""

import csv
import json

import pytest


@pytest.mark.parametrize("command", ["calibrate", "predict", "evaluate", "compare"])
def test_help_has_an_example(run_cli, command):
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and f"Example: hier {command} " in out


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_confidence_outside_zero_one_is_an_input_error(run_cli, trained, value):
    image = next((trained.data / "test").rglob("*.png"))
    code, out, err = run_cli("predict", trained.runs["classifier"], image, "--confidence", value)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"hier: error: --confidence must be in (0, 1], got {float(value):g}"]


def test_calibrate_predict_evaluate_compare(run_cli, trained, run_copy, tmp_path):
    first, second = run_copy("classifier"), run_copy("spheremulti")
    data = trained.data

    code, out, err = run_cli("calibrate", first, data)
    assert code == 0, err
    assert "temperature" in out and "calibration table" in out and (first / "calibration.json").is_file()

    out_csv = tmp_path / "p.csv"
    code, _, err = run_cli("predict", first, data / "test", "--confidence", "0.5", "-o", out_csv)
    assert code == 0, err
    assert "using calibration.json" in err and "written to" in err
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(list((data / "test").rglob("*.png")))
    code, _, err = run_cli("predict", first, data / "test", "--confidence", "0.5", "-o", out_csv)
    assert code == 2 and "exists; use --force" in err

    code, out, err = run_cli("predict", second, data / "test", "--uncalibrated", "--format", "jsonl", "--top-k", "2")
    assert code == 0 and "uncalibrated" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == len(rows) and all(len(r["top_k"]) == 2 for r in records)

    code, out, err = run_cli("evaluate", first, data, "--confidence", "0.5", "--json")
    assert code == 0, err
    result = json.loads(out)
    for key in ("leaf_accuracy", "hierarchical_f1", "mistake_severity", "correct_at_confidence",
                "mean_depth_at_confidence", "operating_curve_area", "ece"):
        assert isinstance(result[key], float), key
    assert result["calibrated"] is True and result["unseen"]["images"] > 0

    plot = tmp_path / "curve.png"
    code, out, err = run_cli("evaluate", second, data, "--plot", plot)
    assert code == 0, err
    assert "leaf_accuracy" in out and "per level" in out and "unseen classes" in out and plot.is_file()

    table = tmp_path / "compare.csv"
    code, out, err = run_cli("compare", first, second, "--csv", table, "--plot", tmp_path / "both.png")
    assert code == 0, err
    assert "classifier" in out and "spheremulti" in out and "hF1" in out
    assert "note: the runs differ in" in err  # calibration and confidence
    with table.open(newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["classifier", "spheremulti"]
    assert (tmp_path / "both.png").is_file()


def test_compare_needs_evaluations(run_cli, run_copy):
    code, _, err = run_cli("compare", run_copy("classifier"))
    assert code == 2 and "run hier evaluate" in err


def test_calibrate_and_evaluate_default_to_the_recorded_dataset(run_cli, run_copy):
    import yaml

    run = run_copy("classifier")
    code, out, err = run_cli("calibrate", run)
    assert code == 0 and "val images" in out and "certified on" in out and "calib images" in out, err
    code, out, err = run_cli("evaluate", run, "--json", "--confidence", "0.5")  # 23 calibration images: 0.87 at most
    assert code == 0 and json.loads(out)["split"] == "test", err
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "dataset": None}))
    for command in ("calibrate", "evaluate"):
        code, _, err = run_cli(command, run)
        assert code == 2 and f"give it: hier {command} RUN_DIR DATASET" in err


def test_calibrate_per_class_records_and_says_its_guarantee(run_cli, run_copy):
    run = run_copy("classifier")
    code, out, err = run_cli("calibrate", run, "--per-class")
    assert code == 0, err
    stored = json.loads((run / "calibration.json").read_text())
    assert stored["guarantee"] == "per-class"
    entry = next(e for e in stored["table"] if e["level"] == 0.5)
    # every class of the calibration part is in exactly one group or uncertified
    named = [c for g in entry["groups"] for c in g["classes"]] + entry["uncertified"]
    assert len(named) == len(set(named)) and named
    assert "the promise at 0.9: per class:" in " ".join(out.split())
    code, out, err = run_cli("calibrate", run)  # and back: the marginal table, said so
    assert code == 0 and json.loads((run / "calibration.json").read_text())["guarantee"] == "marginal", err


def test_explain_shows_the_path_and_where_each_confidence_stops(run_cli, trained, tmp_path):
    image = next((trained.data / "test").rglob("*.png"))
    plot = tmp_path / "path.png"
    code, out, err = run_cli("explain", trained.runs["classifier"], image, "-c", "0.99", "-c", "0.3", "-c", "0.6",
                             "--plot", plot)
    assert code == 0, err
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") == 4]
    path = [row for row in rows if not row[0].endswith("(off the path)")]
    probabilities = [float(row[1]) for row in path]  # root first, down the most probable path
    assert probabilities[0] == 1 and probabilities == sorted(probabilities, reverse=True)
    stops = {level: k for k, row in enumerate(rows) for level in row[2].split(", ") if level}
    assert set(stops) == {"0.3", "0.99", "0.6"}  # each asked confidence answered once
    assert stops["0.99"] <= stops["0.6"] < len(path)  # from 0.5 up, on the path; surer stops higher or as high
    assert plot.stat().st_size > 0
    code, _, err = run_cli("explain", trained.runs["classifier"], image, "--plot", plot)
    assert code == 2 and "--force" in err  # the figure is the command's own output: replaced only with --force
    code, _, err = run_cli("explain", trained.runs["classifier"], image, image)
    assert code == 2 and "at most" in err
