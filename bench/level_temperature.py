"""One temperature against a temperature per depth, on trained runs: is calibration right at every depth?

    python bench/level_temperature.py RUN [RUN ...]

For each run (fit on a dataset with its own calibration part; e.g. the runs of bench/deep_and_right.sh), the
run's validation split fits (a) hier calibrate's single temperature and (b) one temperature per depth, each the
minimiser of the node BCE of that depth's nodes; (b)'s probabilities take each depth's nodes from its own
temperature, then the minimum down the path (so no child is above its parent, as the head contract asks). The
0.9 threshold is certified on the calibration part exactly as hier calibrate does; the test split gives the
fraction correct, the mean depth at 0.9 and the ECE overall and per depth (images per depth in brackets).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from hier import runs
from hier.infer import calibration as cal
from hier.infer.curve import at_confidence
from hier.infer.evaluate import held_out_split
from hier.infer.scoring import calibration_parts, dataset_of, score_samples
from hier.metrics import hierarchical as metrics
from hier.tree import TreeTensors


def depth_temperatures(probabilities, scores, targets, tree: TreeTensors) -> list[float]:
    """Per depth 1..D, the temperature minimising the BCE of that depth's nodes (grid, then a finer grid)."""
    positive, known = tree.multi_hot(targets, "node")
    out = []
    for d in range(1, int(tree.depth.max()) + 1):
        columns = tree.depth == d

        def loss(log_t: float) -> float:
            p = probabilities(scores / math.exp(log_t)).double().clamp(1e-7, 1 - 1e-7)
            return (-torch.where(positive, p.log(), (-p).log1p()) * known)[:, columns].sum().item()

        best = min(torch.linspace(math.log(0.05), math.log(20), 41).tolist(), key=loss)
        out.append(math.exp(min(torch.linspace(best - 0.15, best + 0.15, 21).tolist(), key=loss)))
    return out


def per_depth(probabilities, scores, temperatures, tree: TreeTensors) -> torch.Tensor:
    out = torch.ones(len(scores), len(tree.depth))
    for d, t in enumerate(temperatures, 1):
        columns = tree.depth == d
        out[:, columns] = probabilities(scores / t)[:, columns].float()
    for d in range(1, len(temperatures) + 1):  # the minimum down the path
        nodes = (tree.depth == d).nonzero().squeeze(1)
        out[:, nodes] = torch.minimum(out[:, nodes], out[:, tree.parent[nodes]])
    return out


def main() -> None:
    print(f"{'run':34} {'calibrator':20} {'thr@0.9':>8} {'correct':>8} {'depth':>6} {'ECE':>6}  ECE per depth")
    for run in map(Path, sys.argv[1:]):
        model, taxonomy, config = runs.load_trained(run, torch.device("cpu"))
        data = dataset_of(run, None, "the benchmark")
        parts = calibration_parts(run, data, None, config["val_split"])
        test = held_out_split(run, data, None, "test")[0]
        tune, certify, scored = (score_samples(model, s, taxonomy, config, torch.device("cpu"))
                                 for s in (parts.temperature, parts.certify, test))
        tree = TreeTensors(taxonomy)

        def probabilities(s):
            with torch.no_grad():
                return model.node_probabilities(s)

        one, _, _ = cal.fit_temperature(tune.scores, tune.targets, probabilities, taxonomy)
        depths = depth_temperatures(probabilities, tune.scores, tune.targets, tree)
        counts = [int((tree.depth[scored.targets] >= d).sum()) for d in range(1, len(depths) + 1)]
        for name, probs in ((f"one T = {one:.2f}", lambda s: probabilities(s / one).float()),
                            ("T per depth", lambda s: per_depth(probabilities, s, depths, tree))):
            [entry] = cal.threshold_table(probs(certify.scores), certify.targets, tree, levels=(0.9,))
            test_probs = probs(scored.scores)
            figures = at_confidence(test_probs, scored.targets, tree, entry["threshold"])
            per = metrics.calibration_per_level(test_probs, scored.targets, tree)
            print(f"{run.name:34} {name:20} {entry['threshold']:8.3f} {figures['correct']:8.3f} "
                  f"{figures['mean_depth']:6.2f} {metrics.calibration_error(test_probs, scored.targets, tree):6.3f}  "
                  + " ".join(f"{per[d]:.3f} ({n})" for d, n in zip(sorted(per), counts)))
        print(f"{'':34} {'temperatures':20} " + " ".join(f"{t:.2f}" for t in depths))


if __name__ == "__main__":
    main()
