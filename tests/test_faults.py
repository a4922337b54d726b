"""Faults with real processes: kill -9, Ctrl-C and SIGTERM during fit, predict, calibrate and synth; then --resume,
or a rerun that cleans what the killed one left."""

import contextlib
import csv
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.parametrize("sent, code, said", [(signal.SIGINT, 130, "hier: interrupted"),
                                              (signal.SIGTERM, 143, "hier: terminated")])
def test_ctrl_c_or_sigterm_saves_a_resumable_checkpoint(synth_dataset, uninterrupted, tmp_path, sent, code, said):
    run = tmp_path / "interrupted"
    process = subprocess.Popen(fit_args(synth_dataset, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    wait_for_epochs(run, 1, process)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "hier fit --resume" in stderr and said in stderr and "Traceback" not in stderr
    resumed = subprocess.run([sys.executable, "-m", "hier.cli", "fit", str(synth_dataset), "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(run) == metrics(uninterrupted)


def test_kill_9_during_predict_then_the_same_command_finishes_the_file(synth_dataset, uninterrupted, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    pool = sorted((synth_dataset / "train").rglob("*.png"))
    for i in range(1500):  # enough images that the kill lands while predictions are being written
        os.link(pool[i % len(pool)], images / f"{i:05d}.png")

    def predict(out):
        return [sys.executable, "-m", "hier.cli", "predict", str(uninterrupted), str(images), "--confidence", "0.5",
                "-o", str(out), "--batch-size", "16"]

    whole = subprocess.run(predict(tmp_path / "whole.csv"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out, record = tmp_path / "predictions.csv", tmp_path / ".predictions.csv.partial.json"
    process = subprocess.Popen(predict(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not record.exists() and time.time() < deadline:  # a batch of rows is kept
        assert process.poll() is None, "predict ended before it could be killed"
        time.sleep(0.02)
    time.sleep(random.uniform(0.05, 0.3))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()  # absent: the complete file appears only at the end
    done = subprocess.run(predict(out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answered = int(re.search(r"continuing: ([\d,]+) of 1,500 images", done.stderr).group(1).replace(",", ""))
    assert 16 <= answered < 1500  # those rows were not computed again
    assert out.read_text() == (tmp_path / "whole.csv").read_text()  # every image once, as one run writes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "predictions.csv", "whole.csv"]


def many_images(folder, copies=60):
    """Each image of ``folder``'s class folders ``copies`` times: reading them takes seconds."""
    for image in list(folder.rglob("*.png")):
        for k in range(copies):
            shutil.copy(image, image.with_name(f"{image.stem}-{k}.png"))


def wait_until_reading(folder, process, timeout=120):
    """Returns once ``process`` holds a file under ``folder`` open: it is reading the images. (A FIFO named
    like an image used to hold the reader still; hier now refuses anything but a regular file unread.)"""
    fds, deadline = Path(f"/proc/{process.pid}/fd"), time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            for fd in os.listdir(fds):
                with contextlib.suppress(OSError):
                    if os.readlink(fds / fd).startswith(str(folder)):
                        return
        assert process.poll() is None, process.communicate()[1]
    raise AssertionError("the command did not reach the images in time")


@pytest.mark.parametrize("command, sent, code, said", [
    ("calibrate", signal.SIGINT, 130, "hier: interrupted"),
    ("predict", signal.SIGTERM, 143, "hier: terminated"),
])
def test_signal_while_reading_images_says_so_and_leaves_nothing(synth_dataset, uninterrupted, tmp_path, command,
                                                                sent, code, said):
    data = tmp_path / "data"
    shutil.copytree(synth_dataset / "val", data / "val")
    many_images(data / "val")
    args = {"calibrate": ["calibrate", str(uninterrupted), str(data), "--split", "val"],
            # one batch for all: no rows are kept to continue when the signal comes during the first
            "predict": ["predict", str(uninterrupted), str(data / "val"), "-o", str(tmp_path / "p.csv"),
                        "--batch-size", "100000"]}[command]
    process = subprocess.Popen([sys.executable, "-m", "hier.cli", *args, "--workers", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_reading(data, process)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == said and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no output, no temporary file


def test_sigterm_during_synth_removes_its_staging_folder_and_a_killed_ones(tmp_path):
    def synth():
        return subprocess.Popen([sys.executable, "-m", "hier.cli", "data", "synth", str(tmp_path / "out"),
                                 "--images", "20000", "--size", "32", "--workers", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_for_staging(process, known=()):
        """The process's staging folder, once it holds a file."""
        deadline = time.time() + 120
        while time.time() < deadline:
            new = [p.parent for p in tmp_path.glob(".out.*.tmp/*") if p.parent not in known]
            if new:
                return new[0]
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.02)
        raise AssertionError("no staging folder in time")

    killed = synth()
    left = wait_for_staging(killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert left.is_dir()  # what kill -9 leaves
    stopped = synth()
    wait_for_staging(stopped, known=[left])
    stopped.send_signal(signal.SIGTERM)
    _, stderr = stopped.communicate(timeout=60)
    assert stopped.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "hier: terminated"
    assert list(tmp_path.iterdir()) == []  # neither run left a staging folder
