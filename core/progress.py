"""Rich progress bars for long work: steps, images/s, loss and ETA; silent when disabled (other ranks)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    REFRESH_S = 0.5  # reading the loss syncs a GPU; do it at most this often

    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[loss]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
                                 disable=not enabled)
        self._started: dict[int, float] = {}
        self._images: dict[int, int] = {}
        self._last_refresh: dict[int, float] = {}
        self._live = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._live:
            self._bar.stop()
            self._live = False

    def add(self, description: str, total: int, completed: int = 0) -> int:
        if not self._live:  # the display starts with the first bar: an early error prints only itself
            self._bar.start()
            self._live = True
        task = self._bar.add_task(description, total=total, completed=completed, rate="", loss="")
        self._started[task], self._images[task], self._last_refresh[task] = time.perf_counter(), 0, 0.0
        return task

    def advance(self, task: int, steps: int = 1, *, loss=None, images: int = 0) -> None:
        if not self.enabled:
            return
        self._images[task] += images
        now = time.perf_counter()
        fields = {}
        if now - self._last_refresh[task] >= self.REFRESH_S:
            self._last_refresh[task] = now
            if images or self._images[task]:
                fields["rate"] = f"{self._images[task] / max(now - self._started[task], 1e-9):.0f} img/s"
            if loss is not None:
                fields["loss"] = f"loss {float(loss):.4f}"
        self._bar.update(task, advance=steps, **fields)

    def done(self, task: int) -> None:
        self._bar.remove_task(task)

    def print(self, line: str) -> None:
        if self.enabled:
            self._bar.console.print(line, soft_wrap=True)
