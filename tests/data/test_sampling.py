"""Class counts and class-balanced draw weights, against hand-computed values."""

from __future__ import annotations

import pytest

from hier.data.sampling import class_counts, sample_weights

TARGETS = [0] * 9 + [2]  # class 0: 9 samples, class 1: none, class 2: one


def test_class_counts():
    assert class_counts(TARGETS, 4).tolist() == [9, 0, 1, 0]


def test_sample_weights_power():
    assert sample_weights([0, 0, 0, 1], 2).tolist() == pytest.approx([1 / 3] * 3 + [1.0])
    assert sample_weights([0, 0, 0, 1], 2, power=0.5).tolist() == pytest.approx([3 ** -0.5] * 3 + [1.0])
    assert sample_weights([0, 0, 0, 1], 2, power=0.0).tolist() == [1.0] * 4
