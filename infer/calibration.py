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

``hier predict --confidence C`` uses the entry of the smallest level >= C. docs/confidence.md says more.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hier.core.errors import InputError
from hier.core.files import atomic_write_text
from hier.core.progress import Progress
from hier.heads.tree import TreeTensors
from hier.infer.scoring import (
    calibration_parts,
    dataset_of,
    node_probabilities,
    score_samples,
)
from hier.metrics.bounds import DELTA, clopper_pearson_lower, minimum_correct
from hier.metrics.decode import operating_curve
from hier.train import runs
from hier.train.device import pick_device

LEVELS = tuple(round(0.50 + 0.01 * i, 2) for i in range(50))  # 0.50 ... 0.99
THRESHOLD_STEPS = 1000  # thresholds tested: 1.000 down to 0.001, fixed before seeing any data
LOG_T_RANGE = (math.log(0.02), math.log(50.0))  # temperatures searched
FORMAT = "hier-calibration"
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


# ---- the calibration file -----------------------------------------------------------------------


def weights_digest(run_dir: Path) -> str:
    """sha256 of the weights a run predicts with (final weights, else the last checkpoint)."""
    path = run_dir / runs.WEIGHTS if (run_dir / runs.WEIGHTS).is_file() else run_dir / runs.LAST
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Calibration:
    temperature: float
    delta: float
    n: int  # calibration images scored
    table: list[dict]
    weights_sha256: str
    unreadable: int = 0
    dataset: str = ""
    split: str = ""
    loss_before: float | None = None  # node BCE at T = 1
    loss_after: float | None = None  # node BCE at T
    temperature_split: str = ""  # the images the temperature was fitted on (disjoint from ``split``)
    temperature_n: int = 0
    format: str = field(default=FORMAT)
    version: int = 1

    def save(self, run_dir: Path) -> None:
        atomic_write_text(Path(run_dir) / runs.CALIBRATION, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> Calibration | None:
        path = Path(run_dir) / runs.CALIBRATION
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format') if isinstance(data, dict) else None!r}, "
                                 f"expected {FORMAT!r}")
            calibration = cls(**data)
            calibration.check()
            return calibration
        except (ValueError, TypeError, RecursionError) as e:
            raise InputError(f"not a readable calibration file ({e}); run hier calibrate again", path=path) from None

    def check(self) -> None:
        """Every field predict and evaluate rely on, checked: a hand-edited or damaged file is refused."""

        def number(value, low: float, high: float, what: str, *, open_low: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or value > high or (open_low and value == low):
                raise ValueError(f"{what} is {value!r}, expected a number in {'(' if open_low else '['}{low:g}, "
                                 f"{high:g}]")

        number(self.temperature, 0, math.inf, "temperature", open_low=True)
        number(self.delta, 0, 1, "delta", open_low=True)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n is {self.n!r}, expected a positive count of images")
        if not isinstance(self.weights_sha256, str) or len(self.weights_sha256) != 64:
            raise ValueError("weights_sha256 is not a sha256 digest")
        if not isinstance(self.table, list) or not self.table:
            raise ValueError("the confidence table is empty")
        previous = 0.0
        for k, entry in enumerate(self.table):
            if not isinstance(entry, dict) or "level" not in entry or "threshold" not in entry:
                raise ValueError(f"table entry {k} lacks a level or a threshold")
            number(entry["level"], previous, 1, f"table entry {k}'s level", open_low=True)
            if entry["threshold"] is not None:
                number(entry["threshold"], 0, 1, f"table entry {k}'s threshold")
            previous = entry["level"]

    def entry(self, confidence: float) -> dict | None:
        """The entry of the smallest level >= confidence (a conservative reading); None above the table."""
        return next((e for e in self.table if e["level"] >= confidence - 1e-9), None)

    @property
    def highest_certified(self) -> float | None:
        return max((e["level"] for e in self.table if e["threshold"] is not None), default=None)


def calibrate(run_dir, dataset=None, *, split: str | None = None, device: str = "auto",
              batch_size: int | None = None, workers: int | None = None, console=None,
              progress: bool = True) -> Calibration:
    """Fit the temperature and the threshold table on held-out images and store them in the run.

    ``dataset`` defaults to the one the run was trained on; the thresholds are certified on its
    calibration part (or ``split``), the temperature is fitted on a disjoint part
    (:func:`hier.infer.scoring.calibration_parts`).
    """
    run_dir = runs.check_run_dir(run_dir)
    dataset = dataset_of(run_dir, dataset, "calibrate")
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    parts = calibration_parts(run_dir, dataset, split, config["val_split"])
    if parts.warning:
        warnings.warn(parts.warning, stacklevel=2)
    with Progress(console=console, enabled=progress) as bar:
        tuned, scored = (score_samples(model, samples, taxonomy, config, device, batch_size=batch_size,
                                       workers=workers, progress=bar, what=f"calibrate {name}")
                         for samples, name in ((parts.temperature, parts.temperature_name),
                                               (parts.certify, parts.certify_name)))
    temperature, before, after = fit_temperature(tuned.scores, tuned.targets,
                                                 lambda s: model.node_probabilities(s.to(device)), taxonomy)
    probs = node_probabilities(model, scored.scores, temperature, device)
    calibration = Calibration(temperature=temperature, delta=DELTA, n=len(scored.targets),
                              table=threshold_table(probs, scored.targets, TreeTensors(taxonomy),
                                                    rule=decode_rule(config)),
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


# ---- what predict and evaluate answer with ------------------------------------------------------


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
                f"at risk {c.delta:g})")


def decode_rule(config: dict) -> str:
    """The run's decoding rule (``deepest`` for runs made before the choice existed)."""
    return config.get("decode_rule") or "deepest"


def check_confidence(confidence: float) -> None:
    if not 0 < confidence <= 1:
        raise InputError(f"--confidence must be in (0, 1], got {confidence:g}")


def answer_rule(run_dir, confidence: float, *, use_calibration: bool = True) -> AnswerRule:
    """The temperature and threshold for a confidence: the run's calibration when present and wanted."""
    check_confidence(confidence)
    run_dir = runs.check_run_dir(run_dir)
    calibration = Calibration.load(run_dir) if use_calibration else None
    if calibration is None:
        return AnswerRule(confidence, confidence, 1.0, False)
    if calibration.weights_sha256 != weights_digest(run_dir):
        raise InputError("calibration.json was made for other weights of this run; run hier calibrate again "
                         "or use --uncalibrated", path=run_dir / runs.CALIBRATION)
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
