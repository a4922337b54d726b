"""``hier predict`` end to end on small trained runs: rows, formats, errors and inputs."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hier import runs
from hier.data.images import build_transform, load_image
from hier.infer import predict as inference
from hier.infer import writers
from hier.infer.answer import answer_rule, decode
from hier.taxo import InputError
from hier.tree import TreeTensors


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
    return [taxonomy.ids[i] for i in decode(probs, threshold, tree.depth).tolist()]


def test_predict_csv_one_row_per_image_in_order_with_errors(trained, tmp_path):
    good = sample_images(trained)
    # batches of 2: [good, good] [broken, good] [broken, broken] [good, good]
    inputs = good[:2] + [broken(tmp_path, "a.png"), good[2], broken(tmp_path, "b.jpg"),
                         broken(tmp_path, "c.png")] + good[3:5]
    out = tmp_path / "predictions.csv"
    run = trained.runs["classifier"]
    rule = answer_rule(run, 0.6, use_calibration=False)
    summary = inference.predict(run, inputs, rule, out=out, batch_size=2, progress=False)
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
    inference.predict(run, inputs, answer_rule(run, 0.5, use_calibration=False), out=out, top_k=3, progress=False)
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


def test_existing_output_is_kept_without_force_and_on_failure(trained, tmp_path, monkeypatch):
    out = tmp_path / "p.csv"
    out.write_text("old\n")
    run = trained.runs["classifier"]
    rule = answer_rule(run, 0.9, use_calibration=False)
    images = sample_images(trained, 3)
    with pytest.raises(InputError, match="exists; use --force"):
        inference.predict(run, images, rule, out=out, progress=False)

    calls = []

    def fail_on_second_row(self, *args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, *args)

    original = writers.CsvWriter.write
    monkeypatch.setattr(writers.CsvWriter, "write", fail_on_second_row)
    with pytest.raises(RuntimeError, match="disk full"):
        inference.predict(run, images, rule, out=out, force=True, progress=False)
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]

    monkeypatch.setattr(writers.CsvWriter, "write", original)
    inference.predict(run, images, rule, out=out, force=True, progress=False)
    assert len(read_csv(out)[1]) == 3


def test_collect_images_refuses_bad_inputs(tmp_path):
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


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl", "ecotaxa_p.tsv"])
def test_a_stopped_predict_is_continued_by_the_same_command_and_no_other(trained, tmp_path, monkeypatch, name):
    run = trained.runs["classifier"]
    images = [Path(shutil.copy(p, tmp_path / p.name)) for p in sample_images(trained, 12)]
    rule = answer_rule(run, 0.9, use_calibration=False)
    whole = tmp_path / name.replace("p.", "whole.")
    inference.predict(run, images, rule, out=whole, batch_size=4, progress=False)
    out, written, original = tmp_path / name, [], writers.Rows.write

    def counted(stop_at=None):
        def write(self, path, *args):
            if len(written) == stop_at:
                raise KeyboardInterrupt
            written.append(path)
            return original(self, path, *args)
        monkeypatch.setattr(writers.Rows, "write", write)
        written.clear()

    def stopped():
        counted(stop_at=6)  # in the second batch: the first is kept
        with pytest.raises(KeyboardInterrupt):
            inference.predict(run, images, rule, out=out, batch_size=4, progress=False)
        assert not out.exists() and json.loads((tmp_path / f".{name}.partial.json").read_text())["images"] == 4
        counted()

    stopped()
    summary = inference.predict(run, images, rule, out=out, batch_size=4, progress=False)
    assert written == images[4:]  # the rows kept are not computed again
    assert out.read_bytes() == whole.read_bytes()
    assert summary.images == sum(summary.depth_counts.values()) == 12
    assert not list(tmp_path.glob(f".{name}.*"))

    out.unlink()
    stopped()
    os.utime(images[0], ns=(0, 0))  # an image answered before changed: its row may no longer hold
    inference.predict(run, images, rule, out=out, batch_size=4, progress=False)
    assert written == images
    out.unlink()
    stopped()
    inference.predict(run, images, answer_rule(run, 0.5, use_calibration=False), out=out, batch_size=4,
                      progress=False)
    assert written == images  # another confidence: another command


def test_two_torchrun_processes_write_the_rows_of_one(trained, tmp_path):
    run = trained.runs["classifier"]
    images = sorted((trained.data / "test").rglob("*.png"))[:30] + [broken(tmp_path, "bad.png")]  # an odd count
    one = tmp_path / "one.csv"
    inference.predict(run, images, answer_rule(run, 0.5, use_calibration=False), out=one, batch_size=1,
                      progress=False)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "hier.cli", "predict", str(run),
                          *map(str, images), "--confidence", "0.5", "--uncalibrated", "--batch-size", "1",
                          "-o", str(tmp_path / "two.csv")],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "two.csv").read_text() == one.read_text()  # each image once, in order, one header
    assert two.stderr.count(" images in ") == 1 and f"{len(images)} images in" in two.stderr  # one sum, for both
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "one.csv", "two.csv"]
