"""One image, every confidence: the path of its most probable leaf with each node's probability, and
the node the decoder answers with at each asked confidence (the picture of ``docs/imagenet.md``).

From C = 0.5 up, the nodes at least C sure form one chain down from the root (two siblings cannot
both pass, and no child is surer than its parent), so the answers climb that chain as C rises. Below
0.5 a deeper leaf of lower probability may pass too, and the deepest wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hier import runs
from hier.backbones.device import pick_device
from hier.core.errors import InputError
from hier.core.figures import pyplot, save_figure
from hier.data.images import load_image
from hier.infer.answer import answer_rule, decode, decode_rule, preference
from hier.infer.plots import check_plot_path
from hier.infer.scoring import score_batches, unreadable_reason
from hier.tree import TreeTensors


@dataclass
class AnswerPath:
    image: Path
    names: list[str]  # root first, down to the most probable leaf
    ids: list[str]
    probabilities: list[float]  # of each node on the path
    answers: dict[float, tuple[str, float]]  # asked confidence -> (id of the node answered, its probability)
    answer_names: dict[str, str]  # id -> name of each node answered (below 0.5 it may be off the path)
    calibrated: bool


@torch.no_grad()
def answer_path(run_dir, image: Path, levels: list[float], *, use_calibration: bool = True,
                device: str = "cpu", plot: Path | None = None, force: bool = False) -> AnswerPath:
    """The answers of the run for ``image`` at each confidence of ``levels``, and the path they lie on;
    drawn to ``plot`` beside the image when given (``hier explain``)."""
    if plot is not None:
        check_plot_path(plot, force=force, inputs=[image, *runs.run_files(run_dir)])
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    # one image: eager torch, not a runtime's export (seconds) for one forward pass
    batches = list(score_batches(model, [Path(image)], {**config, "runtime": "torch"}, device, batch_size=1,
                                 workers=0))
    _, _, scores = batches[0]
    if scores is None:
        raise InputError(unreadable_reason(Path(image)), path=image)
    rules = {level: answer_rule(run_dir, level, use_calibration=use_calibration) for level in levels}
    tree = TreeTensors(taxonomy)
    rank = preference(tree, decode_rule(config))
    # one temperature per run (calibrated or 1), so one set of probabilities serves every level
    probs = model.node_probabilities(scores / rules[levels[0]].temperature)[0].cpu()
    answers = {}
    for level, rule in rules.items():
        node = int(decode(probs[None], rule.threshold, tree.depth, rank)[0])
        answers[level] = (taxonomy.ids[node], float(probs[node]))
    leaf = int(taxonomy.leaves[probs[taxonomy.leaves].argmax()])
    path = [int(i) for i in taxonomy.lineage(leaf)]
    result = AnswerPath(Path(image), [taxonomy.names[i] for i in path], [taxonomy.ids[i] for i in path],
                        [float(probs[i]) for i in path], answers,
                        {node: taxonomy.names[taxonomy.index(node)] for node, _ in answers.values()},
                        calibrated=any(rule.calibrated for rule in rules.values()))
    if plot is not None:
        plot_answer_path(result, plot, photo=load_image(image).permute(1, 2, 0).numpy())
    return result


def plot_answer_path(result: AnswerPath, out: Path, *, photo=None) -> None:
    """The path root to leaf with each node's probability, and where each confidence's answer stops."""
    plt = pyplot()
    columns = 2 if photo is not None else 1
    figure, axes = plt.subplots(1, columns, figsize=(5 * columns + 3, 0.36 * len(result.names) + 1.4), dpi=120,
                                gridspec_kw={"width_ratios": [1, 1.6]} if photo is not None else None)
    chart = axes[-1] if photo is not None else axes
    if photo is not None:
        axes[0].imshow(photo)
        axes[0].axis("off")
    rows = range(len(result.names))
    chart.barh(rows, result.probabilities, color="#9db4d0")
    chart.set_yticks(list(rows), result.names)
    chart.invert_yaxis()  # the root on top
    chart.set_xlim(0, 1.45)
    chart.set_xlabel("probability" + ("" if result.calibrated else " (uncalibrated)"))
    stops: dict[str, list[float]] = {}
    for level, (node, _) in result.answers.items():
        stops.setdefault(node, []).append(level)
        chart.axvline(level, color="#888888", lw=0.6, ls=":")
    for row, p in enumerate(result.probabilities):
        levels = stops.get(result.ids[row])
        text = f"{p:.3f}" + (f"  <- C = {', '.join(f'{c:g}' for c in levels)}" if levels else "")
        chart.annotate(text, (p, row), xytext=(4, 0), textcoords="offset points", va="center", fontsize="small",
                       color="#b03030" if levels else "#444444", weight="bold" if levels else "normal")
    chart.set_title("the answer at each confidence C: the deepest node with p >= C")
    save_figure(figure, out, bbox_inches="tight")
