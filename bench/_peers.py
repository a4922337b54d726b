"""bench/peers.py's scoring, its scikit-learn peers (logistic regression, HiClass), and its table and plot.

Every model's figures come from `hier.metrics` and `hier.infer.evaluate.evaluate_probabilities`: the
probabilistic models (the heads, logistic regression) through node probabilities, calibrated with
`hier.infer.calibration`; HiClass, which gives hard predictions only, through the same metric functions
applied to its predicted nodes.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

PEERS = ("logreg", "hiclass-lcppn", "hiclass-lcpn")
CONFIDENCE = 0.9
SCORED_KEYS = (
    "leaf_accuracy",
    "balanced_accuracy",
    "hierarchical_f1",
    "mistake_severity",
    "correct_at_confidence",
    "mean_depth_at_confidence",
    "operating_curve_area",
)
COLUMNS = (  # key, header, +1 higher is better, -1 lower, 0 neither
    ("leaf_accuracy", "leaf acc", +1),
    ("balanced_accuracy", "balanced acc", +1),
    ("hierarchical_f1", "hF1", +1),
    ("mistake_severity", "mistake severity", -1),
    ("correct_at_confidence", "correct @0.9", 0),
    ("mean_depth_at_confidence", "depth @0.9", +1),
    ("operating_curve_area", "curve area", +1),
    ("seconds", "wall s", 0),
)
RANK_ORDER = ("root", "kingdom", "phylum", "class", "order", "family", "genus", "species", "label")


def targets_of(samples, taxonomy) -> torch.Tensor:
    from hier.data.labels import resolve_labels

    nodes = resolve_labels(samples, taxonomy)
    return torch.tensor([nodes[s.label] for s in samples])


def rank_of(taxonomy, node: int) -> str:
    """A node's WoRMS rank; the root; "label" for a dataset label without a rank (Bubbles, Detritus)."""
    if node == taxonomy.root:
        return "root"
    return taxonomy.ranks[node] or "label"


def probabilistic_report(
    cal_scores, cal_targets, test_scores, test_targets, node_probabilities, taxonomy, *, calibration=None
) -> dict:
    """Calibrate (unless ``calibration`` is given) and score as `hier calibrate` and `hier evaluate` do; the
    targets are node indices."""
    from hier.infer.answer import decode
    from hier.infer.calibration import fit_temperature, threshold_table
    from hier.infer.evaluate import STANDARD_LEVELS, answers_by_rank, evaluate_probabilities
    from hier.metrics.bounds import DELTA
    from hier.runs.calibration import Calibration
    from hier.tree import TreeTensors

    tree = TreeTensors(taxonomy)
    if calibration is None:
        temperature, _, _ = fit_temperature(cal_scores, cal_targets, node_probabilities, taxonomy)
        probs = node_probabilities(cal_scores / temperature)
        calibration = Calibration(temperature, DELTA, len(cal_targets), threshold_table(probs, cal_targets, tree), "")
    levels = {c: calibration.entry(c)["threshold"] for c in STANDARD_LEVELS}
    threshold = levels[CONFIDENCE]
    probs = node_probabilities(test_scores / calibration.temperature)
    result = evaluate_probabilities(
        probs,
        test_targets,
        taxonomy,
        threshold if threshold is not None else 1.0,
        level_thresholds={c: t for c, t in levels.items() if t is not None},
    )
    answered = decode(probs, threshold if threshold is not None else 1.0, tree.depth)
    answers = answered.tolist()
    by_rank = Counter(rank_of(taxonomy, a) for a in answers)
    report = {
        key: result[key]
        for key in (
            "leaf_accuracy",
            "balanced_accuracy",
            "hierarchical_f1",
            "hierarchical_precision",
            "hierarchical_recall",
            "mistake_severity",
            "correct_at_confidence",
            "mean_depth_at_confidence",
            "operating_curve_area",
            "information_recall_at_correct_90",
            "operating_curve",
            "information_recall_at_confidence",
        )
    }
    report["genus_or_deeper_at_confidence"] = answers_by_rank(answered, taxonomy)["genus_or_deeper_at_confidence"]
    if threshold is None:  # the calibration split cannot certify 0.9
        report.update(correct_at_confidence=None, mean_depth_at_confidence=None, genus_or_deeper_at_confidence=None)
    return {
        **report,
        "temperature": calibration.temperature,
        "threshold": threshold,
        "answers_by_rank": {rank: by_rank[rank] / len(answers) for rank in RANK_ORDER if by_rank[rank]},
        "per_class_recall": {name: figures["recall"] for name, figures in result["per_class_recall"].items()},
    }


