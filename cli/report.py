"""``hier report``: parse, call hier.infer.report_sources and hier.infer.report, print."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

console = Console(stderr=True)


def report(
    arguments: List[Path] = typer.Argument(None, metavar="[RUN] [DATASET]",
                                           help="A run (default: the newest under ./runs) and labelled data "
                                                "(its test split by default); or the run alone with "
                                                "--predictions."),
    run: Optional[Path] = typer.Option(None, "--run", help="The run to use: a run directory or a built-in run."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", "-p",
                                               help="A hier predict output (.csv or .jsonl): report on "
                                                    "unlabelled images."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML page to write."),
    confidence: float = typer.Option(0.9, "--confidence", "-c", help="The confidence the answers were made at."),
    rank: Optional[str] = typer.Option(None, "--rank", help="The confusion table's level: a rank (class, "
                                                            "genus...) or a depth (default: chosen to fit)."),
    split: Optional[str] = typer.Option(None, help="Split of DATASET to report on (default: test)."),
    base: Optional[Path] = typer.Option(None, help="The folder hier predict ran in, which relative image paths "
                                                   "of --predictions start from (default: the current one)."),
    uncalibrated: bool = typer.Option(False, "--uncalibrated", help="The answers ignored calibration.json."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (labelled data is scored)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per batch."),
    workers: Optional[int] = typer.Option(None, min=0, help="Image-loading processes."),
):
    """One self-contained HTML page: the run, the operating curve, the taxonomy with counts, galleries.

    Example: hier report runs/demo synth/ -o report.html          (labelled: after hier evaluate)

    Example: hier report runs/demo --predictions predictions.csv -o report.html   (after hier predict)
    """
    from hier.infer.answer import check_confidence
    from hier.infer.report import inputs_of, write_report
    from hier.infer.report_sources import report_input
    from hier.runs import choose_run

    check_confidence(confidence)
    choice = choose_run(list(arguments or []), run, most=1, console=console)
    if choice.note:
        console.print(f"hier: {choice.note}")
    given = report_input(choice.run_dir, dataset=choice.sources[0] if choice.sources else None,
                         predictions=predictions, out=out, force=force, base=base, split=split,
                         confidence=confidence, calibrated=not uncalibrated, device=device, batch_size=batch_size,
                         workers=workers, console=console)
    summary = write_report(out, given.records, given.taxonomy, given.info, confidence=confidence, data=given.what,
                           rank=rank, calibrated=not uncalibrated, force=force,
                           inputs=inputs_of(choice.run_dir, given.records, *given.read), console=console)
    console.print(f"{summary.images} images, {summary.thumbnails} thumbnails, {summary.bytes / 1e6:.1f} MB "
                  f"in {summary.seconds:.1f} s; written to {summary.out}")
