"""``hier demo``: the whole pipeline on the synthetic benchmark, as the commands a user would type."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hier.core.files import check_replaceable

console = Console()
DEMO_FILES = frozenset({"data", "run", "sample", "sure.csv", "bold.csv", "curve.png"})  # what --force may replace


def command(run_cli):
    """The ``hier demo`` command; ``run_cli(argv) -> exit code`` runs each step as ``hier ARGS`` would."""

    def demo(
        out: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for the data, the run and the outputs."),
        head: str = typer.Option("arcface-multihead", help="The head to train."),
        images: int = typer.Option(3000, help="Synthetic images to generate."),
        epochs: int = typer.Option(12, help="Training epochs."),
        force: bool = typer.Option(False, help="Replace an existing demo folder."),
    ):
        """Generate the synthetic plankton benchmark, train, calibrate, predict and evaluate (CPU, a few minutes).

        Example: hier demo --out demo --force
        """
        if check_replaceable(out, force=force, what="the demo folder", hint="pass --force to replace it",
                             own=DEMO_FILES):
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        data, run = out / "data", out / "run"
        sample = out / "sample"
        started = time.perf_counter()

        def step(title: str, *args) -> None:
            console.rule(f"[bold]{title}")
            console.print(f"[dim]$ hier {' '.join(map(str, args))}[/dim]")
            code = run_cli([str(a) for a in args])
            if code != 0:  # the step has said why, in one line
                raise typer.Exit(code)

        step("1. a synthetic plankton benchmark whose images carry the taxonomy in their pixels",
             "data", "synth", data, "--images", images, "--size", 48, "--unseen", 3)
        step("2. its taxonomy", "taxo", "show", data / "taxonomy.json", "--depth", 3)
        step("3. train a head on frozen ImageNet features of EfficientNet-Lite0 (installed with pip, CPU)",
             "fit", data, "--taxonomy", data / "taxonomy.json", "--head", head, "--epochs", epochs,
             "--image-size", 48, "--batch-size", 64, "--out", run)
        step("4. calibrate: the confidence becomes a promise on held-out images", "calibrate", run)
        _copy_sample(data / "test", sample, per_class=1, classes=10)
        step("5a. predict at confidence 0.9", "predict", run, sample, "--confidence", 0.9, "-o", out / "sure.csv")
        step("5b. predict at confidence 0.5", "predict", run, sample, "--confidence", 0.5, "-o", out / "bold.csv")
        _side_by_side(out / "sure.csv", out / "bold.csv")
        step("6. evaluate on the test split, with unseen species and the operating curve",
             "evaluate", run, data, "--confidence", 0.9, "--plot", out / "curve.png")
        console.rule("[bold]done")
        console.print(f"{time.perf_counter() - started:.0f} s. The run is in [bold]{run}[/bold]; "
                      f"the operating curve in {out / 'curve.png'}.\n"
                      f"Next: hier predict {run} YOUR_IMAGES --confidence 0.9 · "
                      f"hier evaluate {run} {data} --json · hier compare RUN_DIR... · hier fit --help")

    return demo


def _copy_sample(test_split: Path, dest: Path, *, per_class: int, classes: int) -> None:
    """A few test images, one per class, named after their true class."""
    dest.mkdir(parents=True)
    for folder in sorted(p for p in test_split.iterdir() if p.is_dir())[:classes]:
        for image in sorted(folder.iterdir())[:per_class]:
            shutil.copy(image, dest / f"{folder.name}__{image.name}")


def _side_by_side(sure: Path, bold: Path) -> None:
    def read(path):
        with path.open() as f:
            return {Path(row["path"]).name: row for row in csv.DictReader(f)}

    a, b = read(sure), read(bold)
    table = Table("true class", "at 0.9", "p", "at 0.5", "p", title="the same images at two confidences")
    for name in sorted(a):
        table.add_row(name.split("__")[0], a[name]["node_name"], f"{float(a[name]['confidence'] or 0):.2f}",
                      b[name]["node_name"], f"{float(b[name]['confidence'] or 0):.2f}")
    console.print(table)
    console.print("At 0.9 the model answers only as deep as it is that sure of; at 0.5 it goes deeper and errs more.")
