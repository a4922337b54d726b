"""Predict, calibrate, evaluate and compare end to end on small trained runs."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from hier.infer import calibration as cal
from hier.infer import evaluate as evaluation, predict as inference
from hier.metrics import hierarchical as metrics
from hier.train import runs
from hier.heads.tree import TreeTensors
from hier.data.images import build_transform, load_image
from hier.taxo import InputError
from hier.core.tables import csv_text


def sample_images(trained, count=5) -> list[Path]:
    return sorted((trained.data / "test").rglob("*.png"))[:count]


def broken(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"this is not an image")
    return path


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def one_by_one(run_dir: Path, paths: list[Path], threshold: float) -> list[str]:
    """The node each image decodes to, scored alone (the reference for batched prediction)."""
    model, taxonomy, config = runs.load_trained(run_dir)
    transform = build_transform(config["image_size"], train=False, keep_size=config["keep_size"])
    tree = TreeTensors(taxonomy)
    with torch.no_grad():
        probs = torch.cat([model.node_probabilities(model(transform(load_image(p))[None])) for p in paths])
    return [taxonomy.ids[i] for i in metrics.decode(probs, threshold, tree.depth).tolist()]


def test_predict_csv_one_row_per_image_in_order_with_errors(trained, tmp_path):
    good = sample_images(trained)
    # batches of 2: [good, good] [broken, good] [broken, broken] [good, good]
    inputs = good[:2] + [broken(tmp_path, "a.png"), good[2], broken(tmp_path, "b.jpg"),
                         broken(tmp_path, "c.png")] + good[3:5]
    out = tmp_path / "predictions.csv"
    run = trained.runs["classifier"]
    decoding = cal.decoding(run, 0.6, use_calibration=False)
    summary = inference.predict(run, inputs, decoding, out=out, batch_size=2, progress=False)
    assert (summary.images, summary.unreadable, summary.out) == (8, 3, out)
    assert sum(summary.depth_counts.values()) == 5

    header, rows = read_csv(out)
    assert header == ["path", "node_id", "node_name", "depth", "confidence", "path_ids", "error"]
    assert [r["path"] for r in rows] == [str(p) for p in inputs]
    errors = [r for r in rows if r["error"]]
    assert [r["path"] for r in errors] == [str(tmp_path / n) for n in ("a.png", "b.jpg", "c.png")]
    assert all(r["node_id"] == "" and "not an image" in r["error"] for r in errors)
    answered = [r for r in rows if not r["error"]]
    assert [r["node_id"] for r in answered] == one_by_one(run, good, 0.6)
    for r in answered:
        lineage = r["path_ids"].split(">")
        assert lineage[0] == "root" and lineage[-1] == r["node_id"] and len(lineage) - 1 == int(r["depth"])
        assert float(r["confidence"]) >= 0.6
    assert not list(tmp_path.glob(".predictions.csv.*"))  # no temporary file left


def test_predict_jsonl_with_top_k(trained, tmp_path):
    inputs = sample_images(trained, 3) + [broken(tmp_path, "bad.png")]
    out = tmp_path / "p.jsonl"
    run = trained.runs["spheremulti"]
    inference.predict(run, inputs, cal.decoding(run, 0.5, use_calibration=False), out=out, top_k=3, progress=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4
    taxonomy = runs.load_trained(run)[1]
    leaves = {taxonomy.ids[i] for i in taxonomy.leaves}
    for record in records[:3]:
        assert list(record)[:7] == ["path", "node_id", "node_name", "depth", "confidence", "path_ids", "error"]
        assert record["error"] is None and record["confidence"] >= 0.5
        top = record["top_k"]
        assert len(top) == 3 and {t["node_id"] for t in top} <= leaves
        assert [t["confidence"] for t in top] == sorted((t["confidence"] for t in top), reverse=True)
    assert records[3]["node_id"] is None and "not an image" in records[3]["error"] and records[3]["top_k"] == []


def test_predict_ecotaxa_import_table(trained, tmp_path):
    images = tmp_path / "export" / "imgs"
    images.mkdir(parents=True)
    for p in sample_images(trained, 4):
        shutil.copy(p, images / p.name)
    broken(images, "zz.png")
    out = tmp_path / "export" / "ecotaxa_import.tsv"
    run = trained.runs["classifier"]
    summary = inference.predict(run, [images], cal.decoding(run, 0.3, use_calibration=False), out=out,
                                progress=False)
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert lines[0] == ["img_file_name", "object_id", "object_annotation_category", "object_annotation_hierarchy",
                        "object_annotation_status", "object_hier_confidence"]
    assert lines[1] == ["[t]", "[t]", "[t]", "[t]", "[t]", "[f]"]
    rows = lines[2:]
    assert summary.unreadable == 1 and len(rows) == 4  # the unreadable image cannot be imported: left out
    for name, object_id, category, hierarchy, status, confidence in rows:
        assert name.startswith("imgs/img_") and object_id == name[:-4].replace("/", "_")
        if hierarchy:  # an answer below the placeholder root: EcoTaxa's lineage from living / not-living
            assert hierarchy.split(">")[0] in ("living", "not-living") and hierarchy.split(">")[-1] == category
            assert status == "predicted"
        else:
            assert category == "" and status == ""
        assert 0.3 <= float(confidence) <= 1


def test_existing_output_is_kept_without_force_and_on_failure(trained, tmp_path, monkeypatch):
    out = tmp_path / "p.csv"
    out.write_text("old\n")
    run = trained.runs["classifier"]
    decoding = cal.decoding(run, 0.9, use_calibration=False)
    images = sample_images(trained, 3)
    with pytest.raises(InputError, match="exists; use --force"):
        inference.predict(run, images, decoding, out=out, progress=False)

    calls = []

    def fail_on_second_row(self, *args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, *args)

    original = inference.CsvWriter.write
    monkeypatch.setattr(inference.CsvWriter, "write", fail_on_second_row)
    with pytest.raises(RuntimeError, match="disk full"):
        inference.predict(run, images, decoding, out=out, force=True, progress=False)
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]

    monkeypatch.setattr(inference.CsvWriter, "write", original)
    inference.predict(run, images, decoding, out=out, force=True, progress=False)
    assert len(read_csv(out)[1]) == 3


def test_output_format_and_bad_inputs(trained, tmp_path):
    assert inference.output_format(Path("a.JSONL"), None) == "jsonl"
    assert inference.output_format(None, None) == "csv"
    assert inference.output_format(Path("x.txt"), "ecotaxa") == "ecotaxa"
    with pytest.raises(InputError, match="unknown output type '.txt'"):
        inference.output_format(Path("x.txt"), None)
    with pytest.raises(InputError, match="--format must be one of"):
        inference.output_format(None, "xml")
    with pytest.raises(InputError, match="no such file or folder"):
        inference.collect_images([tmp_path / "missing.png"])
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(InputError, match="not an image, a folder"):
        inference.collect_images([tmp_path / "notes.md"])
    with pytest.raises(InputError, match="no images in this folder"):
        inference.collect_images([tmp_path])


def test_collect_images_from_folders_and_tables(trained, tmp_path):
    folder = trained.data / "val"
    found = inference.collect_images([folder])
    assert found == sorted(folder.rglob("*.png")) and len(found) > 10  # recursive, in path order
    table = tmp_path / "list.csv"
    table.write_text("image,comment\n" + "".join(f"{os.path.relpath(p, tmp_path)},x\n" for p in found[:3])
                     + "missing.png,y\n")
    listed = inference.collect_images([table])
    assert [p.resolve() for p in listed[:3]] == found[:3] and listed[3] == tmp_path / "missing.png"
    export = trained.data / "ecotaxa_export.tsv"  # EcoTaxa's [t] line is not an image
    assert len(inference.collect_images([export])) == sum(1 for _ in export.open()) - 2


def test_held_out_split(trained, tmp_path):
    flat = trained.data / "test"  # class folders without splits
    samples, name, _ = inference.held_out_split(tmp_path, flat, None, "test")
    assert name == "all" and len(samples) == len(list(flat.rglob("*.png")))
    chosen = [str(s.path) for s in samples[:4]]
    (tmp_path / runs.SPLIT).write_text(json.dumps({"train": [], "val": chosen[:2], "test": chosen[2:]}))
    samples, name, _ = inference.held_out_split(tmp_path, flat, None, "test")
    assert name == "test" and [str(s.path) for s in samples] == chosen[2:]
    samples, name, _ = inference.held_out_split(tmp_path, flat, "val", "test")
    assert name == "val" and [str(s.path) for s in samples] == chosen[:2]
    with pytest.raises(InputError, match="no split 'extra'"):
        inference.held_out_split(tmp_path, flat, "extra", "test")
    samples, name, dataset = inference.held_out_split(tmp_path, trained.data, None, "val")
    assert name == "val" and len(samples) == len(dataset.splits["val"])


def test_calibrate_then_predict_uses_the_table(trained, run_copy, tmp_path):
    run = run_copy("classifier")
    calibration = cal.calibrate(run, trained.data, progress=False)
    val = sorted((trained.data / "val").rglob("*.png"))
    assert calibration.n == len(val) and calibration.split == "val" and len(calibration.table) == 50
    assert calibration.temperature > 0 and calibration.loss_after <= calibration.loss_before
    stored = json.loads((run / "calibration.json").read_text())
    assert stored["table"] == calibration.table and stored["delta"] == 0.05
    level = calibration.highest_certified
    assert level is not None  # the threshold 1.000 answers the root: always correct
    decoding = cal.decoding(run, level)
    assert decoding.calibrated and decoding.threshold == calibration.entry(level)["threshold"]
    out = tmp_path / "p.csv"
    inference.predict(run, val, decoding, out=out, progress=False)
    _, rows = read_csv(out)
    taxonomy = runs.load_trained(run)[1]
    targets = [taxonomy.index(p.parent.name) for p in val]
    answered = [taxonomy.index(r["node_id"]) for r in rows]
    tree = TreeTensors(taxonomy)
    correct = metrics.is_correct(torch.tensor(answered), torch.tensor(targets), tree).float().mean().item()
    assert correct == pytest.approx(calibration.entry(level)["correct"])  # the same split, the same answers


def test_evaluate_writes_every_metric_and_the_plot(trained, run_copy, tmp_path):
    run = run_copy("spheremulti")
    plot = tmp_path / "curve.png"
    result = evaluation.evaluate(run, trained.data, confidence=0.8, plot=plot, progress=False)
    for key in ("leaf_accuracy", "leaf_top5_accuracy", "balanced_accuracy", "hierarchical_precision",
                "hierarchical_recall", "hierarchical_f1", "hierarchical_f1_macro", "mistake_severity",
                "hierarchical_distance_at_1", "hierarchical_distance_at_5", "correct_at_confidence",
                "mean_depth_at_confidence", "information_recall_at_confidence", "operating_curve_area",
                "information_recall_at_correct_90", "information_recall_at_correct_95", "ece", "ece_per_level",
                "violation_rate", "per_level", "per_class_recall", "at_levels", "operating_curve", "unseen"):
        assert key in result, key
    assert result["split"] == "test" and result["images"] == len(list((trained.data / "test").rglob("*.png")))
    assert (result["calibrated"], result["threshold"], result["temperature"]) == (False, 0.8, 1.0)
    assert set(result["at_levels"]) == {"0.8", "0.9", "0.95"}
    assert result["at_levels"]["0.8"]["correct"] == pytest.approx(result["correct_at_confidence"])
    assert result["correct_at_confidence"] <= result["correct_at_confidence_upper_bound"] <= 1
    assert result["violation_rate"] == 0.0  # the max-constraint keeps sigmoid heads consistent
    assert 0 <= result["operating_curve_area"] <= 1
    assert set(result["per_level"]) == {"1", "2", "3", "4"}
    unseen = result["unseen"]
    assert unseen["images"] == len(list((trained.data / "unseen").rglob("*.png"))) and unseen["images"] > 0
    assert unseen["at_known_ancestor"] + unseen["in_wrong_leaf"] + unseen["elsewhere"] == pytest.approx(1)
    assert json.loads((run / evaluation.EVALUATION).read_text()) == json.loads(json.dumps(result))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_probabilities_matches_the_metric_functions(trained):
    taxonomy = runs.load_trained(trained.runs["classifier"])[1]
    tree = TreeTensors(taxonomy)
    g = torch.Generator().manual_seed(0)

    probs = TreeTensors(taxonomy).sum_up(torch.randn(300, len(taxonomy.leaves), generator=g).mul(3).softmax(-1))
    targets = torch.as_tensor(taxonomy.leaves)[torch.randint(0, len(taxonomy.leaves), (300,), generator=g)]
    result = evaluation.evaluate_probabilities(probs, targets, taxonomy, 0.7, level_thresholds={0.9: 0.85})
    assert result["correct_at_confidence"] == pytest.approx(metrics.at_confidence(probs, targets, tree, 0.7)["correct"])
    assert result["at_levels"]["0.9"]["threshold"] == 0.85
    full = metrics.operating_curve(probs, targets, tree)
    assert result["operating_curve_area"] == pytest.approx(metrics.curve_area(full))
    assert len(result["operating_curve"]["threshold"]) == min(len(full["threshold"]), evaluation.CURVE_POINTS)


def test_compare_reads_the_evaluations(trained, run_copy, tmp_path):
    runs_ = [run_copy("classifier"), run_copy("spheremulti")]
    with pytest.raises(InputError, match="run hier evaluate"):
        evaluation.compare(runs_)
    for run in runs_:
        evaluation.evaluate(run, trained.data, progress=False)
    rows, evaluations, notes = evaluation.compare(runs_)
    assert [r["run"] for r in rows] == ["classifier", "spheremulti"] and notes == []
    assert [r["head"] for r in rows] == ["classifier", "spheremulti"]
    assert list(rows[0]) == ["run"] + [key for key, _ in evaluation.COMPARE_COLUMNS]
    parsed = list(csv.DictReader(csv_text(rows).splitlines()))
    assert float(parsed[1]["hierarchical_f1"]) == pytest.approx(evaluations["spheremulti"]["hierarchical_f1"])
    evaluation.plot_curves(evaluations, tmp_path / "both.svg")
    assert (tmp_path / "both.svg").read_text().count("<svg") == 1
    evaluation.evaluate(runs_[1], trained.data, confidence=0.7, progress=False)
    assert evaluation.compare(runs_)[2] == ["the runs differ in confidence: 0.7, 0.9"]


def test_bad_plot_paths_are_refused_before_any_work(trained, tmp_path):
    run = trained.runs["classifier"]
    with pytest.raises(InputError, match="must end in .png, .svg or .pdf"):
        evaluation.evaluate(run, trained.data, plot=tmp_path / "curve.txt", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        evaluation.evaluate(run, trained.data, plot=tmp_path / "missing" / "curve.png", progress=False)
    assert not (run / evaluation.EVALUATION).exists()
