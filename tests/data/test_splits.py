"""Stratified splits (counts per class, rare classes, seeding) and a run's saved split read back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.data.readers import Dataset, Sample
from hier.data.splits import CALIBRATION, saved_split, split_counts, stratified_split, training_parts


@pytest.mark.parametrize("n, counts", [(1, [1, 0, 0]), (2, [1, 1, 0]), (3, [1, 1, 1]), (5, [3, 1, 1]),
                                       (10, [8, 1, 1]), (17, [13, 2, 2]), (100, [80, 10, 10])])
def test_split_counts(n, counts):
    assert split_counts(n, (0.8, 0.1, 0.1)) == counts


def test_split_counts_skip_splits_with_zero_fraction():
    assert split_counts(4, (0.9, 0.0, 0.1)) == [3, 0, 1]
    assert split_counts(7, (0.7, 0.3)) == [5, 2]


def test_stratified_split_keeps_rare_classes_in_every_split():
    sizes = {"common": 500, "rare": 3, "rarer": 2, "single": 1, "mid": 12}
    samples = [Sample(Path(f"{label}/{k}.png"), label) for label, n in sizes.items() for k in range(n)]
    splits = stratified_split(samples, (0.8, 0.1, 0.1), seed=1)
    counts = {name: Counter(s.label for s in members) for name, members in splits.items()}
    assert counts["train"] == {"common": 400, "rare": 1, "rarer": 1, "single": 1, "mid": 10}
    assert counts["val"] == {"common": 50, "rare": 1, "rarer": 1, "mid": 1}
    assert counts["test"] == {"common": 50, "rare": 1, "mid": 1}
    assert sorted(s.path for m in splits.values() for s in m) == sorted(s.path for s in samples)


def test_stratified_split_depends_on_seed_not_on_input_order():
    samples = [Sample(Path(f"{k:03d}.png"), "ab"[k % 2]) for k in range(60)]
    first = stratified_split(samples, seed=4)
    assert stratified_split(samples[::-1], seed=4) == first
    assert stratified_split(samples, seed=5) != first
    assert list(stratified_split(samples, (0.75, 0.25))) == ["train", "val"]
    with pytest.raises(InputError, match="add up to 1"):
        stratified_split(samples, (0.8, 0.3))



def test_saved_split_reads_back_only_for_the_dataset_it_was_saved_from(tmp_path):
    samples = [Sample(Path(f"/d/{k}.png"), "ab"[k % 2]) for k in range(4)]
    dataset = Dataset(Path("/d"), {"all": samples}, "folders")
    assert saved_split(None, dataset, "val") is None  # no file
    path = {"train": ["/d/0.png", "/d/2.png"], "val": ["/d/3.png", "/d/1.png"]}
    assert saved_split(path, dataset, "val") == [samples[3], samples[1]]  # the saved order
    assert saved_split(path, dataset, "test") is None  # no such split
    smaller = Dataset(Path("/d"), {"all": samples[:3]}, "folders")
    assert saved_split(path, smaller, "val") is None  # an image the dataset lacks
    assert saved_split(path, smaller, "train") == [samples[0], samples[2]]


# ---- the calibration part ---------------------------------------------------------------------

CONFIG = {"train_split": "train", "val_split": "val", "split_fractions": [0.8, 0.1, 0.1], "seed": 3,
          "calibration_fraction": 0.1}


def _samples(prefix: str, per_class: int) -> list[Sample]:
    return [Sample(Path(f"/d/{prefix}/{label}/{k}.png"), label) for label in "abcd" for k in range(per_class)]


def test_calibration_part_is_held_out_of_the_training_split_and_saved(tmp_path):
    dataset = Dataset(Path("/d"), {"train": _samples("train", 50), "val": _samples("val", 5),
                                   "test": _samples("test", 5)}, "folders")
    parts, saved = training_parts(dataset, CONFIG, None)
    train, calib = {s.path for s in parts["train"]}, {s.path for s in parts[CALIBRATION]}
    assert len(calib) == 20 and len(train) == 180 and not train & calib  # 10% of each class's 50
    assert train | calib == {s.path for s in dataset.split("train")} and parts["val"] == dataset.split("val")
    assert saved == {CALIBRATION: sorted(str(p) for p in calib)}
    again, nothing = training_parts(dataset, {**CONFIG, "seed": 99}, saved)  # what fit saves, read back
    assert again == parts and nothing is None


def test_a_datasets_own_calibration_split_is_used_as_it_is(tmp_path):
    dataset = Dataset(Path("/d"), {"train": _samples("train", 10), "val": _samples("val", 2),
                                   "calib": _samples("calib", 3)}, "folders")
    parts, saved = training_parts(dataset, CONFIG, None)
    assert parts["train"] == dataset.split("train") and parts[CALIBRATION] == dataset.split("calib")
    assert saved is None


def test_a_dataset_without_splits_is_split_four_ways(tmp_path):
    dataset = Dataset(Path("/d"), {"all": _samples("all", 100)}, "folders")
    parts, saved = training_parts(dataset, CONFIG, None)
    assert {k: len(v) for k, v in parts.items()} == {"train": 288, "val": 40, CALIBRATION: 32, "test": 40}
    assert set(saved) == {"train", "val", CALIBRATION, "test"}
    paths = [s.path for part in parts.values() for s in part]
    assert len(paths) == len(set(paths)) == 400


def test_a_run_from_before_the_calibration_part_keeps_its_splits(tmp_path):
    dataset = Dataset(Path("/d"), {"all": _samples("all", 10)}, "folders")
    old = {"train": [str(s.path) for s in dataset.samples[:30]], "val": [str(s.path) for s in dataset.samples[30:]]}
    config = {k: v for k, v in CONFIG.items() if k != "calibration_fraction"}  # an old run's config
    parts, saved = training_parts(dataset, config, old)
    assert parts[CALIBRATION] == [] and saved is None and len(parts["train"]) == 30
    with pytest.raises(InputError, match="calibration_fraction must be in"):
        training_parts(dataset, {**CONFIG, "calibration_fraction": 1.0}, None)
