"""The logit-adjusted loss: the wrapped loss on scores plus fixed offsets, checked against values by hand."""

from __future__ import annotations

import math

import pytest
import torch

from hier.losses.logit_adjusted import LogitAdjusted
from hier.plugins import create_loss

A1, B = 2, 4  # node indices in the five-node tree (conftest): r a a1 a2 b; leaf columns a1 a2 b


def test_adjusted_cross_entropy_on_three_classes_by_hand(five):
    """Menon et al. 2021, tau = 1: -log( pi_y e^{s_y} / sum_j pi_j e^{s_j} )."""
    scores, pi = [1.0, 2.0, 0.5], [0.6, 0.3, 0.1]
    loss = LogitAdjusted(create_loss("ce", taxonomy=five), torch.tensor(pi).log())
    by_hand = {A1: math.log(0.6 * math.e + 0.3 * math.e ** 2 + 0.1 * math.e ** 0.5) - 1.0 - math.log(0.6),
               B: math.log(0.6 * math.e + 0.3 * math.e ** 2 + 0.1 * math.e ** 0.5) - 0.5 - math.log(0.1)}
    for target, expected in by_hand.items():
        assert loss(torch.tensor([scores]), torch.tensor([target])).item() == pytest.approx(expected, rel=1e-6)


def test_the_rare_class_costs_more_so_its_raw_score_must_rise(five):
    """The same scores cost more on the rare class b than without the adjustment: its gradient pushes b's raw
    score up, which is what makes the raw scores balanced."""
    plain = create_loss("ce", taxonomy=five)
    adjusted = LogitAdjusted(plain, torch.tensor([0.6, 0.3, 0.1]).log())
    scores = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    assert adjusted(scores, torch.tensor([B])) > plain(scores, torch.tensor([B]))
    adjusted(scores, torch.tensor([B])).backward()
    assert scores.grad[0, 2] < 0  # descent raises b's score


def test_it_keeps_the_wrapped_loss_name_and_spaces_and_saves_no_offsets(five):
    loss = LogitAdjusted(create_loss("bce", taxonomy=five), torch.zeros(5))
    assert (loss.name, loss.spaces) == ("bce", create_loss("bce", taxonomy=five).spaces)
    assert "offsets" not in loss.state_dict()