def hard_report(pred: torch.Tensor, targets: torch.Tensor, taxonomy) -> dict:
    """The figures of hard predictions (node indices), by the functions evaluate_probabilities uses.

    HiClass answers a dataset label, and some labels are inner nodes (Bacillariophyceae): such an answer
    for an image labelled deeper lies on the true path, which ``is_correct`` accepts. A head's top-1 is a
    leaf, never above a leaf label; to score HiClass's top-1 by the same rule, its leaf accuracy and
    per-class recall count an answer right only when it is the label or below it, and its answers above
    the label are reported apart. hF1 weighs such answers by their depth; mistake severity, which
    averages over ``is_correct``'s mistakes, leaves them out.
    """
    from hier.metrics import hierarchical as metrics
    from hier.tree import TreeTensors

    tree = TreeTensors(taxonomy)
    at_or_below = tree.is_ancestor(targets, pred)  # the label is the answer or above it
    above = (tree.depth[pred] < tree.depth[targets]) & tree.is_ancestor(pred, targets)
    strict = {
        int(c): (at_or_below[targets == c].double().mean().item(), int((targets == c).sum())) for c in targets.unique()
    }
    prf = metrics.hierarchical_prf(pred, targets, tree)
    return {
        "leaf_accuracy": at_or_below.float().mean().item(),
        "balanced_accuracy": metrics.balanced_accuracy(strict),
        **{k: prf[k] for k in ("hierarchical_f1", "hierarchical_precision", "hierarchical_recall")},
        "mistake_severity": metrics.mistake_severity(pred, targets, tree),
        "correct_at_confidence": None,
        "mean_depth_at_confidence": None,
        "operating_curve_area": None,
        "answers_above_label": above.float().mean().item(),
        "per_class_recall": {taxonomy.ids[c]: r for c, (r, _) in strict.items()},
    }


def run_peer(name: str, split: dict, seed: int, table, taxonomy_path: Path, scored: str) -> dict:
    """Train one scikit-learn peer on the train split's features and score it on ``scored``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from hier.taxo import Taxonomy

    taxonomy = Taxonomy.load(taxonomy_path)
    scaler = StandardScaler().fit(table.of([s.path for s in split["train"]]).numpy())

    def features(part):
        return scaler.transform(table.of([s.path for s in split[part]]).numpy())

    start = time.perf_counter()
    train_targets = targets_of(split["train"], taxonomy).numpy()
    logistic = LogisticRegression(max_iter=2000, random_state=seed)
    if name == "logreg":
        model = logistic.fit(features("train"), train_targets)
        node_probabilities = summed_up(model.classes_, taxonomy)

        def scores(part):
            return torch.as_tensor(model.decision_function(features(part)), dtype=torch.float32)

        report = probabilistic_report(
            scores("calibration"), targets_of(split["calibration"], taxonomy), scores(scored),
            targets_of(split[scored], taxonomy), node_probabilities, taxonomy
        )
    else:
        from hiclass import LocalClassifierPerNode, LocalClassifierPerParentNode

        kind = LocalClassifierPerParentNode if name == "hiclass-lcppn" else LocalClassifierPerNode
        model = kind(local_classifier=logistic, n_jobs=1)
        model.fit(features("train"), lineages(train_targets, taxonomy))
        pred = torch.tensor([deepest(row, taxonomy) for row in model.predict(features(scored))])
        report = hard_report(pred, targets_of(split[scored], taxonomy), taxonomy)
    return {**report, "seconds": time.perf_counter() - start}


def summed_up(classes, taxonomy):
    """Scores over a flat classifier's ``classes`` (node indices; logits) -> node probabilities, each class's
    probability added to its ancestors as a head's are."""
    above = torch.as_tensor(taxonomy.ancestor_matrix[classes], dtype=torch.float32)  # class -> its nodes
    root = torch.tensor([taxonomy.root])

    def node_probabilities(scores):
        # the root is certain, as every head's node probabilities have it (the sums may round below 1)
        return (torch.softmax(scores, dim=1) @ above).clamp(max=1.0).index_fill(1, root, 1.0)

    return node_probabilities


def lineages(targets, taxonomy) -> np.ndarray:
    """Each target's path of node ids below the root, padded with "" (HiClass's rows of labels)."""
    paths = [[taxonomy.ids[n] for n in taxonomy.lineage(int(t))[1:]] for t in targets]
    width = max(map(len, paths))
    return np.array([p + [""] * (width - len(p)) for p in paths], dtype=object)


def deepest(row, taxonomy) -> int:
    """The deepest node HiClass predicted (its last non-empty label; the root when it predicted none)."""
    named = [label for label in row if label]
    return taxonomy.index(named[-1]) if named else int(taxonomy.root)


# ---- the table and the plot ---------------------------------------------------------------------


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summary(rows: list[dict], models: list[str]) -> dict[str, dict]:
    """Per model and column: (mean, sd) over the seeds; None where the model has no such figure."""
    out = {}
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        out[model] = {
            key: spread([r[key] for r in mine]) if mine and mine[0].get(key) is not None else None
            for key, _, _ in COLUMNS
        }
    return out


