"""Progress bars: a bar per task with images/s and loss; nothing at all when disabled (other ranks)."""

from __future__ import annotations

import io

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
