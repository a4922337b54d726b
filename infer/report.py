"""``hier report``: one self-contained HTML page of a run's answers, with the images.

Input is plain: :class:`Record` per image (path, node answered, its probability, with labels the true node),
the run's taxonomy and its config.yaml, calibration.json and evaluation.json read as files. Records come from
:func:`records_from_predictions` (a ``hier predict`` file) or :func:`labelled_records` (an injected scorer).
:func:`write_report` counts, samples the galleries, makes the thumbnails and writes the page (``report_page``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hier import runs
from hier.core.errors import InputError
from hier.core.files import atomic_write_text, check_output_file, read_json, read_text
from hier.core.progress import Progress
from hier.core.tables import read_table
from hier.runs.calibration import Calibration
from hier.taxo import Taxonomy

from .report_page import Gallery, Page, make_thumbnails, render_page

PER_NODE = 40  # thumbnails at most in one node's gallery
NODE_BUDGET = 1500  # thumbnails at most over all node galleries (each node's share shrinks evenly)
PER_SPECIAL = 150  # thumbnails at most in the mistakes gallery, and as many in "stopped above the label"
MAX_THUMBNAILS = NODE_BUDGET + 2 * PER_SPECIAL  # distinct thumbnails in a page, at most
SEED = 0  # the galleries' samples are the same on every run
PREDICTION_COLUMNS = ("path", "node_id", "node_name", "depth", "confidence", "path_ids", "error")

# (node answered, its probability, the most probable leaf or None), or the reason the image is unreadable
Answer = tuple[int, float, int | None]


@dataclass(frozen=True)
class Record:
    """One image: where it is, what the model answered, and with labels what it is."""

    path: str  # as the user gave it (shown on the page)
    node: int | None  # node index answered; None when the image could not be read
    probability: float = math.nan  # the answered node's probability
    label: int | None = None  # the true node's index (any depth), None without labels
    top_leaf: int | None = None  # the most probable leaf, when known
    error: str = ""  # why the image could not be read
    file: Path | None = None  # where to read the image for its thumbnail (default: ``path``)


@dataclass
class RunInfo:
    """What the header says about the run: read from its files, never from the model."""

    run: str
    config: dict
    calibration: dict | None  # calibration.json as written by hier calibrate
    evaluation: dict | None  # evaluation.json as written by hier evaluate

    @property
    def head(self) -> str:
        return str(self.config.get("head") or "?")

    @property
    def backbone(self) -> str:
        return str(self.config.get("backbone") or "?")

    def threshold(self, confidence: float, *, calibrated: bool = True) -> tuple[float, dict | None]:
        """The decoder's threshold for ``confidence`` and the calibration entry it comes from (None: uncalibrated),
        read as ``hier predict`` reads them (``Calibration.entry``)."""
        if not calibrated or not self.calibration:
            return confidence, None
        entry = Calibration(**self.calibration).entry(confidence)
        if entry is None or entry.get("threshold") is None:
            return confidence, entry
        return float(entry["threshold"]), entry


def read_run(run_dir: str | os.PathLike) -> tuple[Taxonomy, RunInfo]:
    """The run's taxonomy and the files the header reads (calibration and evaluation only when present), each
    read and checked by the module that owns it."""
    run_dir = runs.check_run_dir(run_dir)
    calibration = Calibration.load(run_dir)
    evaluation = read_json(run_dir / runs.EVALUATION) if (run_dir / runs.EVALUATION).is_file() else None
    if evaluation is not None and not isinstance(evaluation, dict):
        raise InputError("expected a JSON object", path=run_dir / runs.EVALUATION)
    info = RunInfo(str(run_dir), runs.read_config(run_dir), asdict(calibration) if calibration else None, evaluation)
    return Taxonomy.load(run_dir / runs.TAXONOMY), info


# ---- records --------------------------------------------------------------------------------------


def records_from_predictions(path: str | os.PathLike, taxonomy: Taxonomy, *,
                             base: str | os.PathLike | None = None) -> list[Record]:
    """The rows of a ``hier predict`` CSV (or JSON lines) file as records, without labels.

    Image paths are absolute or relative to the folder predict ran in (``base``, default the current one; the
    file's own folder is tried next). A node id the taxonomy lacks is an InputError naming the row.
    """
    path = Path(path)
    rows = _prediction_rows(path)
    folders = [Path(base) if base is not None else Path.cwd(), path.parent]
    records = []
    for number, row in rows:
        node_id, error = (row.get("node_id") or "").strip(), (row.get("error") or "").strip()
        if not node_id:
            records.append(Record(row["path"], None, error=error or "no answer", file=_locate(row["path"], folders)))
            continue
        if node_id not in taxonomy:
            raise InputError(f"node {node_id!r} is not in the run's taxonomy (predictions of another run?)",
                             path=path, where=f"line {number}")
        try:
            probability = float(row.get("confidence"))
        except (TypeError, ValueError):
            raise InputError(f"confidence {row.get('confidence')!r} is not a number", path=path,
                             where=f"line {number}") from None
        records.append(Record(row["path"], taxonomy.index(node_id), probability, file=_locate(row["path"], folders)))
    if not records:
        raise InputError("no predictions in the file", path=path)
    return records


def _prediction_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a predictions CSV or JSON-lines file, the columns checked."""
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(read_text(path).splitlines(), 1):
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON ({e.msg})", path=path, where=f"line {number}") from None
            if row is not None:
                if not isinstance(row, dict) or "path" not in row:
                    raise InputError("expected an object with a \"path\"", path=path, where=f"line {number}")
                rows.append((number, {k: "" if v is None else str(v) for k, v in row.items()}))
        return rows
    header, table = read_table(path)
    missing = [c for c in ("path", "node_id", "confidence", "error") if c not in header]
    if missing:
        raise InputError(f"not a hier predict file: no column {', '.join(map(repr, missing))} "
                         f"(expected {', '.join(PREDICTION_COLUMNS)})", path=path)
    return [(number, dict(zip(header, row))) for number, row in enumerate(table, 2)]


def _locate(shown: str, folders: Sequence[Path]) -> Path:
    given = Path(shown)
    if given.is_absolute():
        return given
    return next((folder / given for folder in folders if (folder / given).is_file()), folders[0] / given)


def labelled_records(samples: Sequence, taxonomy: Taxonomy,
                     answer: Callable[[list[Path]], Sequence[Answer | str]]) -> list[Record]:
    """Records of labelled images, answered by ``answer``.

    ``samples``: objects with ``.path`` and ``.label`` (hier.data's ``Sample``), or (path, label) pairs; labels
    are matched to nodes as everywhere in hier (``hier.data.labels.resolve_labels``: an unmatched label is an
    InputError). ``answer(paths)`` returns one item per path, in order: ``(node, probability, top_leaf or
    None)`` for an image it scored (at the threshold the page reports), or a string saying why it could not.
    """
    from hier.data.labels import resolve_labels  # lazily: hier.data loads torch

    pairs = [(Path(s.path), s.label) if hasattr(s, "label") else (Path(s[0]), s[1]) for s in samples]
    if not pairs:
        raise InputError("no labelled images to report on")
    nodes = resolve_labels([label for _, label in pairs], taxonomy)
    answers = list(answer([p for p, _ in pairs]))
    if len(answers) != len(pairs):
        raise ValueError(f"answer() returned {len(answers)} items for {len(pairs)} images")
    records = []
    for (path, label), got in zip(pairs, answers):
        if isinstance(got, str):
            records.append(Record(str(path), None, label=nodes[label], error=got, file=path))
        else:
            node, probability, leaf = got
            records.append(Record(str(path), int(node), float(probability), nodes[label],
                                  None if leaf is None else int(leaf), file=path))
    return records


# ---- counts -------------------------------------------------------------------------------------

OUTCOMES = ("exact", "below", "above", "wrong")  # the label's node; below an inner label; above it; off its lineage
MAX_GROUPS = 20  # rows of the confusion table (the rest are summed as "other")


@dataclass
class Confusion:
    level: str  # "class", or "depth 3" for a taxonomy without ranks
    columns: list[str]  # the true groups, most images first, then "other" and "no <level>" (stopped above it)
    rows: list[int]  # the columns that have true images, as rows
    counts: list[list[int]]


@dataclass
class Stats:
    labelled: bool
    outcomes: list[str | None]  # per record: one of OUTCOMES, None without a label or an answer
    answers: np.ndarray  # per node: answers exactly there
    answers_under: np.ndarray  # per node: answers at or below it
    labels_under: np.ndarray  # per node: answered images whose label is at or below it
    reached_under: np.ndarray  # per node: those whose answer is at or below it too (recall's numerator)
    correct_at: np.ndarray  # per node: correct answers exactly there (precision's numerator)
    per_rank: list[tuple[str, int]]  # (rank, or "depth d" without one; answers), shallowest first
    per_class: list[dict]  # per label node: images, outcome counts, the answers' mean depth; worst recall first
    confusion: Confusion | None
    counts: dict = field(default_factory=dict)  # images, answered, unreadable and each outcome


def compute_stats(records: Sequence[Record], taxonomy: Taxonomy, rank: str | None = None) -> Stats:
    n = len(taxonomy)
    answers, labels, meets, correct = (np.zeros(n, dtype=np.int64) for _ in range(4))
    lineages: dict[int, list[int]] = {}
    lineage = lambda i: lineages.get(i) or lineages.setdefault(i, taxonomy.lineage(i))
    outcomes: list[str | None] = []
    per_label: dict[int, dict[str, int]] = {}
    depth_sums: dict[int, int] = {}  # per label node: the answers' depths added up
    for r in records:
        if r.node is not None:
            answers[r.node] += 1
        if r.node is None or r.label is None:
            outcomes.append(None)
            continue
        a, b = lineage(r.node), lineage(r.label)
        k = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        outcome = "exact" if r.node == r.label else "above" if k == len(a) else "below" if k == len(b) else "wrong"
        outcomes.append(outcome)
        labels[r.label] += 1
        meets[a[k - 1]] += 1  # the lowest common ancestor: label and answer both lie at or below its ancestors
        correct[r.node] += outcome != "wrong"
        counter = per_label.setdefault(r.label, dict.fromkeys(OUTCOMES, 0))
        counter[outcome] += 1
        depth_sums[r.label] = depth_sums.get(r.label, 0) + int(taxonomy.depth[r.node])
    labelled = bool(per_label)
    counts = {"images": len(records), "answered": int(answers.sum()),
              "unreadable": sum(r.node is None for r in records),
              **{o: sum(x == o for x in outcomes) for o in OUTCOMES}}
    per_class = sorted(({"node": node, "images": sum(c.values()), **c, "mean_depth": depth_sums[node] / sum(c.values())}
                        for node, c in per_label.items()),
                       key=lambda c: ((c["exact"] + c["below"]) / c["images"], -c["images"], c["node"]))
    return Stats(labelled, outcomes, answers, taxonomy.sum_under(answers), taxonomy.sum_under(labels),
                 taxonomy.sum_under(meets), correct, answers_per_rank(answers, taxonomy), per_class,
                 confusion(records, taxonomy, rank, lineage) if labelled else None, counts)


def answers_per_rank(answers: np.ndarray, taxonomy: Taxonomy) -> list[tuple[str, int]]:
    totals: dict[str, list[int]] = {}  # name -> [shallowest depth, answers]
    for node in np.flatnonzero(answers):
        depth = int(taxonomy.depth[node])
        name = taxonomy.ranks[node] or f"no rank, depth {depth}"
        entry = totals.setdefault(name, [depth, 0])
        entry[0], entry[1] = min(entry[0], depth), entry[1] + int(answers[node])
    return [(name, count) for name, (_, count) in sorted(totals.items(), key=lambda kv: (kv[1][0], kv[0]))]


def rank_levels(taxonomy: Taxonomy) -> list[str]:
    """The confusion table's levels: the ranks present, shallowest first, else the depths below the root."""
    depths: dict[str, list[int]] = {}
    for node, rank in enumerate(taxonomy.ranks):
        if rank:
            depths.setdefault(str(rank), []).append(int(taxonomy.depth[node]))
    if depths:
        return sorted(depths, key=lambda r: (sum(depths[r]) / len(depths[r]), r))
    return [str(d) for d in range(1, taxonomy.max_depth + 1)]


def group_of(taxonomy: Taxonomy, level: str, lineage) -> Callable[[int], int | None]:
    """node -> its ancestor (or itself) at ``level`` (a rank, or a depth given as digits), None when it has none."""
    if level.isdigit():
        return lambda node: lineage(node)[int(level)] if int(taxonomy.depth[node]) >= int(level) else None
    return lambda node: next((j for j in reversed(lineage(node)) if taxonomy.ranks[j] == level), None)


def confusion(records: Sequence[Record], taxonomy: Taxonomy, rank: str | None, lineage) -> Confusion:
    levels = rank_levels(taxonomy)
    true_nodes = {r.label for r in records if r.label is not None and r.node is not None}
    if rank is not None and str(rank) not in levels:
        raise InputError(f"--rank {rank}: no such rank in the taxonomy (its levels: {', '.join(levels)})")
    if rank is None:  # the level with the most groups that still fit, then the one most labels reach
        groups = {lv: [group_of(taxonomy, lv, lineage)(t) for t in true_nodes] for lv in levels}
        score = {lv: (len(set(g) - {None}) <= MAX_GROUPS, len(set(g) - {None}), -g.count(None), -k)
                 for k, (lv, g) in enumerate(groups.items())}
        rank = max(levels, key=score.__getitem__)
    group = group_of(taxonomy, str(rank), lineage)
    pairs = [(group(r.label), group(r.node)) for r in records if r.label is not None and r.node is not None]
    totals: dict[int | None, int] = {}
    for t, _ in pairs:
        totals[t] = totals.get(t, 0) + 1
    kept = [g for g in sorted(totals, key=lambda g: (-totals[g], g is None, g or 0)) if g is not None][:MAX_GROUPS]
    position = {g: k for k, g in enumerate(kept)}
    title = f"depth {rank}" if str(rank).isdigit() else str(rank)
    none, other = len(kept) + 1, len(kept)
    place = lambda g: position.get(g, other) if g is not None else none
    counts = [[0] * (len(kept) + 2) for _ in range(len(kept) + 2)]
    for t, p in pairs:
        counts[place(t)][place(p)] += 1
    names = [taxonomy.names[g] for g in kept] + ["other", f"no {title}"]
    keep_rows = [k for k, row in enumerate(counts) if any(row)]
    return Confusion(title, names, keep_rows, [counts[k] for k in keep_rows])


# ---- galleries and thumbnails -------------------------------------------------------------------


def node_cap(sizes: Sequence[int], per_node: int = PER_NODE, budget: int = NODE_BUDGET) -> int:
    """The largest per-gallery cap <= per_node whose sum over the galleries stays within the budget."""
    low, high = 0, per_node
    while low < high:
        middle = (low + high + 1) // 2
        if sum(min(s, middle) for s in sizes) <= budget:
            low = middle
        else:
            high = middle - 1
    return max(low, 1)


def sample(indices: list[int], size: int, records: Sequence[Record], *, descending: bool, seed: int) -> list[int]:
    chosen = indices if len(indices) <= size else random.Random(seed).sample(indices, size)
    return sorted(chosen, key=lambda i: (-records[i].probability if descending else records[i].probability, i))


def galleries(records: Sequence[Record], stats: Stats, taxonomy: Taxonomy) -> list[Gallery]:
    by_node: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        if r.node is not None:
            by_node.setdefault(r.node, []).append(i)
    cap = node_cap([len(v) for v in by_node.values()])
    out = []
    if stats.labelled:
        wrong = [i for i, o in enumerate(stats.outcomes) if o == "wrong"]
        above = [i for i, o in enumerate(stats.outcomes) if o == "above"]
        out.append(Gallery("g-mistakes", "Mistakes: the answer is not the label nor on its lineage", len(wrong),
                           sample(wrong, PER_SPECIAL, records, descending=True, seed=SEED), "most sure first"))
        out.append(Gallery("g-above", "Stopped above the label: correct, less precise than the label", len(above),
                           sample(above, PER_SPECIAL, records, descending=True, seed=SEED), "most sure first"))
    for node in sorted(by_node, key=lambda n: (-len(by_node[n]), n)):
        out.append(Gallery(f"g-{node}", taxonomy.names[node], len(by_node[node]),
                           sample(by_node[node], cap, records, descending=False, seed=SEED + node),
                           "least sure first"))
    return out


# ---- the page -----------------------------------------------------------------------------------


@dataclass
class ReportSummary:
    out: Path
    images: int
    thumbnails: int
    bytes: int
    seconds: float


def write_report(out: str | os.PathLike, records: Sequence[Record], taxonomy: Taxonomy, info: RunInfo, *,
                 confidence: float, data: str = "", rank: str | None = None, calibrated: bool = True,
                 force: bool = False, inputs: Sequence = (), console=None, progress: bool = True) -> ReportSummary:
    """Write the report page of ``records`` to ``out`` (atomically; an existing file only with ``force``).

    ``rank``: the confusion table's rank (a rank name such as ``class``, or a depth); default: the deepest
    level with at most 20 true groups. ``calibrated``: whether the answers used the run's calibration.json.
    """
    started = time.perf_counter()
    if not 0 < confidence <= 1:
        raise InputError(f"--confidence must be in (0, 1], got {confidence:g}")
    if not records:
        raise InputError("no images to report on")
    out = check_output_file(out, force=force, inputs=inputs)
    stats = compute_stats(records, taxonomy, rank)
    shown = galleries(records, stats, taxonomy)
    wanted = sorted({i for g in shown for i in g.items})
    with Progress(console=console, enabled=progress) as bar:
        thumbs = make_thumbnails(records, wanted, bar)
    threshold, entry = info.threshold(confidence, calibrated=calibrated)
    page = Page(info, taxonomy, records, stats, shown, thumbs, confidence, threshold, entry, data,
                {"per_node": PER_NODE, "node_budget": NODE_BUDGET, "per_special": PER_SPECIAL})
    text = render_page(page)
    atomic_write_text(out, text)
    return ReportSummary(out, len(records), sum(t is not None for t in thumbs.values()), len(text.encode()),
                         time.perf_counter() - started)


def inputs_of(run_dir, records: Sequence[Record], *extra) -> list:
    """What the report reads (the output may not be any of them): the run's files, the images, ``extra``."""
    return [*runs.run_files(run_dir), *extra, *(r.file or Path(r.path) for r in records)]


