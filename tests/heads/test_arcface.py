"""ArcFace: hand-computed logits, the margin on inner-node targets, the guard near theta = pi."""

from __future__ import annotations

import math

import pytest
import torch

from hier.core.errors import InputError
from hier.heads.cosine import angular_margin
from hier.plugins import create_head

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest); leaf columns a1 a2 b
CENTRE_ANGLES = [0.0, 2 * math.pi / 3, 4 * math.pi / 3]  # a1, a2, b on the unit circle
PHI = 0.3  # the embedding's angle


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


@pytest.fixture
def head(five):
    head = create_head("arcface", in_features=2, taxonomy=five, scale=10.0, margin=0.5).double()
    with torch.no_grad():
        head.centres.copy_(torch.tensor([unit(a) for a in CENTRE_ANGLES]) * torch.tensor([[1.0], [2.0], [0.5]]))
    return head


def angle_to(centre: float) -> float:
    return abs(math.remainder(PHI - centre, 2 * math.pi))


def test_logits_by_hand(head):
    x = torch.tensor([unit(PHI)], dtype=torch.float64)
    theta = [angle_to(c) for c in CENTRE_ANGLES]
    plain = [10 * math.cos(t) for t in theta]
    torch.testing.assert_close(head(x)[0], torch.tensor(plain, dtype=torch.float64))
    with_margin = {
        A1: [10 * math.cos(theta[0] + 0.5), plain[1], plain[2]],
        B: [plain[0], plain[1], 10 * math.cos(theta[2] + 0.5)],
        # an inner-node target: the margin on every leaf under it
        A: [10 * math.cos(theta[0] + 0.5), 10 * math.cos(theta[1] + 0.5), plain[2]],
        R: [10 * math.cos(t + 0.5) for t in theta],
    }
    for target, expected in with_margin.items():
        torch.testing.assert_close(head(x, torch.tensor([target]))[0], torch.tensor(expected, dtype=torch.float64))


def test_past_pi_minus_m_the_logit_keeps_falling(head):
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    x = torch.stack([theta.cos(), theta.sin()], dim=1)  # angle theta from a1's centre
    logits = head(x, torch.full((len(theta),), A1))[:, 0]
    assert (logits.diff() <= 0).all() and (logits.diff()[:-1] < 0).all()
    beyond = theta > math.pi - 0.5
    expected = 10 * (theta[beyond].cos() - 0.5 * math.sin(0.5))
    torch.testing.assert_close(logits[beyond], expected)


def test_gradient_is_finite_on_and_opposite_a_centre(head):
    for angle in (0.0, math.pi, math.pi - 1e-7):
        x = torch.tensor([unit(angle)], dtype=torch.float64, requires_grad=True)
        head(x, torch.tensor([A1]))[0, 0].backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(head.centres.grad).all()
        head.centres.grad = None


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.5, 1.0, math.pi / 2])
def test_angular_margin_is_monotone_for_every_allowed_margin(margin):
    cos_theta = torch.linspace(1, -1, 4001, dtype=torch.float64)
    assert (angular_margin(cos_theta, margin).diff() <= 0).all()
    assert angular_margin(cos_theta, margin)[0] == pytest.approx(math.cos(margin))


def test_zero_margin_changes_nothing(five):
    head = create_head("arcface", in_features=4, taxonomy=five, margin=0.0)
    x = torch.randn(6, 4)
    torch.testing.assert_close(head(x, torch.tensor([A1, A2, B, A, R, A1])), head(x))


@pytest.mark.parametrize("options, message", [({"margin": 2.0}, "between 0 and pi/2"),
                                              ({"margin": -0.1}, "between 0 and pi/2"),
                                              ({"scale": 0.0}, "scale must be a positive number"),
                                              ({"scale": "30"}, "scale must be a positive number")])
def test_bad_options_are_input_errors(five, options, message):
    with pytest.raises(InputError, match=message):
        create_head("arcface", in_features=4, taxonomy=five, **options)


def test_gradcheck(head):
    x = torch.tensor([unit(PHI), unit(2.0), [0.4, -1.3]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([A1, A, B])

    def logits(embeddings, centres):
        return torch.func.functional_call(head, {"centres": centres}, (embeddings, targets))

    assert torch.autograd.gradcheck(logits, (x, head.centres.detach().clone().requires_grad_()))
