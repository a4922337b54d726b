"""Faults with real processes: kill -9 and Ctrl-C during fit, then --resume."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

TIMING = ("seconds", "images_per_s")


def fit_args(dataset, run_dir, *extra):
    return [sys.executable, "-m", "hier.cli", "fit", str(dataset), "--taxonomy", str(dataset / "taxonomy.json"),
            "--head", "spheremultihier", "--backbone", "smallcnn", "--epochs", "4", "--image-size", "32", "--batch-size", "8",
            "--set", "deterministic=true", "--set", "backbone_options.width=8", "--set", "backbone_options.depth=3",
            "-o", str(run_dir), *extra]


def metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def wait_for_epochs(run_dir, n, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run_dir / "metrics.csv").exists() and len(metrics(run_dir)) >= n:
            return
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    raise AssertionError("training did not reach the epoch in time")


@pytest.fixture(scope="module")
def uninterrupted(synth_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("faults") / "whole"
    done = subprocess.run(fit_args(synth_dataset, run), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return run


def test_kill_9_mid_epoch_then_resume_ends_with_the_same_metrics(synth_dataset, uninterrupted, tmp_path):
    run = tmp_path / "killed"
    process = subprocess.Popen(fit_args(synth_dataset, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    wait_for_epochs(run, 1, process)
    time.sleep(random.uniform(0.05, 0.4))  # somewhere in the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    # whatever moment the kill hit, the checkpoint on disk is whole
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert 1 <= state["epoch"] <= 4
    resumed = subprocess.run([sys.executable, "-m", "hier.cli", "fit", str(synth_dataset), "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(run) == metrics(uninterrupted)
    assert not list(run.rglob("*.tmp"))


def test_ctrl_c_saves_a_resumable_checkpoint_and_exits_130(synth_dataset, uninterrupted, tmp_path):
    run = tmp_path / "interrupted"
    process = subprocess.Popen(fit_args(synth_dataset, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    wait_for_epochs(run, 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "hier fit --resume" in stderr and "Traceback" not in stderr
    resumed = subprocess.run([sys.executable, "-m", "hier.cli", "fit", str(synth_dataset), "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(run) == metrics(uninterrupted)


def test_kill_9_during_predict_leaves_no_truncated_output(synth_dataset, uninterrupted, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    pool = sorted((synth_dataset / "train").rglob("*.png"))
    for i in range(1500):  # enough images that the kill lands while predictions are being written
        os.link(pool[i % len(pool)], images / f"{i:05d}.png")
    out = tmp_path / "predictions.csv"
    process = subprocess.Popen([sys.executable, "-m", "hier.cli", "predict", str(uninterrupted), str(images),
                                "--confidence", "0.5", "-o", str(out), "--batch-size", "16"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".predictions.csv.*.tmp")) and time.time() < deadline:
        assert process.poll() is None, "predict ended before it could be killed"
        time.sleep(0.02)
    time.sleep(random.uniform(0.05, 0.3))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()  # absent: the complete file appears only by rename
    done = subprocess.run([sys.executable, "-m", "hier.cli", "predict", str(uninterrupted), str(images),
                           "--confidence", "0.5", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(out) as f:
        assert sum(1 for _ in csv.reader(f)) == 1501  # complete: header and every image
