"""A test set scored as if it had another class mix: importance weights and the weighted figures, by hand."""

from __future__ import annotations

import pytest
import torch

from hier.infer.evaluate import evaluate_probabilities
from hier.infer.reweight import class_mix_weights
from hier.taxo import InputError
from hier.tree import TreeTensors

A, A1, A2, B = 1, 2, 3, 4  # five-node tree (conftest): r a a1 a2 b; leaf columns a1 a2 b


def three_and_one(five):
    """Three images of a1 (two answered a1, one a2: wrong) and one of b (answered b), at threshold 0.7."""
    leaf = torch.tensor([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.05, 0.05, 0.9]])
    return TreeTensors(five).sum_up(leaf), torch.tensor([A1, A1, A1, B])


def test_uniform_weights_by_hand(five):
    weights, mix = class_mix_weights(torch.tensor([A1, A1, A1, B]), "uniform", five)
    # w = q / p: a1 (1/2) / (3/4) = 2/3, b (1/2) / (1/4) = 2
    torch.testing.assert_close(weights, torch.tensor([2 / 3, 2 / 3, 2 / 3, 2], dtype=torch.float64))
    assert mix["classes"] == 2 and mix["absent_classes"] == []
    assert mix["effective_images"] == pytest.approx(16 / (3 * 4 / 9 + 4))  # (sum w)^2 / sum w^2


def test_the_reweighted_evaluation_by_hand(five, tmp_path):
    probs, targets = three_and_one(five)
    plain = evaluate_probabilities(probs, targets, five, 0.7)
    assert plain["correct_at_confidence"] == pytest.approx(3 / 4)
    assert plain["mean_depth_at_confidence"] == pytest.approx((2 + 2 + 2 + 1) / 4)
    weights, _ = class_mix_weights(targets, "uniform", five)
    uniform = evaluate_probabilities(probs, targets, five, 0.7, weights=weights)
    # (2/3 * 2 + 2 * 1) / 4 = 5/6: the mean of the classes' fractions, 2/3 and 1
    assert uniform["correct_at_confidence"] == pytest.approx(5 / 6)
    assert uniform["leaf_accuracy"] == pytest.approx(5 / 6)
    assert uniform["mean_depth_at_confidence"] == pytest.approx((2 / 3 * 6 + 2 * 1) / 4)
    assert uniform["balanced_accuracy"] == plain["balanced_accuracy"] == pytest.approx(5 / 6)
    assert uniform["operating_curve_area"] != plain["operating_curve_area"]
    assert uniform["per_class_at_confidence"] == plain["per_class_at_confidence"] == {
        "a1": {"images": 3, "correct": pytest.approx(2 / 3), "mean_depth": 2.0},
        "b": {"images": 1, "correct": 1.0, "mean_depth": 1.0}}
    assert plain["worst_class_at_confidence"]["id"] == "a1"
    mix = tmp_path / "mix.json"
    mix.write_text('{"a1": 1, "a2": 5, "b": 3}')
    weights, recorded = class_mix_weights(targets, str(mix), five)
    # q a1 1/4, b 3/4 (a2 has no test images): w a1 = (1/4) / (3/4) = 1/3, w b = (3/4) / (1/4) = 3
    assert recorded["absent_classes"] == ["a2"]
    shifted = evaluate_probabilities(probs, targets, five, 0.7, weights=weights)
    assert shifted["correct_at_confidence"] == pytest.approx((1 / 3 * 2 + 3) / 4)


def test_a_mix_must_cover_the_test_classes(five, tmp_path):
    mix = tmp_path / "mix.csv"
    mix.write_text("class,p\na1,1\n")
    with pytest.raises(InputError, match="1 classes of the test set have no proportion \\(first: 'b'\\)"):
        class_mix_weights(torch.tensor([A1, B]), str(mix), five)
    mix.write_text("class,p\na1,0\nb,0\na2,1\n")
    with pytest.raises(InputError, match="no class of the test set has a proportion above zero"):
        class_mix_weights(torch.tensor([A1, B]), str(mix), five)
