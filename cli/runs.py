"""``hier runs``: the runs under a folder and the built-in runs; parse, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .infer import _number


def runs_command(
    root: Path = typer.Argument(Path("runs"), help="The folder hier fit writes runs into."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
):
    """The runs under ./runs, newest first, and the built-in runs (usable wherever a run is: --run NAME).

    Example: hier predict --run imagenet-lite0 photos/ --confidence 0.9
    """
    from hier.runs import list_runs

    found = list_runs(root)
    if as_json:
        typer.echo(json.dumps(found, indent=1))
        return
    table = Table("run", "head", "backbone", "epochs", "complete", "calibrated", "finished", title="runs")
    for entry in found:
        table.add_row(entry["run"] + (" (built in)" if entry["builtin"] else ""), entry["head"] or "-",
                      entry["backbone"] or "-", str(entry["epochs_done"]) if not entry["builtin"] else "-",
                      _number(entry["complete"]) if not entry["builtin"] else "on first use" if not
                      entry["complete"] else "yes", _number(entry["calibrated"]), entry["finished"] or "-")
    Console().print(table)
