"""``hier compare``: one row per run from the ``evaluation.json`` that ``hier evaluate`` wrote."""

from __future__ import annotations

from pathlib import Path

from hier.core.errors import InputError
from hier.core.files import atomic_write_text, check_output_file
from hier.core.tables import csv_text
from hier.infer.evaluate import read_evaluation
from hier.infer.plots import check_plot_path, plot_curves
from hier.runs import run_files

COMPARE_COLUMNS = (  # (key, header)
    ("head", "head"), ("split", "split"), ("confidence", "C"), ("calibrated", "calibrated"),
    ("leaf_accuracy", "leaf acc"), ("leaf_top5_accuracy", "top-5"), ("balanced_accuracy", "balanced"),
    ("hierarchical_f1", "hF1"), ("hierarchical_f1_macro", "hF1 macro"), ("mistake_severity", "severity"),
    ("hierarchical_distance_at_5", "dist@5"), ("correct_at_confidence", "correct@C"),
    ("below_label_at_confidence", "below label@C"),
    ("mean_depth_at_confidence", "depth@C"), ("information_recall_at_confidence", "info recall@C"),
    ("operating_curve_area", "curve area"), ("information_recall_at_correct_90", "recall@90%"),
    ("information_recall_at_correct_95", "recall@95%"), ("ece", "ECE"), ("violation_rate", "violations"),
    ("unseen_at_known_ancestor", "unseen at ancestor"), ("unseen_in_wrong_leaf", "unseen in wrong leaf"),
)


def compare(run_dirs, *, csv_path: Path | None = None, plot: Path | None = None,
            force: bool = False) -> tuple[list[dict], dict[str, dict], list[str]]:
    """One row per run (``run`` then the COMPARE_COLUMNS keys), the evaluations by run name, and notes
    on what makes the rows not comparable (different data, splits or confidences).

    With ``csv_path`` the rows are also written as CSV, with ``plot`` the runs' operating curves drawn;
    both are checked before anything is read (never over a run's own file; an existing one only with ``force``).
    """
    if not run_dirs:
        raise InputError("give at least one run directory")
    check_outputs(run_dirs, csv_path, plot, force=force)
    evaluations, rows = {}, []
    for run_dir in run_dirs:
        result = read_evaluation(run_dir)
        name = Path(run_dir).name
        if name in evaluations:
            name = str(run_dir)
        evaluations[name] = result
        unseen = result.get("unseen") or {}
        flat = {**result, "unseen_at_known_ancestor": unseen.get("at_known_ancestor"),
                "unseen_in_wrong_leaf": unseen.get("in_wrong_leaf")}
        rows.append({"run": name, **{key: flat.get(key) for key, _ in COMPARE_COLUMNS}})
    notes = [f"the runs differ in {what}: {', '.join(sorted({str(r.get(key)) for r in evaluations.values()}))}"
             for key, what in (("dataset", "dataset"), ("split", "split"), ("confidence", "confidence"),
                               ("calibrated", "calibration"))
             if len({str(r.get(key)) for r in evaluations.values()}) > 1]
    if csv_path is not None:
        atomic_write_text(csv_path, csv_text(rows))
    if plot is not None:
        plot_curves(evaluations, plot)
    return rows, evaluations, notes


def check_outputs(run_dirs, csv_path: Path | None, plot: Path | None, *, force: bool) -> None:
    """Before reading anything: the table and the plot may be written, and neither replaces a run's file."""
    inputs = [path for run_dir in run_dirs for path in run_files(run_dir)]
    if csv_path is not None:
        check_output_file(csv_path, force=force, inputs=inputs)
    if plot is not None:
        check_plot_path(plot, force=force, inputs=inputs)
