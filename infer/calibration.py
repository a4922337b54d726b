"""``hier calibrate``: a temperature, then per confidence level a threshold whose answers are right that often.

1. Temperature scaling: T minimises the mean binary cross-entropy of ``node_probabilities(scores / T)``
   against the nodes each label fixes (its path positive, nodes off the path negative, nodes below an
   inner-node label unknown) on the held-out calibration split. Every head goes through it alike.
2. Thresholds: for each level c of LEVELS, the thresholds 1.000, 0.999, ..., 0.001 are tested in that
   order; a threshold passes when the one-sided Clopper-Pearson lower bound (risk DELTA) of its fraction
   correct on the calibration split is at least c, and the table keeps the lowest threshold reached
   before the first failure (fixed-sequence testing, as in Learn then Test, Angelopoulos et al. 2021:
   with probability at least 1 - DELTA over the calibration draw, the kept threshold's fraction
   correct on new images from the same distribution is at least c). Correct means the answer is the
   true node, an ancestor of it, or below an inner-node label.

3. With ``per_class`` (``hier calibrate --per-class``), each level's threshold is raised, where needed, to one
   that every class keeps on its own (:mod:`hier.infer.class_conditional`): the marginal promise still holds,
   and the per-class one makes it hold for any mix of the certified classes.

``hier predict --confidence C`` uses the entry of the smallest level >= C. docs/confidence.md says more.
"""

from __future__ import annotations

import math
import warnings

import torch

from hier import runs
from hier.backbones.device import pick_device
from hier.core.progress import Progress
from hier.infer.answer import decode_rule
from hier.infer.class_conditional import class_conditional_entries
from hier.infer.curve import at_confidence, operating_curve
from hier.infer.scoring import (
    calibration_parts,
    dataset_of,
    node_probabilities,
    score_samples,
)
from hier.metrics.bounds import DELTA, clopper_pearson_lower, minimum_correct
from hier.runs.calibration import Calibration, weights_digest
from hier.tree import TreeTensors

LEVELS = tuple(round(0.50 + 0.01 * i, 2) for i in range(50))  # 0.50 ... 0.99
THRESHOLD_STEPS = 1000  # thresholds tested: 1.000 down to 0.001, fixed before seeing any data
LOG_T_RANGE = (math.log(0.02), math.log(50.0))  # temperatures searched
PROBABILITY_FLOOR = 1e-7  # keeps log(0) out of the loss where a head gives an exact 0 or 1


# ---- temperature --------------------------------------------------------------------------------


