"""Progress of long work where the output goes: rich bars on a terminal; on a file or a pipe (a batch job's log,
``nohup``, CI), where a bar would show nothing until the end, plain lines with the count, rate and ETA. Silent when
disabled (other ranks)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


@dataclass
class _Task:
    description: str
    total: int
    completed: int
    started: float
    steps: int = 0  # advanced by this process: a resumed task's rate counts only these
    images: int = 0
    loss: object = None  # the last loss given, read (a GPU sync) only when shown
    refreshed: float = 0.0
    line_at: float = 0.0  # when its last plain line was printed
    line_done: int = 0  # how far it was then
    lines: int = 0


class Progress:
    REFRESH_S = 0.5  # reading the loss syncs a GPU; do it at most this often
    LINE_STEP = 0.1  # plain lines: one each tenth of a task,
    LINE_MIN_S = 5.0  # no more often than this (a task shorter than this prints nothing),
    LINE_EVERY_S = 60.0  # and at least this often while it moves (a tenth of a long pass can take hours)

    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.plain = not (self.console.is_terminal or self.console.is_jupyter)
        self._bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[loss]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
                                 disable=not enabled or self.plain)
        self._tasks: dict[int, _Task] = {}
        self._live = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._live:
            self._bar.stop()
            self._live = False

    def add(self, description: str, total: int, completed: int = 0) -> int:
        if not self._live and not self.plain:  # the bar starts with the first task: an early error prints only itself
            self._bar.start()
            self._live = True
        task = self._bar.add_task(description, total=total, completed=completed, rate="", loss="")
        now = time.perf_counter()
        self._tasks[task] = _Task(description, total, completed, now, line_at=now, line_done=completed)
        return task

    def advance(self, task: int, steps: int = 1, *, loss=None, images: int = 0) -> None:
        if not self.enabled:
            return
        t = self._tasks[task]
        t.completed, t.steps, t.images = t.completed + steps, t.steps + steps, t.images + images
        t.loss = loss if loss is not None else t.loss
        now = time.perf_counter()
        if self.plain:
            since = now - t.line_at
            if t.completed < t.total and (  # the last line is done()'s
                    (since >= self.LINE_MIN_S and t.completed - t.line_done >= self.LINE_STEP * t.total)
                    or (since >= self.LINE_EVERY_S and t.completed > t.line_done)):
                self._line(t, now)
            return
        fields = {}
        if now - t.refreshed >= self.REFRESH_S:
            t.refreshed = now
            if t.images:
                fields["rate"] = f"{t.images / max(now - t.started, 1e-9):.0f} img/s"
            if loss is not None:
                fields["loss"] = f"loss {float(loss):.4f}"
        self._bar.update(task, advance=steps, **fields)

    def done(self, task: int) -> None:
        t = self._tasks.pop(task)
        if self.enabled and self.plain and t.lines:  # a task long enough to report ends with its total
            self._line(t, time.perf_counter(), final=True)
        self._bar.remove_task(task)

    def print(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, soft_wrap=True)

    def _line(self, t: _Task, now: float, final: bool = False) -> None:
        """``12:03:44 features train: 1,024/3,000 (34%), 41.2 img/s, ETA 0:00:48``."""
        seconds = max(now - t.started, 1e-9)
        rate = f"{t.images / seconds:,.1f} img/s" if t.images else f"{t.steps / seconds:,.2f} steps/s"
        parts = [f"{time.strftime('%H:%M:%S')} {t.description}: {t.completed:,}/{t.total:,} "
                 f"({t.completed / max(t.total, 1):.0%})", rate]
        if final:
            parts.append(f"in {_clock(seconds)}")
        elif t.steps:
            parts.append(f"ETA {_clock((t.total - t.completed) * seconds / t.steps)}")
        if t.loss is not None:
            parts.append(f"loss {float(t.loss):.4f}")
        self.console.print(", ".join(parts), soft_wrap=True, markup=False, highlight=False)
        t.line_at, t.line_done, t.lines = now, t.completed, t.lines + 1


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
