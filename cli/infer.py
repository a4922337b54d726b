"""``hier calibrate``, ``predict``, ``evaluate`` and ``compare``: parse, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from hier.core.errors import InputError

console = Console(stderr=True)
SHOWN_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
WORST_CLASSES = 5
SHOWN_METRICS = ("leaf_accuracy", "leaf_top5_accuracy", "balanced_accuracy", "hierarchical_precision",
                 "hierarchical_recall", "hierarchical_f1", "hierarchical_f1_macro", "mistake_severity",
                 "mistake_severity_label", "hierarchical_distance_at_1", "hierarchical_distance_at_5",
                 "correct_at_confidence", "correct_at_confidence_upper_bound", "below_label_at_confidence",
                 "mean_depth_at_confidence", "genus_or_deeper_at_confidence", "information_recall_at_confidence",
                 "operating_curve_area",
                 "information_recall_at_correct_90", "information_recall_at_correct_95",
                 "ece", "violation_rate")  # the rows of hier evaluate's table

_DEVICE = typer.Option("auto", help="auto, cpu or cuda.")
_BATCH = typer.Option(None, "--batch-size", min=1, help="Images per batch (default: the run's).")
_WORKERS = typer.Option(None, min=0, help="Image-loading processes (default: the run's).")
_TTA = typer.Option(None, "--tta/--no-tta", help="Answer from the mean features of each image's 8 dihedral views "
                                                 "(default: the run's tta setting); calibrate with the same.")
_RUNTIME = typer.Option(None, "--runtime", help="Where the backbone runs on the CPU: auto (OpenVINO, else ONNX "
                                               "Runtime, else torch), torch, onnxruntime or openvino (default: "
                                               "the run's).")
_UNCALIBRATED = typer.Option(False, "--uncalibrated", help="Ignore calibration.json: threshold = confidence.")
_RUN = typer.Option(None, "--run", help="The run to use: a run directory or a built-in run (see `hier runs`); "
                                        "default: the first argument when it is one, else the newest under ./runs.")


def _choose(arguments: list[Path], run: Optional[Path], *, most: int | None = None):
    """The run and the arguments left, saying on stderr how the run was chosen when it was not named."""
    from hier.runs.choose import choose_run

    choice = choose_run(arguments, run, most=most, console=console)
    if choice.note:
        console.print(f"hier: {choice.note}")
    return choice


def _confidence(value: float) -> float:
    from hier.infer.answer import check_confidence

    check_confidence(value)
    return value


def _runtime(value: str | None) -> str | None:
    """--runtime checked before any work: a known runtime, installed."""
    if value is not None:
        from hier.backbones.runtime import resolve_runtime

        resolve_runtime(value)
    return value


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def calibrate(
    arguments: List[Path] = typer.Argument(None, metavar="[RUN] [DATASET]",
                                           help="A run (default: the newest under ./runs) and held-out data "
                                                "(default: the dataset the run was trained on)."),
    run: Optional[Path] = _RUN,
    split: Optional[str] = typer.Option(None, help="Split to certify the thresholds on (default: the calibration "
                                                   "part, held out of training and of best-epoch selection)."),
    per_class: bool = typer.Option(False, "--per-class", help="Keep each confidence for every class on its own "
                                   "(rare classes pooled with their relatives), so that any mix of classes keeps it; "
                                   "answers are shallower (docs/confidence.md)."),
    device: str = _DEVICE,
    batch_size: Optional[int] = _BATCH,
    workers: Optional[int] = _WORKERS,
    runtime: Optional[str] = _RUNTIME,
    tta: Optional[bool] = _TTA,
):
    """Fit a temperature and a confidence table on held-out images; stored in RUN_DIR/calibration.json.

    For each confidence level 0.50..0.99 the table holds the lowest threshold whose answers are correct at
    least that often, by a one-sided Clopper-Pearson bound at risk 0.05 (see docs/confidence.md); with
    --per-class, at least that often for every class (Mondrian conformal calibration).

    Example: hier calibrate runs/demo synth/
    """
    from hier.infer.calibration import calibrate as run_calibrate

    choice = _choose(arguments or [], run, most=1)
    run_dir, dataset = choice.run_dir, (choice.sources or [None])[0]
    calibration = run_calibrate(run_dir, dataset, split=split, per_class=per_class, device=device,
                                batch_size=batch_size, workers=workers, runtime=_runtime(runtime), tta=tta,
                                console=console)
    out = Console()
    out.print(f"temperature {calibration.temperature:.4f} (node BCE {calibration.loss_before:.4f} -> "
              f"{calibration.loss_after:.4f}) on {calibration.temperature_n} {calibration.temperature_split} images; "
              f"thresholds certified on {calibration.n} {calibration.split} images"
              + (f", {calibration.unreadable} unreadable" if calibration.unreadable else ""))
    table = Table("confidence", "threshold", "correct", "lower bound", "mean depth", title="calibration table")
    for entry in calibration.table:
        if any(abs(entry["level"] - level) < 1e-9 for level in SHOWN_LEVELS):
            table.add_row(f"{entry['level']:.2f}", *(_number(entry[k]) if entry[k] is not None else "not certified"
                                                      for k in ("threshold", "correct", "lower_bound", "mean_depth")))
    out.print(table)
    at = calibration.entry(0.9)
    if at is not None:
        out.print(f"the promise at 0.9: {calibration.coverage(at)}")
    out.print(f"written to {Path(run_dir) / 'calibration.json'}; hier predict uses it from now on")


def predict(
    arguments: List[Path] = typer.Argument(..., metavar="[RUN] IMAGES...",
                                           help="A run (default: the newest under ./runs, else the built-in "
                                                "imagenet-lite0), then images, folders (searched recursively) "
                                                "or tables of images."),
    run: Optional[Path] = _RUN,
    confidence: float = typer.Option(0.9, "--confidence", "-c", help="How sure the answer must be, in (0, 1]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output .csv, .jsonl, or an EcoTaxa import: "
                                       "ecotaxa_NAME.tsv beside or above the images (EcoTaxa reads only ecotaxa*.tsv), "
                                       "or NAME.zip with the table and the images, ready to upload; "
                                       "default: CSV on stdout."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, jsonl or ecotaxa (default: from the suffix)."),
    top_k: int = typer.Option(0, "--top-k", min=0, help="Add the k most probable leaves to each row."),
    uncalibrated: bool = _UNCALIBRATED,
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    device: str = _DEVICE,
    batch_size: Optional[int] = _BATCH,
    workers: Optional[int] = _WORKERS,
    runtime: Optional[str] = _RUNTIME,
    tta: Optional[bool] = _TTA,
):
    """Answer with the deepest taxonomy node the model is sure of, for every image.

    With calibration.json in the run, --confidence C is a promise: answers are correct at least a fraction
    C of the time (risk 0.05). Unreadable images get a row with an error; the run goes on.

    The output file appears whole at the end. A run stopped before (killed, Ctrl-C) leaves its rows in
    .NAME.partial beside it: the same command run again continues them. Under torchrun each process answers
    a share of the images, joined into one file.

    Example: hier predict runs/demo samples/ --confidence 0.9 -o predictions.csv

    Example: hier predict --confidence 0.9 cat.jpg   (no run yet: ImageNet's WordNet tree, built in)
    """
    from hier.infer.answer import answer_rule
    from hier.infer.predict import predict as run_predict

    level = _confidence(confidence)
    choice = _choose(arguments, run)
    if not choice.sources:
        raise InputError("no images given: hier predict [RUN] IMAGES...")
    run_dir, images = choice.run_dir, choice.sources
    rule = answer_rule(run_dir, level, use_calibration=not uncalibrated)
    summary = run_predict(run_dir, images, rule, out=out, fmt=fmt, top_k=top_k, force=force, device=device,
                          batch_size=batch_size, workers=workers, runtime=_runtime(runtime), tta=tta, console=console)
    if summary is None:  # a torchrun process other than the first, which sums up for all
        return
    depths = ", ".join(f"depth {d}: {n}" for d, n in summary.depth_counts.items())
    console.print(f"{summary.images} images in {summary.seconds:.1f} s ({depths})"
                  + (f"; {summary.unreadable} unreadable (see the error column)" if summary.unreadable else "")
                  + (f"; written to {summary.out}" if summary.out else ""))


def evaluate(
    arguments: List[Path] = typer.Argument(None, metavar="[RUN] [DATASET]",
                                           help="A run (default: the newest under ./runs) and the dataset to "
                                                "evaluate on, its test split by default (default: the dataset "
                                                "the run was trained on)."),
    run: Optional[Path] = _RUN,
    confidence: float = typer.Option(0.9, "--confidence", "-c", help="The confidence the answers are judged at."),
    split: Optional[str] = typer.Option(None, help="Split to evaluate (default: test)."),
    unseen: Optional[Path] = typer.Option(None, help="Images of classes missing from the taxonomy, in folders "
                                                     "named by their deepest known node (default: the "
                                                     "dataset's unseen/ folder, if any)."),
    as_json: bool = typer.Option(False, "--json", help="Print every metric as JSON."),
    plot: Optional[Path] = typer.Option(None, help="Write the operating curve to this .png/.svg/.pdf."),
    uncalibrated: bool = _UNCALIBRATED,
    force: bool = typer.Option(False, "--force", help="Replace an existing --plot file."),
    reweight: Optional[str] = typer.Option(None, "--reweight", help="Score the split as if it had another class "
                                                                    "mix: uniform, or a CSV/JSON file of "
                                                                    "proportions per class."),
    device: str = _DEVICE,
    batch_size: Optional[int] = _BATCH,
    workers: Optional[int] = _WORKERS,
    runtime: Optional[str] = _RUNTIME,
    tta: Optional[bool] = _TTA,
):
    """Hierarchical metrics, the operating curve and calibration error on a split; also RUN_DIR/evaluation.json.

    Example: hier evaluate runs/demo synth/ --confidence 0.9 --plot curve.png · hier evaluate --reweight uniform
    """
    from hier.infer.evaluate import evaluate as run_evaluate

    level = _confidence(confidence)
    choice = _choose(arguments or [], run, most=1)
    run_dir, dataset = choice.run_dir, (choice.sources or [None])[0]
    result = run_evaluate(run_dir, dataset, confidence=level, split=split, unseen=unseen,
                          use_calibration=not uncalibrated, device=device, batch_size=batch_size, workers=workers,
                          runtime=_runtime(runtime), tta=tta, reweight=reweight,
                          plot=plot, force=force, console=console)
    if as_json:
        typer.echo(json.dumps(result, indent=1))
    else:
        _print_evaluation(result)
    if plot is not None:
        console.print(f"operating curve written to {plot}")


def _print_evaluation(result: dict) -> None:
    out = Console()
    calibrated = (f"calibrated, T {result['temperature']:.3f}, threshold {result['threshold']:.3f}"
                  if result["calibrated"] else "uncalibrated")
    mix = result["reweight"]
    weighed = f"; weighed to the class mix {mix['mix']}" if mix else ""
    table = Table("metric", "value", title=f"{result['head']} on {result['split']} ({result['images']} images; "
                                           f"{calibrated}{weighed})")
    for key in SHOWN_METRICS:
        table.add_row(key.replace("confidence", f"confidence {result['confidence']:g}"), _number(result[key]))
    out.print(table)
    levels = Table("level", "images", "accuracy", "balanced", "most confused (true -> predicted: count)",
                   title="per level")
    for level, figures in result["per_level"].items():
        confused = "; ".join(f"{c['true']} -> {c['predicted'] or '(shallower leaf)'}: {c['count']}"
                             for c in figures["confusions"])
        levels.add_row(level, str(figures["n"]), _number(figures["accuracy"]), _number(figures["balanced_accuracy"]),
                       confused or "-")
    out.print(levels)
    worst = sorted(result["per_class_recall"].items(), key=lambda item: (item[1]["recall"], -item[1]["images"]))
    out.print("lowest recall: " + ", ".join(f"{name} {v['recall']:.2f} ({v['images']})"
                                           for name, v in worst[:WORST_CLASSES]))
    if result["worst_class_at_confidence"]:
        w = result["worst_class_at_confidence"]
        out.print(f"worst class at confidence {result['confidence']:g}: {w['name']} ({w['id']}), {w['correct']:.1%} "
                  f"correct of {w['images']} images, mean depth {w['mean_depth']:.2f}")
    if mix and mix["absent_classes"]:
        out.print(f"the mix names {len(mix['absent_classes'])} classes without test images (first: "
                  f"{mix['absent_classes'][0]}); they could not be weighed")
    if result["unseen"]:
        u = result["unseen"]
        out.print(f"unseen classes ({u['images']} images): {u['at_known_ancestor']:.1%} placed at a correct ancestor "
                  f"({u['at_deepest_known']:.1%} at the deepest known node), {u['in_wrong_leaf']:.1%} forced into "
                  f"a wrong leaf, {u['elsewhere']:.1%} elsewhere")
    if result["unreadable"]:
        console.print(f"{result['unreadable']} images could not be read and were left out")


def compare(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories or built-in runs, each evaluated with "
                                                    "hier evaluate."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the table as CSV."),
    plot: Optional[Path] = typer.Option(None, help="Write the runs' operating curves to this .png/.svg/.pdf."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --csv or --plot file."),
):
    """One table of the runs' evaluation metrics, and optionally one plot of their operating curves.

    Example: hier compare runs/classifier runs/arcface-multihead --csv compare.csv --plot curves.png
    """
    from hier.infer.compare import COMPARE_COLUMNS
    from hier.infer.compare import compare as run_compare
    from hier.runs import resolve_run

    run_dirs = [resolve_run(run_dir, console) for run_dir in run_dirs]
    rows, _, notes = run_compare(run_dirs, csv_path=csv_path, plot=plot, force=force)
    table = Table("metric", *(row["run"] for row in rows), title="evaluation metrics")  # one column per run
    for key, header in COMPARE_COLUMNS:
        table.add_row(header, *(_number(row[key]) for row in rows))
    Console().print(table)
    for note in notes:
        console.print(f"note: {note}")
    if csv_path is not None:
        console.print(f"table written to {csv_path}")
    if plot is not None:
        console.print(f"operating curves written to {plot}")


def explain(
    arguments: List[Path] = typer.Argument(..., metavar="[RUN] IMAGE",
                                           help="A run (default: the newest under ./runs, else the built-in "
                                                "imagenet-lite0), then one image."),
    run: Optional[Path] = _RUN,
    confidence: List[float] = typer.Option([0.3, 0.6, 0.9, 0.99], "--confidence", "-c",
                                           help="Confidences to answer at (repeat the option)."),
    plot: Optional[Path] = typer.Option(None, help="Also draw the path and the answers to this .png/.svg/.pdf."),
    uncalibrated: bool = _UNCALIBRATED,
    force: bool = typer.Option(False, "--force", help="Replace an existing --plot file."),
    device: str = _DEVICE,
):
    """One image at several confidences: the most probable path with each node's probability, and the
    node answered at each confidence (higher confidence, an answer higher in the tree).

    Example: hier explain --run imagenet-lite0 cat.jpg -c 0.3 -c 0.9 --plot cat.png
    """
    from hier.infer.explain import answer_path

    levels = sorted({_confidence(level) for level in confidence})
    choice = _choose(arguments, run, most=1)
    if not choice.sources:
        raise InputError("no image given: hier explain [RUN] IMAGE")
    result = answer_path(choice.run_dir, choice.sources[0], levels, use_calibration=not uncalibrated,
                         device=device, plot=plot, force=force)
    table = Table("node", "probability", "answer at", title=f"{choice.sources[0]}"
                  + ("" if result.calibrated else " (uncalibrated)"))
    off_path = {node: p for node, p in result.answers.values() if node not in result.ids}
    for name, node, p in [*zip(result.names, result.ids, result.probabilities),
                          *((f"{result.answer_names[node]} (off the path)", node, p) for node, p in off_path.items())]:
        stops = [f"{level:g}" for level, (answered, _) in result.answers.items() if answered == node]
        table.add_row(name, f"{p:.3f}", ", ".join(stops))
    Console().print(table)
    if plot is not None:
        console.print(f"figure written to {plot}")


def export(
    arguments: List[Path] = typer.Argument(None, metavar="[RUN]",
                                           help="A run (default: the newest under ./runs, else the built-in "
                                                "imagenet-lite0)."),
    run: Optional[Path] = _RUN,
    out: Path = typer.Option(..., "--out", "-o", help="model.onnx, or model.xml (OpenVINO, with model.bin beside)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx or openvino (default: from the suffix)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing export."),
):
    """The run as one graph, images -> node probabilities (temperature included), for ONNX Runtime or OpenVINO
    without hier; the taxonomy, preprocessing and calibrated thresholds in its metadata (docs/export.md).

    Example: hier export runs/demo -o model.onnx
    """
    from hier.infer.export import export_run

    choice = _choose(arguments or [], run, most=0)
    written = export_run(choice.run_dir, out, fmt=fmt, force=force)
    console.print(f"exported {choice.run_dir} to {written}" + (f" and {written.with_suffix('.bin')}"
                                                               if written.suffix == ".xml" else ""))
