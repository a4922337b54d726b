"""``hier evaluate`` and ``hier compare``: every metric of docs/confidence.md from one pass over a split.

The images are scored once; node probabilities come from the calibrated temperature (when the run
has one and it is wanted) and the metrics are computed from them: leaf top-1/top-5, hierarchical
P/R/F1, mistake severity, hierarchical distance @k, the figures at the chosen confidence, the exact
operating curve and its area, calibration error per level, the hierarchy-violation rate, per-level
and per-class figures, and where held-out species are given, where their images land. The result is
returned and written to ``RUN_DIR/evaluation.json``, which ``hier compare`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hier.core.errors import InputError
from hier.core.figures import pyplot, save_figure
from hier.core.files import atomic_write_text
from hier.core.progress import Progress
from hier.data.labels import resolve_labels
from hier.data.readers import read_dataset
from hier.heads.tree import TreeTensors
from hier.infer.calibration import DELTA, clopper_pearson_upper
from hier.infer.calibration import decoding as decoding_for
from hier.infer.predict import (
    check_output,
    dataset_of,
    held_out_split,
    node_probabilities,
    score_samples,
)
from hier.metrics import hierarchical as metrics
from hier.taxo import Taxonomy
from hier.train import runs
from hier.train.device import pick_device

EVALUATION = "evaluation.json"
STANDARD_LEVELS = (0.8, 0.9, 0.95)  # the levels every evaluation also reports, for comparisons
CURVE_POINTS = 400  # operating-curve points kept in evaluation.json (its area is computed on all of them)
TOP_K = 5


def evaluate_probabilities(probs: torch.Tensor, targets: torch.Tensor, taxonomy: Taxonomy, threshold: float,
                           *, level_thresholds: dict[float, float] | None = None) -> dict:
    """All metrics of a split from its node probabilities [N, nodes] and node targets [N].

    ``threshold`` is the decoder's threshold for the chosen confidence; ``level_thresholds`` maps the
    standard levels to theirs (default: the level itself, as without calibration).
    """
    tree = TreeTensors(taxonomy)
    names = taxonomy.ids
    n = len(targets)
    pred_leaf = metrics.top_leaves(probs, tree, 1)[:, 0]
    recall = metrics.per_class_recall(pred_leaf, targets, tree)

    def at(t: float) -> dict[str, float]:
        """The figures at threshold t, and the upper bound of its fraction correct: the split contradicts
        a promise above that bound (at risk DELTA)."""
        figures = metrics.at_confidence(probs, targets, tree, t)
        return {**figures, "correct_upper_bound": clopper_pearson_upper(round(figures["correct"] * n), n, DELTA)}

    chosen = at(threshold)
    curve = metrics.operating_curve(probs, targets, tree)
    level_thresholds = level_thresholds if level_thresholds is not None else {c: c for c in STANDARD_LEVELS}
    out = {
        "images": n,
        "leaf_accuracy": metrics.top_k_accuracy(probs, targets, tree, 1),
        "leaf_top5_accuracy": metrics.top_k_accuracy(probs, targets, tree, TOP_K),
        "balanced_accuracy": sum(r for r, _ in recall.values()) / max(len(recall), 1),
        **metrics.hierarchical_prf(pred_leaf, targets, tree),
        "mistake_severity": metrics.mistake_severity(pred_leaf, targets, tree),
        "hierarchical_distance_at_1": metrics.hierarchical_distance_at_k(probs, targets, tree, 1),
        "hierarchical_distance_at_5": metrics.hierarchical_distance_at_k(probs, targets, tree, TOP_K),
        "threshold": threshold,
        "correct_at_confidence": chosen["correct"],
        "correct_at_confidence_upper_bound": chosen["correct_upper_bound"],
        "mean_depth_at_confidence": chosen["mean_depth"],
        "information_recall_at_confidence": chosen["information_recall"],
        "operating_curve_area": metrics.curve_area(curve),
        "information_recall_at_correct_90": metrics.recall_at_correct(curve, 0.9),
        "information_recall_at_correct_95": metrics.recall_at_correct(curve, 0.95),
        "ece": metrics.calibration_error(probs, targets, tree),
        "ece_per_level": {str(k): v for k, v in metrics.calibration_per_level(probs, targets, tree).items()},
        "violation_rate": metrics.violation_rate(probs, torch.as_tensor(taxonomy.parent)),
        "at_levels": {f"{c:g}": {"threshold": t, **at(t)} for c, t in level_thresholds.items()},
        "per_level": {str(level): {**figures, "confusions": [
            {"true": names[t], "predicted": names[p] if p >= 0 else None, "count": count}
            for t, p, count in figures["confusions"]]}
            for level, figures in metrics.per_level(pred_leaf, targets, tree).items()},
        "per_class_recall": {names[c]: {"recall": r, "images": count} for c, (r, count) in recall.items()},
        "operating_curve": thin_curve(curve, CURVE_POINTS),
    }
    return out


def thin_curve(curve: dict[str, list[float]], points: int) -> dict[str, list[float]]:
    """At most ``points`` points of a curve, evenly spread over its thresholds, ends kept."""
    size = len(curve["threshold"])
    if size <= points:
        return curve
    keep = torch.linspace(0, size - 1, points).round().long().unique().tolist()
    return {key: [values[i] for i in keep] for key, values in curve.items()}


def unseen_figures(probs: torch.Tensor, known: torch.Tensor, taxonomy: Taxonomy, threshold: float) -> dict:
    tree = TreeTensors(taxonomy)
    pred = metrics.decode(probs, threshold, tree.depth)
    return {"images": len(known), **metrics.unseen_placement(pred, known, tree),
            "mean_depth": tree.depth[pred].float().mean().item()}


def unseen_folder(dataset) -> Path | None:
    """``unseen/`` beside the split folders (``hier data synth`` puts held-out species there)."""
    return next((p for p in dataset.ignored if p.name == "unseen" and p.is_dir()), None)


def evaluate(run_dir, dataset=None, *, confidence: float = 0.9, split: str | None = None, unseen=None,
             use_calibration: bool = True, device: str = "auto", batch_size: int | None = None,
             workers: int | None = None, plot: Path | None = None, console=None, progress: bool = True) -> dict:
    """Score a split (test by default) and return the metrics; also written to RUN_DIR/evaluation.json.

    ``dataset`` defaults to the one the run was trained on.
    """
    run_dir = runs.check_run_dir(run_dir)
    dataset = dataset_of(run_dir, dataset, "evaluate")
    decoding = decoding_for(run_dir, confidence, use_calibration=use_calibration)
    if plot is not None:
        check_plot_path(plot)
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    samples, split_name, data = held_out_split(run_dir, dataset, split, "test")
    unseen_samples = []
    unseen_dir = Path(unseen) if unseen is not None else unseen_folder(data)
    if unseen_dir is not None:
        unseen_samples = read_dataset(unseen_dir).samples
    with Progress(console=console, enabled=progress) as bar:
        scored = score_samples(model, samples, resolve_labels(samples, taxonomy), config, device,
                               batch_size=batch_size, workers=workers, progress=bar, what=f"evaluate {split_name}")
        unseen_scored = score_samples(model, unseen_samples, resolve_labels(unseen_samples, taxonomy), config,
                                      device, batch_size=batch_size, workers=workers, progress=bar,
                                      what="unseen") if unseen_samples else None
    probs = node_probabilities(model, scored.scores, decoding.temperature, device)
    level_thresholds = None
    if decoding.calibrated:
        entries = {c: decoding.calibration.entry(c) for c in STANDARD_LEVELS}
        level_thresholds = {c: e["threshold"] for c, e in entries.items() if e and e["threshold"] is not None}
    result = {"run": str(run_dir), "head": config["head"], "dataset": str(dataset), "split": split_name,
              "unreadable": len(scored.unreadable), "confidence": confidence, "calibrated": decoding.calibrated,
              "temperature": decoding.temperature,
              **evaluate_probabilities(probs, scored.targets, taxonomy, decoding.threshold,
                                       level_thresholds=level_thresholds),
              "unseen": None}
    if unseen_scored is not None:
        unseen_probs = node_probabilities(model, unseen_scored.scores, decoding.temperature, device)
        result["unseen"] = {"folder": str(unseen_dir), "unreadable": len(unseen_scored.unreadable),
                            **unseen_figures(unseen_probs, unseen_scored.targets, taxonomy, decoding.threshold)}
    atomic_write_text(run_dir / EVALUATION, json.dumps(result, indent=1) + "\n")
    if plot is not None:
        plot_curves({run_dir.name: result}, plot)
    return result


# ---- plots and comparisons ----------------------------------------------------------------------


def check_plot_path(path: Path) -> None:
    """Before any work: a plot file that can be written (existing ones are replaced)."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError("the plot file must end in .png, .svg or .pdf", path=path)
    check_output(path, force=True)


