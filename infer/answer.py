"""The answer rule, in one place: for each image, the deepest node the model is sure enough of.

The decoder answers the deepest node (by the run's ``decode_rule``: depth, or Valmadre's information)
whose probability is at least a threshold; the root when none is. The threshold and the temperature come
from the confidence the user asks for: through the run's calibration table when it has one (a promise),
else the confidence itself (no promise). docs/confidence.md states each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hier.core.errors import InputError
from hier.metrics.correctness import top_leaves
from hier.runs import check_run_dir
from hier.runs.calibration import Calibration, weights_digest
from hier.runs.layout import CALIBRATION
from hier.tree import TreeTensors

DECODE_ENTRIES = 2048 * 1024  # probabilities decoded at a time: the working set stays small and memory flat


def _chunks(probs: torch.Tensor) -> range:
    """Start rows of the chunks of about DECODE_ENTRIES probabilities each (fewer rows for a larger tree)."""
    return range(0, len(probs), max(1, DECODE_ENTRIES // max(1, probs.shape[1])))


RULES = ("deepest", "informative")


def preference(tree: TreeTensors, rule: str = "deepest") -> torch.Tensor:
    """The rank of each node for the decoder, higher preferred (integers; the root alone is lowest).

    ``deepest``: the depth. ``informative`` (Valmadre 2022): the information log(#leaves / #leaves under
    the node), which differs from depth on unbalanced trees; equally informative nodes by depth.
    """
    if rule == "deepest":
        return tree.depth
    if rule != "informative":
        raise ValueError(f"decoding rule must be one of {', '.join(RULES)}, got {rule!r}")
    order = tree.depth.argsort(stable=True)
    order = order[tree.information[order].argsort(stable=True)]  # by information, then depth
    info, depth = tree.information[order], tree.depth[order]
    new = torch.ones_like(depth, dtype=torch.bool)
    new[1:] = (info[1:] != info[:-1]) | (depth[1:] != depth[:-1])
    return torch.empty_like(depth).scatter_(0, order, new.cumsum(0) - 1)


def decode(probs: torch.Tensor, threshold: float | torch.Tensor, depth: torch.Tensor,
           rank: torch.Tensor | None = None) -> torch.Tensor:
    """The deepest node (the highest ``rank``, see :func:`preference`) whose probability is >= threshold;
    ties go to the higher probability.

    ``threshold`` is a float or a per-sample tensor [N]. The root (depth 0) answers when no other node
    qualifies, whatever probability a head gives it.
    """
    threshold = torch.as_tensor(threshold, dtype=probs.dtype, device=probs.device)
    # 2·rank + p: the rank decides (p <= 1 < 2), probability breaks ties; failing nodes drop to -1,
    # the root to no less than -0.5: below any node that qualifies, above every one that does not
    base = 2 * (depth if rank is None else rank).to(probs.dtype)
    root = int(depth.argmin())
    out = torch.empty(len(probs), dtype=torch.long, device=probs.device)
    chunks = _chunks(probs)
    # one working buffer for all chunks: a fresh one each time costs page faults on CPU
    keys = probs.new_empty(min(chunks.step, len(probs)), probs.shape[1])
    failing = torch.empty(keys.shape, dtype=torch.bool, device=probs.device)
    for start in chunks:
        p = probs[start:start + chunks.step]
        t = threshold[start:start + chunks.step, None] if threshold.ndim == 1 else threshold
        key, fails = torch.add(base, p, out=keys[:len(p)]), torch.lt(p, t, out=failing[:len(p)])
        key.masked_fill_(fails, -1.0)
        key[:, root].clamp_(min=-0.5)
        out[start:start + chunks.step] = key.max(dim=1).indices  # the first maximum, as argmax; faster on CPU
    return out


def decode_intervals(probs: torch.Tensor, depth: torch.Tensor,
                     rank: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """For each sample, every node :func:`decode` returns for some threshold, with that threshold range.

    Returns (row, node, low, high): ``decode(probs, t)[row] == node`` exactly for ``low < t <= high``.
    A node is decoded while it qualifies (t <= its probability) and no node ranked above it (deeper,
    or as deep and more probable) does (t > the largest probability among those). Thresholds run up
    to 1, where the root answers whatever its probability.
    """
    base = 2 * (depth if rank is None else rank).to(probs.dtype)
    root = depth.argmin().reshape(1)
    parts = []
    chunks = _chunks(probs)
    for start in chunks:
        p = probs[start:start + chunks.step].index_fill(1, root, 1.0)
        order = torch.add(base, p).argsort(dim=1, descending=True, stable=True)  # decode's preference order
        ranked = p.gather(1, order)
        beaten_below = torch.cat([ranked.new_zeros(len(p), 1), ranked.cummax(dim=1).values[:, :-1]], 1)
        rows, cols = (ranked > beaten_below).nonzero(as_tuple=True)
        parts.append((rows + start, order[rows, cols], beaten_below[rows, cols], ranked[rows, cols]))
    return tuple(torch.cat(column) for column in zip(*parts))



@dataclass(frozen=True)
class AnswerRule:
    """The threshold and temperature to answer with for a confidence."""

    confidence: float  # what the user asked for
    threshold: float  # what the decoder compares probabilities with
    temperature: float
    calibrated: bool
    level: float | None = None  # the calibration table's level used
    calibration: Calibration | None = None

    def describe(self) -> str:
        if not self.calibrated:
            return (f"uncalibrated: threshold = confidence = {self.confidence:g}, temperature 1 "
                    "(no guarantee; run hier calibrate for one)")
        c = self.calibration
        return (f"using calibration.json: temperature {self.temperature:.3f}, confidence {self.confidence:g} -> "
                f"level {self.level:.2f} -> threshold {self.threshold:.3f} (certified on {c.n} {c.split} images "
                f"at risk {c.delta:g}; {c.coverage(c.entry(self.level))})")


def decode_rule(config: dict) -> str:
    """The run's decoding rule (``deepest`` for runs made before the choice existed)."""
    return config.get("decode_rule") or "deepest"