def node_nll(probs: torch.Tensor, positive: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Sum of the per-node binary cross-entropies over the known entries."""
    p = probs.double().clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    loss = -torch.where(positive, p.log(), (-p).log1p())
    return (loss * known).sum()


def fit_temperature(scores: torch.Tensor, targets: torch.Tensor, node_probabilities, taxonomy, *,
                    rows: int = 8192) -> tuple[float, float, float]:
    """The temperature T minimising the mean node BCE of ``node_probabilities(scores / T)``.

    Returns (T, loss at T = 1, loss at T). The loss is searched on a grid of log T, then refined by
    golden-section search around the best grid point. ``node_probabilities`` may run on any device:
    chunks of scores are sent to where it lives.
    """
    tree = TreeTensors(taxonomy)
    # known entries per target: all nodes but the root and those strictly below it (N - its subtree's size)
    count = max((tree.num_nodes - tree.end[targets] + tree.pre[targets]).sum().item(), 1)

    def loss(log_t: float) -> float:
        temperature = math.exp(log_t)
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(scores), rows):
                chunk = scores[start:start + rows]
                probs = node_probabilities(chunk / temperature).cpu()
                positive, known = tree.multi_hot(targets[start:start + rows], "node")  # per chunk: [rows, N]
                total += node_nll(probs, positive, known).item()
        return total / count

    low, high = LOG_T_RANGE
    grid = torch.linspace(low, high, 25).tolist()
    values = [loss(x) for x in grid]
    best = min(range(len(grid)), key=values.__getitem__)
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(20):  # the bracket shrinks to 1e-4 of its width
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    log_t, value = min([(grid[best], values[best]), (c, fc), (d, fd)], key=lambda pair: pair[1])
    return math.exp(log_t), loss(0.0), value


# ---- thresholds ---------------------------------------------------------------------------------


def candidate_thresholds() -> torch.Tensor:
    """1.000, 0.999, ..., 0.001: the order thresholds are tested in (most cautious first)."""
    return torch.arange(THRESHOLD_STEPS, 0, -1, dtype=torch.float64) / THRESHOLD_STEPS


def threshold_table(probs: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, *,
                    levels=LEVELS, delta: float = DELTA, rule: str = "deepest") -> list[dict]:
    """Per level: the lowest threshold passing fixed-sequence testing, with its figures on this split.

    ``threshold`` is None when even 1.000 fails (too few images to certify the level).
    """
    n = len(targets)
    thresholds = candidate_thresholds()
    # in the probabilities' own dtype: a threshold compares with them exactly as predict will
    curve = operating_curve(probs, targets, tree, thresholds, rule=rule)
    correct = torch.tensor(curve["correct"], dtype=torch.float64)
    counts = (correct * n).round().long()
    table = []
    for level in levels:
        passing = counts >= minimum_correct(n, level, delta)
        failed = (~passing).nonzero()
        stop = int(failed[0]) if len(failed) else len(thresholds)
        entry = {"level": level, "threshold": None, "correct": None, "lower_bound": None, "mean_depth": None,
                 "information_recall": None}
        if stop > 0:
            i = stop - 1
            entry.update(threshold=round(thresholds[i].item(), 6), correct=correct[i].item(),
                         lower_bound=clopper_pearson_lower(int(counts[i]), n, delta),
                         mean_depth=curve["mean_depth"][i], information_recall=curve["information_recall"][i])
        table.append(entry)
    return table


def per_class_table(probs: torch.Tensor, targets: torch.Tensor, taxonomy, *, levels=LEVELS, delta: float = DELTA,
                    rule: str = "deepest") -> list[dict]:
    """The marginal table with each threshold raised to the class-conditional one where that is higher.

    A raised threshold was tested before the marginal one in the fixed sequence and passed, so the marginal
    guarantee holds for it too; its figures on this split are recomputed. A level is uncertified (None) when
    either promise cannot be made.
    """
    tree = TreeTensors(taxonomy)
    n = len(targets)
    table = []
    for marginal, conditional in zip(threshold_table(probs, targets, tree, levels=levels, delta=delta, rule=rule),
                                     class_conditional_entries(probs, targets, taxonomy, levels, rule=rule)):
        entry = {**marginal, "groups": conditional["groups"], "uncertified": conditional["uncertified"]}
        if marginal["threshold"] is None or conditional["threshold"] is None:
            entry.update(threshold=None, correct=None, lower_bound=None, mean_depth=None, information_recall=None)
        elif conditional["threshold"] > marginal["threshold"]:
            figures = at_confidence(probs, targets, tree, conditional["threshold"], rule)
            entry.update(threshold=conditional["threshold"], **figures,
                         lower_bound=clopper_pearson_lower(round(figures["correct"] * n), n, delta))
        table.append(entry)
    return table


def calibrate(run_dir, dataset=None, *, split: str | None = None, per_class: bool = False, device: str = "auto",
              batch_size: int | None = None, workers: int | None = None,
              runtime: str | None = None, tta: bool | None = None,
              console=None, progress: bool = True) -> Calibration:
    """Fit the temperature and the threshold table on held-out images and store them in the run.

    ``dataset`` defaults to the one the run was trained on; the thresholds are certified on its
    calibration part (or ``split``), the temperature is fitted on a disjoint part
    (:func:`hier.infer.scoring.calibration_parts`). ``per_class``: the table of :func:`per_class_table`.
    """
    run_dir = runs.check_run_dir(run_dir)
    dataset = dataset_of(run_dir, dataset, "calibrate")
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    config["runtime"] = runtime or config.get("runtime")  # --runtime, else the run's own
    config["tta"] = config.get("tta") if tta is None else tta  # --tta/--no-tta, else the run's own
    parts = calibration_parts(run_dir, dataset, split, config["val_split"])
    if parts.warning:
        warnings.warn(parts.warning, stacklevel=2)
    with Progress(console=console, enabled=progress) as bar:
        tuned, scored = (score_samples(model, samples, taxonomy, config, device, batch_size=batch_size,
                                       workers=workers, progress=bar, what=f"calibrate {name}",
                                       cache_dir=runs.export_cache(run_dir))
                         for samples, name in ((parts.temperature, parts.temperature_name),
                                               (parts.certify, parts.certify_name)))
    temperature, before, after = fit_temperature(tuned.scores, tuned.targets,
                                                 lambda s: model.node_probabilities(s.to(device)), taxonomy)
    probs = node_probabilities(model, scored.scores, temperature, device)
    rule = decode_rule(config)
    table = (per_class_table(probs, scored.targets, taxonomy, rule=rule) if per_class
             else threshold_table(probs, scored.targets, TreeTensors(taxonomy), rule=rule))
    calibration = Calibration(temperature=temperature, delta=DELTA, n=len(scored.targets), table=table,
                              guarantee="per-class" if per_class else "marginal",
                              weights_sha256=weights_digest(run_dir),
                              unreadable=len(scored.unreadable) + len(tuned.unreadable),
                              dataset=str(dataset), split=parts.certify_name, loss_before=before, loss_after=after,
                              temperature_split=parts.temperature_name, temperature_n=len(tuned.targets))
    calibration.save(run_dir)
    return calibration


def images_needed(level: float, delta: float = DELTA) -> int:
    """The fewest calibration images that can certify ``level`` at all: all of them must be answered right.

    With k = n correct the Clopper-Pearson lower bound is delta ** (1 / n) (:func:`clopper_pearson_lower`),
    so n >= log(delta) / log(level); searched on the bound itself rather than the closed form.
    """
    n = max(1, math.floor(math.log(delta) / math.log(level)))
    while clopper_pearson_lower(n, n, delta) < level:
        n += 1
    return n