def plot_curves(results: dict[str, dict], path: Path) -> None:
    """Fraction correct against information recall, one line per evaluation, its operating point marked."""
    plt = pyplot()

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for label, result in results.items():
        curve = result["operating_curve"]
        line, = axes.plot(curve["information_recall"], curve["correct"],
                          label=f"{label} (area {result['operating_curve_area']:.3f})")
        axes.plot(result["information_recall_at_confidence"], result["correct_at_confidence"], "o",
                  color=line.get_color())
    axes.set_xlabel("information recall  I(lca) / I(true)")
    axes.set_ylabel("fraction correct")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    axes.set_title("operating curve (dot: the chosen confidence)")
    save_figure(figure, path, bbox_inches="tight")


COMPARE_COLUMNS = (  # (key, header)
    ("head", "head"), ("split", "split"), ("confidence", "C"), ("calibrated", "calibrated"),
    ("leaf_accuracy", "leaf acc"), ("leaf_top5_accuracy", "top-5"), ("balanced_accuracy", "balanced"),
    ("hierarchical_f1", "hF1"), ("hierarchical_f1_macro", "hF1 macro"), ("mistake_severity", "severity"),
    ("hierarchical_distance_at_5", "dist@5"), ("correct_at_confidence", "correct@C"),
    ("mean_depth_at_confidence", "depth@C"), ("information_recall_at_confidence", "info recall@C"),
    ("operating_curve_area", "curve area"), ("information_recall_at_correct_90", "recall@90%"),
    ("information_recall_at_correct_95", "recall@95%"), ("ece", "ECE"), ("violation_rate", "violations"),
    ("unseen_at_known_ancestor", "unseen at ancestor"), ("unseen_in_wrong_leaf", "unseen in wrong leaf"),
)


def read_evaluation(run_dir) -> dict:
    run_dir = runs.check_run_dir(run_dir)
    path = run_dir / EVALUATION
    if not path.is_file():
        raise InputError(f"no {EVALUATION}: run hier evaluate {run_dir} DATASET first", path=run_dir)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e.msg}); run hier evaluate again", path=path) from None


def compare(run_dirs) -> tuple[list[dict], dict[str, dict], list[str]]:
    """One row per run (``run`` then the COMPARE_COLUMNS keys), the evaluations by run name, and notes
    on what makes the rows not comparable (different data, splits or confidences)."""
    if not run_dirs:
        raise InputError("give at least one run directory")
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
    return rows, evaluations, notes


