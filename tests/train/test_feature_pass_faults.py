"""The feature pass of ``hier fit`` with real processes: killed (kill -9, then SIGTERM) before the first epoch,
``hier fit --resume`` continues from the finished chunks and ends with the features and metrics of a run never
stopped."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

TIMING = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def dataset(synth_dataset, tmp_path_factory):
    """The synthetic set with each training image linked 8 times: a feature pass of some seconds, in 6 chunks."""
    root = tmp_path_factory.mktemp("pass") / "data"
    for split in ("val", "test"):
        shutil.copytree(synth_dataset / split, root / split)
    shutil.copy(synth_dataset / "taxonomy.json", root)
    for image in sorted((synth_dataset / "train").rglob("*.png")):
        folder = root / image.parent.relative_to(synth_dataset)
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(8):
            os.link(image, folder / f"{image.stem}-{k}.png")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A saved smallcnn: loaded from a file, the backbone is frozen and its features cached."""
    from hier.plugins import create_backbone

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "smallcnn.pth"
    torch.save(create_backbone("smallcnn", width=8, depth=3)[0].state_dict(), path)
    return path


def fit_args(dataset, weights, run_dir):
    return [sys.executable, "-m", "hier.cli", "fit", str(dataset), "--taxonomy", str(dataset / "taxonomy.json"),
            "--backbone", "smallcnn", "--weights", str(weights), "--epochs", "2", "--image-size", "32",
            "--batch-size", "8", "--set", "workers=0",
            "--set", "deterministic=true", "--set", "backbone_options.width=8", "--set", "backbone_options.depth=3",
            "--set", "feature_cache=file", "-o", str(run_dir)]


def chunks(run_dir) -> list:
    return sorted(run_dir.glob("cache/features-train-*/*.pt"))


def metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def wait_for_chunks(run_dir, more_than, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(chunks(run_dir)) > more_than:
            return
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.01)
    raise AssertionError("no feature chunk in time")


def test_a_feature_pass_killed_twice_resumes_to_the_features_of_one_pass(dataset, weights, tmp_path):
    whole = tmp_path / "whole"
    done = subprocess.run(fit_args(dataset, weights, whole), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "killed"
    process = subprocess.Popen(fit_args(dataset, weights, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    wait_for_chunks(run, 0, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = len(chunks(run))
    assert kept >= 1 and not (run / "checkpoints" / "last.pt").exists()  # stopped in the feature pass

    resume = [sys.executable, "-m", "hier.cli", "fit", str(dataset), "--resume", str(run)]
    process = subprocess.Popen(resume, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_chunks(run, kept, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "chunks already in" in stderr and f"hier fit --resume {run}" in stderr and "Traceback" not in stderr

    done = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in chunks(run)] == [p.name for p in chunks(whole)]
    for resumed, once in zip(chunks(run), chunks(whole)):
        a, b = torch.load(resumed, weights_only=True), torch.load(once, weights_only=True)
        assert a["features"].dtype == torch.float16
        assert torch.equal(a["features"], b["features"]) and torch.equal(a["targets"], b["targets"])
    assert metrics(run) == metrics(whole)
    assert not list(run.rglob("*.tmp"))