def check_confidence(confidence: float) -> None:
    if not 0 < confidence <= 1:
        raise InputError(f"--confidence must be in (0, 1], got {confidence:g}")


def answer_rule(run_dir, confidence: float, *, use_calibration: bool = True) -> AnswerRule:
    """The temperature and threshold for a confidence: the run's calibration when present and wanted."""
    check_confidence(confidence)
    run_dir = check_run_dir(run_dir)
    calibration = Calibration.load(run_dir) if use_calibration else None
    if calibration is None:
        return AnswerRule(confidence, confidence, 1.0, False)
    if calibration.weights_sha256 != weights_digest(run_dir):
        raise InputError("calibration.json was made for other weights of this run; run hier calibrate again "
                         "or use --uncalibrated", path=run_dir / CALIBRATION)
    entry = calibration.entry(confidence)
    if entry is None:
        raise InputError(f"the calibration table stops at confidence {calibration.table[-1]['level']:g}; "
                         f"ask for less, or use --uncalibrated")
    if entry["threshold"] is None:
        highest = calibration.highest_certified
        raise InputError(f"{calibration.n} calibration images cannot certify confidence {entry['level']:g} at risk "
                         f"{calibration.delta:g} (highest certified: {highest if highest is not None else 'none'}); "
                         "calibrate on more images, ask for less, or use --uncalibrated")
    return AnswerRule(confidence, entry["threshold"], calibration.temperature, True, entry["level"], calibration)


@torch.no_grad()
def answer_batch(model, scores: torch.Tensor, readable: torch.Tensor, rule: AnswerRule, tree: TreeTensors,
                 top_k: int, rank: torch.Tensor | None = None) -> dict[int, tuple[int, float, list[tuple[int, float]]]]:
    """Per readable sample index of a batch: (node answered, its probability, [(leaf, probability)] of the
    top_k most probable leaves)."""
    probs = model.node_probabilities(scores / rule.temperature)
    chosen = decode(probs, rule.threshold, tree.depth, rank)
    confidence = probs.gather(1, chosen[:, None])[:, 0]
    top = top_leaves(probs, tree, top_k) if top_k else chosen.new_empty(len(chosen), 0)
    top_p = probs.gather(1, top)
    return {i: (node, p, list(zip(leaves, leaf_p))) for i, node, p, leaves, leaf_p
            in zip(readable.tolist(), chosen.tolist(), confidence.tolist(), top.tolist(), top_p.tolist())}
