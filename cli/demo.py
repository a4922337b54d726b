"""``hier demo``: print and run the demo's commands (the plan and the work between them: hier.cli.demo_plan)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hier.cli import demo_plan as plan
from hier.core.errors import InputError
from hier.core.files import check_replaceable

console = Console()


def _check_arguments(head: str, epochs: int, image_size: int | None, images: int | None) -> None:
    """The demo's own arguments, checked as ``hier fit`` and ``hier data synth`` would check them."""
    from hier.runs.config import resolve_config

    resolve_config(flags={"head": head, "epochs": epochs, "image_size": image_size})
    if images is not None and images < 1:
        raise InputError(f"--images must be at least 1, got {images}")


def command(run_cli):
    """The ``hier demo`` command; ``run_cli(argv) -> exit code`` runs each step as ``hier ARGS`` would."""

    def demo(
        out: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for the data, the run and the outputs."),
        head: str = typer.Option(
            None, help="The head to train (default: arcface; arcface-multihead with --synthetic)."
        ),
        epochs: int = typer.Option(None, help="Training epochs (default: 20; 12 with --synthetic)."),
        classes: int = typer.Option(None, help="Use only the first N of the 30 real classes (faster)."),
        image_size: int = typer.Option(None, help="Letterbox side in pixels (default: fit's, 160); smaller is faster."),
        synthetic: bool = typer.Option(False, "--synthetic", help="Synthetic shapes instead of real plankton."),
        images: int = typer.Option(3000, help="Synthetic images to generate (with --synthetic)."),
        force: bool = typer.Option(False, help="Replace an existing demo folder."),
    ):
        """Real plankton: build the taxonomy, train, calibrate, predict at two confidences, evaluate (CPU, minutes).

        Example: hier demo --out demo --force      (hier demo --synthetic: the synthetic benchmark)
        """
        head = head or ("arcface-multihead" if synthetic else "arcface")
        epochs = 12 if synthetic and epochs is None else 20 if epochs is None else epochs
        _check_arguments(head, epochs, image_size, images if synthetic else None)  # all before anything is deleted
        if synthetic:
            steps = plan.synthetic_demo(out, head=head, epochs=epochs, images=images)
        else:
            steps = plan.real_demo(out, head=head, epochs=epochs, classes=classes, image_size=image_size)
        if check_replaceable(
            out, force=force, what="the demo folder", hint="pass --force to replace it", own=plan.DEMO_FILES
        ):
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for step in steps.steps:
            console.rule(f"[bold]{step.title}")
            if step.before is not None:
                step.before()
            console.print(f"[dim]$ hier {' '.join(map(str, step.args))}[/dim]")
            code = run_cli([str(a) for a in step.args])
            if code != 0:  # the step has said why, in one line
                raise typer.Exit(code)
            if step.shows_answers:
                _print_side_by_side(steps)
        console.rule("[bold]done")
        console.print(
            f"{time.perf_counter() - started:.0f} s. The run is in [bold]{steps.run}[/bold]; "
            f"the operating curve in {steps.curve}.\nThe report to look through: [bold]{steps.report}[/bold]\n"
            "Next:\n"
            f"  hier predict {steps.run} YOUR_IMAGES --confidence 0.9 -o predictions.csv\n"
            f"  hier evaluate {steps.run} --json          # every metric of the test split\n"
            f"  hier fit {steps.dataset} --taxonomy {steps.run / 'taxonomy.json'} --head spheremulti "
            f"--out {steps.run}-2  &&  hier compare {steps.run} {steps.run}-2\n"
            "  hier fit --help · hier heads · docs/confidence.md",
            soft_wrap=True,  # paths whole, for copying
        )

    return demo


def _print_side_by_side(steps: plan.Demo) -> None:
    rows, ranks = plan.side_by_side(steps)
    sure, bold = (f"{c:g}" for c in plan.CONFIDENCES)
    table = Table("true class", f"answer at {sure}", f"answer at {bold}", title="held-out images, one per class")
    for a, b in rows:
        table.add_row(
            a.true_class,
            f"{a.node} [dim]({a.rank})[/dim]",
            f"{b.node} [dim]({b.rank})[/dim]",
            style="bold" if a.node != b.node else None,
        )
    console.print(table)
    for level, counts in ranks.items():
        console.print(f"answers at {level}: " + ", ".join(f"{rank} {n}" for rank, n in counts.most_common()))
    console.print(
        f"At {sure} the model answers only as deep as it is that sure of (a genus where the species is "
        f"unsure); at {bold} it goes deeper and errs more. Bold rows: the two answers differ."
    )
