"""``hier evaluate``: every metric of docs/confidence.md from one pass over a split.

The images are scored once; node probabilities come from the calibrated temperature (when the run
has one and it is wanted) and the metrics are computed from them: leaf top-1/top-5, hierarchical
P/R/F1, mistake severity, hierarchical distance @k, the figures at the chosen confidence, the exact
operating curve and its area, calibration error per level, the hierarchy-violation rate, per-level
and per-class figures, and where held-out species are given, where their images land; with ``reweight``,
every figure over images as if the split had another class mix (:mod:`hier.infer.reweight`). The result is
returned and written to ``RUN_DIR/evaluation.json``, which ``hier compare`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hier import runs
from hier.backbones.device import pick_device
from hier.core.errors import InputError
from hier.core.files import atomic_write_text
from hier.core.progress import Progress
from hier.data.labels import resolve_labels
from hier.data.readers import read_dataset
from hier.infer.answer import answer_rule, decode, decode_rule, preference
from hier.infer.curve import at_confidence, curve_area, operating_curve, recall_at_correct
from hier.infer.plots import check_plot_path, plot_curves
from hier.infer.reweight import class_mix_weights
from hier.infer.scoring import (
    dataset_of,
    held_out_split,
    node_probabilities,
    score_samples,
)
from hier.metrics import hierarchical as metrics
from hier.metrics.bounds import DELTA, clopper_pearson_upper, most_surely_short
from hier.metrics.correctness import is_correct, top_leaves
from hier.runs.layout import read_evaluation as read_evaluation_file
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

STANDARD_LEVELS = (0.8, 0.9, 0.95)  # the levels every evaluation also reports, for comparisons
CURVE_POINTS = 400  # operating-curve points kept in evaluation.json (its area is computed on all of them)
TOP_K = 5


def evaluate_probabilities(probs: torch.Tensor, targets: torch.Tensor, taxonomy: Taxonomy, threshold: float,
                           *, level_thresholds: dict[float, float] | None = None, rule: str = "deepest",
                           weights: torch.Tensor | None = None) -> dict:
    """All metrics of a split from its node probabilities [N, nodes] and node targets [N].

    ``threshold`` is the decoder's threshold for the chosen confidence; ``level_thresholds`` maps the
    standard levels to theirs (default: the level itself, as without calibration). ``rule``: the decoder's
    (``deepest`` or ``informative``), for the answers at a threshold and the operating curve. ``weights``
    (one per image, :mod:`hier.infer.reweight`) weigh every figure over images; the per-class ones and the
    counts of images are the test set's own.
    """
    tree = TreeTensors(taxonomy)
    chosen = at_threshold(probs, targets, tree, threshold, rule, weights)
    answered = decode(probs, threshold, tree.depth, preference(tree, rule))
    curve = operating_curve(probs, targets, tree, rule=rule, weights=weights)
    level_thresholds = level_thresholds if level_thresholds is not None else {c: c for c in STANDARD_LEVELS}
    per_class = per_class_at(answered, targets, tree, taxonomy.ids)
    return {
        "images": len(targets),
        **top1_figures(probs, targets, tree, taxonomy.ids, weights),
        "threshold": threshold,
        "correct_at_confidence": chosen["correct"],
        "correct_at_confidence_upper_bound": chosen["correct_upper_bound"],
        "below_label_at_confidence": chosen["below_label"],
        "mean_depth_at_confidence": chosen["mean_depth"],
        "information_recall_at_confidence": chosen["information_recall"],
        **answers_by_rank(answered, taxonomy, weights),
        "operating_curve_area": curve_area(curve),
        "information_recall_at_correct_90": recall_at_correct(curve, 0.9),
        "information_recall_at_correct_95": recall_at_correct(curve, 0.95),
        "ece": metrics.calibration_error(probs, targets, tree, weights),
        "ece_per_level": {str(k): v for k, v in metrics.calibration_per_level(probs, targets, tree, weights).items()},
        "violation_rate": metrics.violation_rate(probs, torch.as_tensor(taxonomy.parent), weights=weights),
        "at_levels": {f"{c:g}": {"threshold": t, **at_threshold(probs, targets, tree, t, rule, weights)}
                      for c, t in level_thresholds.items()},
        "per_class_at_confidence": per_class,
        "worst_class_at_confidence": worst_class(per_class, taxonomy),
        "operating_curve": thin_curve(curve, CURVE_POINTS),
    }


def top1_figures(probs: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, names: list[str],
                 weights: torch.Tensor | None) -> dict:
    """The figures of the most probable leaf (and the k most probable): accuracy, balanced accuracy and recall
    per class, hierarchical P/R/F1, mistake severity, hierarchical distance, per level."""
    pred_leaf = top_leaves(probs, tree, 1)[:, 0]
    recall = metrics.per_class_recall(pred_leaf, targets, tree)
    return {
        "leaf_accuracy": metrics.top_k_accuracy(probs, targets, tree, 1, weights),
        "leaf_top5_accuracy": metrics.top_k_accuracy(probs, targets, tree, TOP_K, weights),
        "balanced_accuracy": metrics.balanced_accuracy(recall),
        **metrics.hierarchical_prf(pred_leaf, targets, tree, weights),
        # the LCA's height (Bertinetto), then the edges from the label up to the LCA
        "mistake_severity": metrics.mistake_severity(pred_leaf, targets, tree, weights=weights),
        "mistake_severity_label": metrics.mistake_severity(pred_leaf, targets, tree, "label", weights),
        "hierarchical_distance_at_1": metrics.hierarchical_distance_at_k(probs, targets, tree, 1, weights=weights),
        "hierarchical_distance_at_5": metrics.hierarchical_distance_at_k(probs, targets, tree, TOP_K,
                                                                         weights=weights),
        "per_level": {str(level): {**figures, "confusions": [
            {"true": names[t], "predicted": names[p] if p >= 0 else None, "count": count}
            for t, p, count in figures["confusions"]]}
            for level, figures in metrics.per_level(pred_leaf, targets, tree, weights=weights).items()},
        "per_class_recall": {names[c]: {"recall": r, "images": count} for c, (r, count) in recall.items()},
    }


def at_threshold(probs: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, threshold: float, rule: str,
                 weights: torch.Tensor | None) -> dict[str, float]:
    """The figures at a threshold, and the upper bound of its fraction correct: the split contradicts a promise
    above that bound (at risk DELTA). Weighted, the bound counts the images the figures are worth (Kish's
    effective number, (sum w)^2 / sum w^2)."""
    n = len(targets) if weights is None else max(1, round((weights.sum() ** 2 / weights.square().sum()).item()))
    figures = at_confidence(probs, targets, tree, threshold, rule, weights)
    answered = decode(probs, threshold, tree.depth, preference(tree, rule))
    return {**figures, "correct_upper_bound": clopper_pearson_upper(round(figures["correct"] * n), n, DELTA),
            "below_label": metrics.weighted_mean(is_below_label(answered, targets, tree), weights)}


# Ranks at or below a genus: an answer there names the organism an ecologist counts (as does a leaf of the tree,
# such as Bubbles or Detritus, which has no rank below it).
DEEP_RANKS = ("genus", "subgenus", "species", "subspecies", "variety", "forma")


def answers_by_rank(answered: torch.Tensor, taxonomy: Taxonomy, weights: torch.Tensor | None = None) -> dict:
    """The share of the answers at each rank (a node without one: by its depth), and the share answered at a
    genus or deeper or at a leaf of the tree: the images nobody has to look at again."""
    weights = torch.ones(len(answered), dtype=torch.float64) if weights is None else weights.double()
    total = max(weights.sum().item(), 1e-12)
    shares: dict[str, float] = {}
    deep = 0.0
    for node, w in zip(answered.tolist(), weights.tolist()):
        label = taxonomy.ranks[node] or f"depth {taxonomy.depth[node]}"
        shares[label] = shares.get(label, 0.0) + w / total
        deep += w * (taxonomy.ranks[node] in DEEP_RANKS or taxonomy.is_leaf(node))
    return {"answers_by_rank_at_confidence": dict(sorted(shares.items())),
            "genus_or_deeper_at_confidence": deep / total}


def is_below_label(pred: torch.Tensor, targets: torch.Tensor, tree: TreeTensors) -> torch.Tensor:
    """Whether each answer is strictly below its label (an inner node: a label that stops at genus).

    correct@C counts them as correct because the label cannot refute them; nor can it confirm them.
    """
    return tree.is_ancestor(targets, pred) & (pred != targets)


def per_class_at(answered: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, ids: list[str]) -> dict:
    """Per true class (the label's node): its images, the fraction answered correctly and their mean depth,
    at the chosen confidence. Any mix of classes whose every class is at or above C keeps C."""
    correct = is_correct(answered, targets, tree).double()
    depth = tree.depth[answered].double()
    classes, index, counts = targets.unique(return_inverse=True, return_counts=True)
    sums = torch.zeros(len(classes), 2, dtype=torch.float64).index_add_(0, index, torch.stack([correct, depth], 1))
    return {ids[c]: {"images": int(k), "correct": (right / k).item(), "mean_depth": (deep / k).item()}
            for c, k, (right, deep) in zip(classes.tolist(), counts, sums)}


def worst_class(per_class: dict, taxonomy: Taxonomy) -> dict | None:
    """:func:`most_surely_short` of the classes at the chosen confidence, with its bound."""
    if not per_class:
        return None

    def correct(node: str) -> int:
        return round(per_class[node]["correct"] * per_class[node]["images"])

    node = most_surely_short(list(per_class), correct, lambda n: per_class[n]["images"])
    figures = per_class[node]
    return {"id": node, "name": taxonomy.names[taxonomy.index(node)], **figures,
            "correct_upper_bound": clopper_pearson_upper(correct(node), figures["images"])}


def thin_curve(curve: dict[str, list[float]], points: int) -> dict[str, list[float]]:
    """At most ``points`` points of a curve, evenly spread over its thresholds, ends kept."""
    size = len(curve["threshold"])
    if size <= points:
        return curve
    keep = torch.linspace(0, size - 1, points).round().long().unique().tolist()
    return {key: [values[i] for i in keep] for key, values in curve.items()}


def unseen_figures(probs: torch.Tensor, known: torch.Tensor, taxonomy: Taxonomy, threshold: float,
                   rule: str = "deepest") -> dict:
    tree = TreeTensors(taxonomy)
    pred = decode(probs, threshold, tree.depth, preference(tree, rule))
    return {"images": len(known), **metrics.unseen_placement(pred, known, tree),
            "mean_depth": tree.depth[pred].float().mean().item()}


def unseen_folder(dataset) -> Path | None:
    """``unseen/`` beside the split folders (``hier data synth`` puts held-out species there)."""
    return next((p for p in dataset.ignored if p.name == "unseen" and p.is_dir()), None)


def evaluate(run_dir, dataset=None, *, confidence: float = 0.9, split: str | None = None, unseen=None,
             use_calibration: bool = True, device: str = "auto", batch_size: int | None = None,
             workers: int | None = None, plot: Path | None = None, force: bool = False,
             runtime: str | None = None, tta: bool | None = None, reweight: str | None = None,
             console=None, progress: bool = True) -> dict:
    """Score a split (test by default) and return the metrics; also written to RUN_DIR/evaluation.json.

    ``dataset`` defaults to the one the run was trained on; ``force`` lets ``plot`` replace an existing file;
    ``reweight`` (``uniform`` or a file of class proportions) scores the split as if it had that class mix.
    """
    run_dir = runs.check_run_dir(run_dir)
    dataset = dataset_of(run_dir, dataset, "evaluate")
    rule = answer_rule(run_dir, confidence, use_calibration=use_calibration)
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    config["runtime"] = runtime or config.get("runtime")  # --runtime, else the run's own
    config["tta"] = config.get("tta") if tta is None else tta  # --tta/--no-tta, else the run's own
    samples, split_name, data = held_out_split(run_dir, dataset, split, "test")
    if reweight is not None:  # a bad mix fails before the images are scored
        nodes = resolve_labels(samples, taxonomy)
        class_mix_weights(torch.tensor([nodes[s.label] for s in samples]), reweight, taxonomy)
    unseen_samples = []
    unseen_dir = Path(unseen) if unseen is not None else unseen_folder(data)
    if unseen_dir is not None:
        unseen_samples = read_dataset(unseen_dir).samples
    if plot is not None:  # never over one of the images (or the table) just read
        read = [s.path for s in [*samples, *unseen_samples]] + ([Path(dataset)] if Path(dataset).is_file() else [])
        check_plot_path(plot, force=force, inputs=[*runs.run_files(run_dir), *read])
    with Progress(console=console, enabled=progress) as bar:
        scored = score_samples(model, samples, taxonomy, config, device, batch_size=batch_size, workers=workers,
                               progress=bar, what=f"evaluate {split_name}", cache_dir=runs.export_cache(run_dir))
        unseen_scored = score_samples(model, unseen_samples, taxonomy, config, device, batch_size=batch_size,
                                      workers=workers, progress=bar, what="unseen",
                                      cache_dir=runs.export_cache(run_dir)) if unseen_samples else None
    probs = node_probabilities(model, scored.scores, rule.temperature, device)
    weights, mix = class_mix_weights(scored.targets, reweight, taxonomy) if reweight is not None else (None, None)
    rule_name = decode_rule(config)
    level_thresholds = None
    if rule.calibrated:
        entries = {c: rule.calibration.entry(c) for c in STANDARD_LEVELS}
        level_thresholds = {c: e["threshold"] for c, e in entries.items() if e and e["threshold"] is not None}
    result = {"run": str(run_dir), "head": config["head"], "dataset": str(dataset), "split": split_name,
              "unreadable": len(scored.unreadable), "confidence": confidence, "calibrated": rule.calibrated,
              "temperature": rule.temperature,
              "decode_rule": rule_name, "prior": config["prior"], "reweight": mix,
              **evaluate_probabilities(probs, scored.targets, taxonomy, rule.threshold,
                                       level_thresholds=level_thresholds, rule=rule_name, weights=weights),
              "unseen": None}
    if unseen_scored is not None:
        unseen_probs = node_probabilities(model, unseen_scored.scores, rule.temperature, device)
        result["unseen"] = {"folder": str(unseen_dir), "unreadable": len(unseen_scored.unreadable),
                            **unseen_figures(unseen_probs, unseen_scored.targets, taxonomy, rule.threshold,
                                             rule_name)}
    atomic_write_text(run_dir / runs.EVALUATION, json.dumps(result, indent=1) + "\n")
    if plot is not None:
        plot_curves({run_dir.name: result}, plot)
    return result


def read_evaluation(run_dir) -> dict:
    run_dir = runs.check_run_dir(run_dir)
    path = run_dir / runs.EVALUATION
    if not path.is_file():
        raise InputError(f"no {runs.EVALUATION}: run hier evaluate {run_dir} DATASET first", path=run_dir)
    return read_evaluation_file(run_dir)