def tables(rows: list[dict], models: list[str]) -> str:
    """The main table (bold: the best mean of a column), answers per rank at 0.9, the hardest classes."""
    stats = summary(rows, models)
    seeds = len({r["seed"] for r in rows})
    lines = [
        f"| model ({seeds} seeds) | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    best = {
        key: (max if better > 0 else min)((stats[m][key][0] for m in models if stats[m][key]), default=None)
        for key, _, better in COLUMNS
        if better
    }
    for model in models:
        cells = []
        for key, _, better in COLUMNS:
            figure = stats[model][key]
            if figure is None:
                cells.append("—")
                continue
            text = f"{figure[0]:.1f} ± {figure[1]:.1f}" if key == "seconds" else f"{figure[0]:.3f} ± {figure[1]:.3f}"
            cells.append(f"**{text}**" if better and figure[0] == best[key] else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + rank_table(rows, models) + "\n\n" + hardest_classes(rows, models) + "\n"


def rank_table(rows: list[dict], models: list[str]) -> str:
    """Where the answers at calibrated 0.9 stop: the share of answers per rank, mean over the seeds."""
    probabilistic = [m for m in models if any(r["model"] == m and r.get("answers_by_rank") for r in rows)]
    lines = ["| answers at 0.9 | " + " | ".join(RANK_ORDER) + " |", "|---|" + "---:|" * len(RANK_ORDER)]
    for model in probabilistic:
        mine = [r["answers_by_rank"] for r in rows if r["model"] == model]
        lines.append(
            f"| {model} | "
            + " | ".join(f"{statistics.fmean(a.get(k, 0.0) for a in mine):.2f}" for k in RANK_ORDER)
            + " |"
        )
    return "\n".join(lines)


def hardest_classes(rows: list[dict], models: list[str], count: int = 8) -> str:
    """Recall of the classes hardest on average over every model and seed (the sample is balanced: its
    rarest classes are those the models find least often)."""
    recalls: dict[str, list[float]] = {}
    for r in rows:
        for name, value in r["per_class_recall"].items():
            recalls.setdefault(name, []).append(value)
    hardest = sorted(recalls, key=lambda n: statistics.fmean(recalls[n]))[:count]
    lines = ["| class (leaf id) | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for name in hardest:
        cells = [
            f"{statistics.fmean(r['per_class_recall'].get(name, 0.0) for r in rows if r['model'] == m):.2f}"
            for m in models
        ]
        lines.append(f"| {name.rsplit('>', 1)[-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_figure(rows: list[dict], models: list[str], path: Path) -> None:
    """Left: operating curves of the first seed (dots: calibrated 0.9). Right: the metrics with their spread."""
    from hier.core.figures import pyplot, save_figure

    plt = pyplot()
    stats = summary(rows, models)
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=110, gridspec_kw={"width_ratios": [1, 1.2]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    first = min(r["seed"] for r in rows)
    for i, model in enumerate(models):
        row = next(r for r in rows if r["model"] == model and r["seed"] == first)
        if row.get("operating_curve"):
            curve = row["operating_curve"]
            curves.plot(
                curve["information_recall"],
                curve["correct"],
                color=colours[i % len(colours)],
                label=f"{model} ({stats[model]['operating_curve_area'][0]:.3f})",
            )
            if row["correct_at_confidence"] is not None:
                curves.plot(
                    row["information_recall_at_confidence"],
                    row["correct_at_confidence"],
                    "o",
                    color=colours[i % len(colours)],
                )
    curves.set(
        xlabel="information recall  I(lca) / I(true)",
        ylabel="fraction correct",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"operating curves, seed {first} (dot: calibrated 0.9)",
    )
    curves.grid(alpha=0.3)
    curves.legend(loc="lower left", fontsize="small")
    keys = ("leaf_accuracy", "balanced_accuracy", "hierarchical_f1")
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        means = [stats[model][k][0] for k in keys] + [stats[model]["mistake_severity"][0] / 5]
        sds = [stats[model][k][1] for k in keys] + [stats[model]["mistake_severity"][1] / 5]
        bars.bar(
            np.arange(4) + (i - (len(models) - 1) / 2) * width,
            means,
            width,
            yerr=sds,
            capsize=2,
            label=model,
            color=colours[i % len(colours)],
        )
    bars.set_xticks(range(4), ["leaf acc ↑", "balanced acc ↑", "hF1 ↑", "mistake severity / 5 ↓"])
    bars.set(ylim=(0.5, 0.9), title="test split, mean ± sd over the seeds (axis from 0.5)")
    bars.grid(axis="y", alpha=0.3)
    bars.legend(fontsize="x-small", ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    save_figure(figure, path, bbox_inches="tight")
