"""Which run a command uses: the one named, a built-in run, or the newest complete run under ./runs.

``hier predict [RUN] IMAGES...``: when the first argument is a run directory (or a built-in run's
name) it is the run; otherwise every argument is an image source and the run is the newest complete
run under ``./runs`` (the one ``hier fit`` finished last), or, when there is none, the built-in
``imagenet-lite0``. The command always says on stderr which run answered.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from hier.core.errors import InputError
from hier.data.readers import IMAGE_SUFFIXES, TABLE_SUFFIXES, images_under

from . import layout
from .builtin import BUILTIN_RUNS, builtin_dir, builtin_run, is_builtin

RUNS_ROOT = Path("runs")  # where `hier fit` writes runs by default, relative to the current folder
DEFAULT_BUILTIN = "imagenet-lite0"


@dataclass(frozen=True)
class RunChoice:
    run_dir: Path
    sources: list[Path]  # the arguments left for the command (images, or a dataset)
    note: str | None  # how the run was chosen, when the user did not name it


def is_run_dir(path: Path) -> bool:
    return (path / layout.CONFIG).is_file() and (path / layout.TAXONOMY).is_file()


def resolve_run(name: str | Path, console=None) -> Path:
    """A run directory from what the user typed: a folder, or the name of a built-in run."""
    if is_builtin(name) and not Path(name).exists():
        return builtin_run(str(name), console=console)
    return layout.check_run_dir(name)


def newest_run(root: Path = RUNS_ROOT) -> Path | None:
    """The complete run (final weights written) under ``root`` whose weights were written last."""
    if not root.is_dir():
        return None
    complete = [d for d in root.iterdir() if d.is_dir() and (d / layout.WEIGHTS).is_file() and is_run_dir(d)]
    return max(complete, key=lambda d: (d / layout.WEIGHTS).stat().st_mtime_ns, default=None)


def choose_run(arguments: list[Path], run: Path | None, *, most: int | None = None, console=None) -> RunChoice:
    """The run and the remaining arguments of ``[RUN] ARGUMENTS...`` (``run``: the ``--run`` option; ``most``:
    how many arguments the command takes besides the run, None for any number)."""
    if run is not None:
        return RunChoice(resolve_run(run, console), _at_most(list(arguments), most), None)
    if arguments:
        first = Path(arguments[0])
        if is_run_dir(first) or (is_builtin(first) and not first.exists()) or (most is not None
                                                                               and len(arguments) > most):
            return RunChoice(resolve_run(first, console), _at_most(list(arguments[1:]), most), None)
        if not first.exists():
            raise InputError("no such run directory, image or dataset", path=first)
        if len(arguments) > 1 and first.is_dir() and not images_under(first):
            raise InputError(f"not a hier run directory (no {layout.CONFIG}), and no images in it", path=first)
        if len(arguments) > 1 and first.is_file() and first.suffix.lower() not in (*IMAGE_SUFFIXES, *TABLE_SUFFIXES):
            layout.check_run_dir(first)  # neither an image nor a table: meant as the run, and says why it is not
    newest = newest_run()
    if newest is not None:
        return RunChoice(newest, list(arguments), f"using the newest run under {RUNS_ROOT}/: {newest} "
                                                  f"(name another with --run)")
    return RunChoice(builtin_run(DEFAULT_BUILTIN, console=console), list(arguments),
                     f"no run under ./{RUNS_ROOT}: answering with the built-in run {DEFAULT_BUILTIN} "
                     f"(ImageNet-1k on its WordNet tree, no training; see hier runs)")


def _at_most(sources: list[Path], most: int | None) -> list[Path]:
    if most is not None and len(sources) > most:
        raise InputError(f"{most} argument{'s' if most > 1 else ''} at most after the run, got {len(sources)}",
                         path=sources[most])
    return sources


def list_runs(root: Path = RUNS_ROOT) -> list[dict]:
    """The runs under ``root``, newest first, then the built-in runs: what ``hier runs`` shows."""
    found = []
    folders = [d for d in root.iterdir() if d.is_dir() and is_run_dir(d)] if root.is_dir() else []
    for folder in sorted(folders, key=lambda d: d.stat().st_mtime_ns, reverse=True):
        found.append(_describe(str(folder), folder, builtin=False))
    for name in BUILTIN_RUNS:
        found.append(_describe(name, builtin_dir(name), builtin=True))
    return found


def _describe(name: str, folder: Path, *, builtin: bool) -> dict:
    """One line of ``hier runs``; a damaged run is listed with what is wrong (``damaged``), never fatal."""
    config, damaged, epochs = {}, None, 0
    try:
        config = layout.read_config(folder) if is_run_dir(folder) else {}
        epochs = len(layout.read_metrics(folder))
    except InputError as e:
        damaged = str(e)
    weights = folder / layout.WEIGHTS
    return {"run": name, "path": os.fspath(folder), "builtin": builtin, "head": config.get("head"),
            "backbone": config.get("backbone"), "complete": weights.is_file() and damaged is None,
            "calibrated": (folder / layout.CALIBRATION).is_file(), "epochs_done": epochs,
            "finished": time.strftime("%Y-%m-%d %H:%M", time.localtime(weights.stat().st_mtime))
            if weights.is_file() else None,
            "about": BUILTIN_RUNS[name] if builtin else None, "damaged": damaged}
