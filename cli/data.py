"""``hier data``: the synthetic plankton benchmark (torch-free)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

app = typer.Typer(help="Datasets: the synthetic plankton benchmark.", no_args_is_help=True)
console = Console()


@app.callback()
def _group():
    # keeps `data` a group of commands even while it has one (typer would collapse it)
    pass


@app.command()
def synth(
    out_dir: Path = typer.Argument(..., help="The folder to write (must be empty or absent; see --force)."),
    seed: int = typer.Option(0, help="Seed of the pixels and of the train/val/test split."),
    images: int = typer.Option(10_000, help="Number of train/val/test images."),
    size: int = typer.Option(64, help="Largest image side in pixels (images are cropped to the object)."),
    unseen: int = typer.Option(3, help="Species held out of the taxonomy, written to unseen/<genus>/."),
    depth: int = typer.Option(4, help="Ranks below 'living': 3 to 6 (4: phylum, class, genus, species)."),
    image_format: str = typer.Option("png", "--format", help="png or jpg."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT_DIR."),
    workers: int = typer.Option(0, help="Processes drawing images (0: one per core)."),
):
    """Write the synthetic plankton benchmark: taxonomy.json, lineage.csv, train|val|test/<label>/,
    ecotaxa_export.tsv and unseen/<genus>/.

    Example: hier data synth demo/synth --images 2000 --size 48
    """
    from hier.data.synth import synthesize

    columns = (TextColumn("drawing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("images", total=None)
        result = synthesize(out_dir, seed=seed, images=images, size=size, unseen=unseen, depth=depth,
                            image_format=image_format, force=force, workers=workers or None,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    splits = ", ".join(f"{name} {count}" for name, count in result.split_counts.items())
    console.print(f"wrote {result.out_dir}: {result.num_classes} classes ({splits}; "
                  f"{result.ambiguous_images} ambiguous at species level), "
                  f"{result.unseen_images} unseen images of {len(result.held_out)} held-out species, "
                  f"in {result.seconds:.1f} s")
