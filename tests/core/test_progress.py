"""Progress bars: a bar per task with images/s and loss on a terminal, plain lines with count, rate and ETA on a file
or a pipe; nothing at all when disabled (other ranks)."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from rich.console import Console

from hier.core.progress import Progress


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_bar_shows_rate_and_loss_and_lines_are_printed(monkeypatch):
    monkeypatch.setattr(Progress, "REFRESH_S", 0.0)  # every step updates the fields
    c, out = console()
    with Progress(console=c) as progress:
        task = progress.add("epoch 1", total=4)
        for _ in range(4):
            progress.advance(task, loss=0.5, images=32)
        progress.print("epoch 1/1  loss 0.5000")
    text = out.getvalue()
    assert "epoch 1" in text and "4/4" in text and "img/s" in text and "loss 0.5000" in text


def test_disabled_progress_prints_nothing():
    c, out = console()
    with Progress(console=c, enabled=False) as progress:
        task = progress.add("epoch 1", total=2)
        progress.advance(task, loss=1.0, images=8)
        progress.print("a line")
        progress.done(task)
    assert out.getvalue() == ""


PIPED = """
import time
from hier.core.progress import Progress
Progress.LINE_MIN_S = 0.0  # a line each tenth, however fast
with Progress() as progress:
    task = progress.add("features train", total=50, completed=10)  # 10 images done by a run that stopped
    for _ in range(40):
        time.sleep(0.002)
        progress.advance(task, images=1)
    progress.done(task)
    Progress.LINE_MIN_S = 5.0  # the default: a task shorter than this says nothing
    task = progress.add("quick", total=3)
    for _ in range(3):
        progress.advance(task)
    progress.done(task)
    progress.print("epoch 1/1  loss 0.5000")
"""


def test_a_pipe_gets_plain_lines_with_count_rate_and_eta():
    done = subprocess.run([sys.executable, "-c", PIPED], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "\x1b" not in done.stderr  # no terminal codes in a log
    steps = [f"{n}/50 \\({n * 2}%\\)" for n in range(15, 50, 5)]  # every tenth of the 50, from where it resumed
    for line, step in zip(lines, steps):
        assert re.fullmatch(rf"\d\d:\d\d:\d\d features train: {step}, [\d.,]+ img/s, ETA \d+:\d\d:\d\d", line), line
    assert re.fullmatch(r"\d\d:\d\d:\d\d features train: 50/50 \(100%\), [\d.,]+ img/s, in 0:00:0\d", lines[7])
    assert lines[8:] == ["epoch 1/1  loss 0.5000"]
