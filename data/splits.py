"""Splits: seeded stratified splits, and the split a run saved (``split.json``) read back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from hier.core.errors import InputError

from .readers import Dataset, Sample


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` images of one class go to each split.

    Largest-remainder rounding of ``n * fraction``; then every split with a positive fraction
    gets at least one image, taken from the largest split, as long as the class has enough
    images. A class with fewer images than splits fills them in order (train first): one
    image goes to train, two to train and val.
    """
    exact = [n * f for f in fractions]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(fractions)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in by_remainder[: n - sum(counts)]:
        counts[k] += 1
    wanted = [k for k, f in enumerate(fractions) if f > 0]
    if n < len(wanted):
        return [1 if k in wanted[:n] else 0 for k in range(len(fractions))]
    for k in wanted:
        if counts[k] == 0:
            largest = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[largest] -= 1
            counts[k] = 1
    return counts


def stratified_split(samples: Sequence[Sample], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                     names: Sequence[str] | None = None) -> dict[str, list[Sample]]:
    """A seeded split that keeps every class in every split when it has enough images.

    ``names`` default to train/val/test (train/val for two fractions). Each class's samples
    are ordered by path, then shuffled, so the split depends on the samples, the fractions and
    the seed, not on the order the samples came in. Counts per class: :func:`split_counts`.
    """
    names = list(names or ("train", "val", "test")[: len(fractions)])
    if len(names) != len(fractions) or not fractions:
        raise InputError(f"{len(fractions)} split fractions for {len(names)} split names")
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise InputError(f"split fractions must be >= 0 and add up to 1 (got {', '.join(map(str, fractions))})")
    by_label: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    rng = np.random.default_rng(seed)
    out: dict[str, list[Sample]] = {name: [] for name in names}
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda s: str(s.path))
        order = rng.permutation(len(group))
        start = 0
        for name, count in zip(names, split_counts(len(group), fractions)):
            out[name] += [group[k] for k in order[start:start + count]]
            start += count
    return {name: sorted(split, key=lambda s: str(s.path)) for name, split in out.items()}


def saved_split(saved: dict | None, dataset: Dataset, name: str) -> list[Sample] | None:
    """The samples of split ``name`` in ``saved`` (a run's ``split.json``, written by ``hier fit`` and read by
    ``hier.runs.layout.read_split``, which checks it).

    None when there is no saved split or no split of that name, or when ``dataset`` lacks any of its images (a
    dataset the run never saw).
    """
    chosen = (saved or {}).get(name)
    by_path = {str(s.path): s for s in dataset.samples}
    if not chosen or not all(p in by_path for p in chosen):
        return None
    return [by_path[p] for p in chosen]


# ---- the calibration part ---------------------------------------------------------------------

CALIBRATION = "calib"  # the split `hier calibrate` certifies its thresholds on
DEFAULT_CALIBRATION_FRACTION = 0.1  # share of the training images held out for it (config calibration_fraction)


def training_parts(dataset: Dataset, config: dict, saved: dict | None) -> tuple[dict[str, list[Sample]], dict | None]:
    """The train, val and calib parts of a run (calib may be empty), and a new split to save (or None).

    The calibration part is seen neither by training nor by best-epoch selection: the dataset's own
    ``calib`` split, else ``config["calibration_fraction"]`` of the training images, stratified like the
    other splits and drawn with the run's seed. A dataset without splits is split four ways at once
    (train, val, calib, test). ``saved`` (the ``split.json`` of a run being resumed, as read; None for a new
    run, whose folder ``--force`` may be about to replace) wins when given, so a resumed run keeps its
    parts; a run written before the calibration part existed has none.
    """
    resumed = saved is not None
    fraction = config.get("calibration_fraction", 0.0)  # absent from runs made before it existed
    if not 0 <= fraction < 1:
        raise InputError(f"calibration_fraction must be in [0, 1), got {fraction}")
    if dataset.has_splits:
        train, val = dataset.split(config["train_split"]), dataset.split(config["val_split"])
        if CALIBRATION in dataset.splits:
            return {"train": train, "val": val, CALIBRATION: dataset.splits[CALIBRATION]}, None
        if resumed:
            calib = saved_split(saved, dataset, CALIBRATION) or []
        else:
            calib = (
                stratified_split(train, (1 - fraction, fraction), seed=config["seed"], names=("train", CALIBRATION))[
                    CALIBRATION
                ]
                if fraction
                else []
            )
        held = {s.path for s in calib}
        parts = {"train": [s for s in train if s.path not in held], "val": val, CALIBRATION: calib}
        return parts, {CALIBRATION: [str(s.path) for s in calib]} if calib and not resumed else None
    if resumed:
        parts = {name: saved_split(saved, dataset, name) for name in ("train", "val")}
        if parts["train"] is None or parts["val"] is None:
            raise InputError("the dataset no longer holds every image of the run's saved split (split.json)",
                             path=dataset.root)
        return {**parts, CALIBRATION: saved_split(saved, dataset, CALIBRATION) or []}, None
    if len(config["split_fractions"]) != 3:
        raise InputError(f"split_fractions needs 3 values (train, val, test), got {config['split_fractions']}")
    train, val, test = config["split_fractions"]
    parts = stratified_split(
        dataset.samples,
        (train * (1 - fraction), val, train * fraction, test),
        seed=config["seed"],
        names=("train", "val", CALIBRATION, "test"),
    )
    return parts, {k: [str(s.path) for s in part] for k, part in parts.items() if part}
