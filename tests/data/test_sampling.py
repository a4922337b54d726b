"""Class weights and the class-balanced sampler, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hier.data.sampling import balanced_sampler, class_counts, class_weights, effective_number, sample_weights

TARGETS = [0] * 9 + [2]  # class 0: 9 samples, class 1: none, class 2: one


def test_class_counts():
    assert class_counts(TARGETS, 4).tolist() == [9, 0, 1, 0]


def test_effective_number_hand_computed():
    # (1 - 0.9^n) / (1 - 0.9): n=1 -> 1, n=10 -> (1 - 0.3486784401) / 0.1
    assert effective_number(np.array([1, 10]), 0.9) == pytest.approx([1.0, 6.513215599])
    assert effective_number(np.array([1, 10]), 1.0).tolist() == [1, 10]
    assert effective_number(np.array([1, 10]), 0.0).tolist() == [1, 1]


def test_inverse_frequency_weights_have_sample_mean_one():
    # w ~ 1/n: [1/9, -, 1]; mean over samples (9 * 1/9 + 1 * 1) / 10 = 0.2, so scaled by 5
    weights = class_weights(TARGETS, 3, beta=1.0)
    assert weights.dtype == torch.float32
    assert weights.tolist() == pytest.approx([5 / 9, 0.0, 5.0])


def test_effective_number_weights_hand_computed():
    # counts 9 and 1 at beta 0.5: E = (1 - 0.5^9) / 0.5 = 1.99609375 and 1
    w0, w2 = 1 / 1.99609375, 1.0
    scale = 10 / (9 * w0 + 1 * w2)
    assert class_weights(TARGETS, 3, beta=0.5).tolist() == pytest.approx([w0 * scale, 0.0, w2 * scale])
    assert class_weights(TARGETS, 3, beta=0.0).tolist() == pytest.approx([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        class_weights(TARGETS, 3, beta=1.5)


def test_sample_weights_power():
    assert sample_weights([0, 0, 0, 1], 2).tolist() == pytest.approx([1 / 3] * 3 + [1.0])
    assert sample_weights([0, 0, 0, 1], 2, power=0.5).tolist() == pytest.approx([3 ** -0.5] * 3 + [1.0])
    assert sample_weights([0, 0, 0, 1], 2, power=0.0).tolist() == [1.0] * 4


def test_balanced_sampler_draws_classes_equally_and_repeats_for_a_seed():
    targets = np.array([0] * 95 + [1] * 5)
    sampler = balanced_sampler(targets, 2, num_samples=20_000, seed=3)
    drawn = targets[list(sampler)]
    assert abs(drawn.mean() - 0.5) < 0.02  # class 1 is 5% of the data, half of the draws
    assert list(balanced_sampler(targets, 2, seed=3)) == list(balanced_sampler(targets, 2, seed=3))
    assert len(list(balanced_sampler(targets, 2))) == 100
    natural = targets[list(balanced_sampler(targets, 2, power=0.0, num_samples=20_000))]
    assert abs(natural.mean() - 0.05) < 0.01
