"""The five heads: registry, default configs, shapes, hand-computed values, gradients."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import pytest
import torch

from hier.plugins import create_head, create_loss, get_plugins, list_heads, list_losses

R, A, A1, A2, B = range(5)  # node order of the five-node tree (conftest); leaf columns a1 a2 b
HEADS = ["arcface", "arcface-multihead", "classifier", "spheremulti", "spheremultihier"]


def test_registry_lists_the_five_heads_with_one_line_help():
    assert list_heads() == HEADS
    entries = get_plugins().registry("heads").entries
    for name in HEADS:
        assert entries[name].help and "\n" not in entries[name].help
        assert entries[name].plugin == "hier"


def test_registry_lists_the_losses():
    assert set(list_losses()) >= {"ce", "bce", "focal", "asl", "hbce", "hxe", "soft-labels"}
    assert all(get_plugins().registry("losses").entries[name].help for name in list_losses())


def test_the_plugin_module_does_not_import_torch():
    code = "import sys, hier.heads.plugin; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("name", HEADS)
def test_default_config(name, five):
    config = get_plugins().registry("heads").get(name).factory.default_config  # beside the head, as a plugin's
    assert list(config) == ["head_options", "loss", "loss_options"]
    head = create_head(name, in_features=8, taxonomy=five, **config["head_options"])
    assert config["loss"] == head.default_loss
    loss = create_loss(config["loss"], taxonomy=five, **config["loss_options"])
    # it states the factories' defaults, so that editing one without the other shows here
    for factory, options in ((type(head), config["head_options"]), (type(loss), config["loss_options"])):
        defaults = {k: p.default for k, p in inspect.signature(factory).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        assert options == {k: defaults[k] for k in options}
    targets = torch.tensor([A1, A, B])
    assert loss(head(torch.randn(3, 8), targets), targets).isfinite()


@pytest.mark.parametrize("name", HEADS)
def test_shapes_and_state(name, seven):
    head = create_head(name, in_features=8, taxonomy=seven)
    width = {"leaf": 4, "node": 7, "level": head.tree.width("level")}[head.score_space]
    x, targets = torch.randn(5, 8), torch.tensor([3, 4, 5, 6, 2])
    assert head(x).shape == head(x, targets).shape == (5, width)
    assert head.node_probabilities(head(x)).shape == (5, 7)
    # only weights are saved: the tree tensors are rebuilt from the run's taxonomy
    assert all(not key.startswith("tree.") for key in head.state_dict())


def test_multihead_level_space_on_an_uneven_tree(seven):
    head = create_head("arcface-multihead", in_features=8, taxonomy=seven)
    # depth 1: a b; depth 2: c d b; depth 3: c1 c2 d b (d and b moved down)
    assert head.tree.level_sizes == (2, 3, 4)
    assert head.tree.level_nodes.tolist() == [1, 6, 2, 5, 6, 3, 4, 5, 6]


def test_classifier_node_probabilities_by_hand(five):
    head = create_head("classifier", in_features=2, taxonomy=five)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        head.linear.bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
    logits = [0.3, 0.7 + 0.5, -0.3]  # x = (0.3, 0.7)
    z = sum(math.exp(v) for v in logits)
    p = [math.exp(v) / z for v in logits]
    expected = [1.0, p[0] + p[1], p[0], p[1], p[2]]
    torch.testing.assert_close(head.node_probabilities(head(torch.tensor([[0.3, 0.7]])))[0], torch.tensor(expected))


def test_spheremulti_by_hand(five):
    head = create_head("spheremulti", in_features=2, taxonomy=five, scale=10.0, margin=0.2).double()
    angles = [0.0, 0.5, 1.0, 2.0, 3.0]
    with torch.no_grad():
        head.centres.copy_(torch.tensor([[math.cos(a), math.sin(a)] for a in angles]))
    x = torch.tensor([[math.cos(0.8), math.sin(0.8)]], dtype=torch.float64)
    expected = [10 * math.cos(abs(0.8 - a) + 0.2) for a in angles]
    # the same margin on every node, with or without targets
    for scores in (head(x), head(x, torch.tensor([A1]))):
        torch.testing.assert_close(scores[0], torch.tensor(expected, dtype=torch.float64))


def test_spheremulti_max_constraint_by_hand(five):
    head = create_head("spheremulti", in_features=2, taxonomy=five)
    scores = torch.tensor([[0.0, -1.0, 2.0, -3.0, 0.5]])
    s = torch.sigmoid(scores)[0].tolist()
    expected = [1.0, max(s[A], s[A1], s[A2]), s[A1], s[A2], s[B]]  # a lifted by its confident child a1
    torch.testing.assert_close(head.node_probabilities(scores)[0], torch.tensor(expected))


def test_spheremultihier_is_spheremulti_trained_with_hbce(five):
    plain, hier_ = (create_head(n, in_features=4, taxonomy=five) for n in ("spheremulti", "spheremultihier"))
    assert isinstance(hier_, type(plain))
    assert (plain.default_loss, hier_.default_loss) == ("bce", "hbce")


def test_multihead_margin_per_level(five):
    head = create_head("arcface-multihead", in_features=3, taxonomy=five, margin=0.5)
    x = torch.randn(4, 3)
    plain, marked = head(x), head(x, torch.tensor([A1, A, B, R]))
    changed = (plain != marked).int().tolist()  # columns: a b | a1 a2 b
    assert changed == [[1, 0, 1, 0, 0], [1, 0, 1, 1, 0], [0, 1, 0, 0, 1], [1, 1, 1, 1, 1]]


def test_multihead_node_probabilities_by_hand(five):
    head = create_head("arcface-multihead", in_features=3, taxonomy=five)
    scores = [0.2, -0.1, 1.0, 0.3, -0.5]  # a b | a1 a2 b
    level_1 = [v - math.log(math.exp(0.2) + math.exp(-0.1)) for v in scores[:2]]
    level_2 = [v - math.log(sum(math.exp(w) for w in scores[2:])) for v in scores[2:]]
    # each leaf through the class holding it at every level: a1 (a, a1), a2 (a, a2), b (b, b)
    leaf = [math.exp(level_1[0] + level_2[0]), math.exp(level_1[0] + level_2[1]), math.exp(level_1[1] + level_2[2])]
    q = [v / sum(leaf) for v in leaf]
    expected = [1.0, q[0] + q[1], q[0], q[1], q[2]]
    torch.testing.assert_close(head.node_probabilities(torch.tensor([scores]))[0], torch.tensor(expected))


@pytest.mark.parametrize("name", HEADS)
def test_gradcheck(name, seven):
    head = create_head(name, in_features=3, taxonomy=seven, **({} if name == "classifier" else {"margin": 0.3}))
    head = head.double()
    params = dict(head.named_parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([3, 2, 6, 1])  # leaves and inner nodes

    def scores_and_probabilities(x, *weights):
        state = dict(zip(params, weights))
        scores = torch.func.functional_call(head, state, (x, targets))
        return scores, head.node_probabilities(scores)

    weights = tuple(p.detach().clone().requires_grad_() for p in params.values())
    assert torch.autograd.gradcheck(scores_and_probabilities, (x, *weights), fast_mode=True)
