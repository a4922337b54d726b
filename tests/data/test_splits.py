"""Stratified splits (counts per class, rare classes, seeding) and a run's saved split read back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.data.readers import Dataset, Sample
from hier.data.splits import saved_split, split_counts, stratified_split


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
    path = tmp_path / "split.json"
    assert saved_split(path, dataset, "val") is None  # no file
    path.write_text(json.dumps({"train": ["/d/0.png", "/d/2.png"], "val": ["/d/3.png", "/d/1.png"]}))
    assert saved_split(path, dataset, "val") == [samples[3], samples[1]]  # the saved order
    assert saved_split(path, dataset, "test") is None  # no such split
    smaller = Dataset(Path("/d"), {"all": samples[:3]}, "folders")
    assert saved_split(path, smaller, "val") is None  # an image the dataset lacks
    assert saved_split(path, smaller, "train") == [samples[0], samples[2]]
