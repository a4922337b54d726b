"""The per-class promise: scores, groups of rare classes, the conformal threshold, and a shifted mix of classes
that breaks the marginal promise but keeps the per-class one."""

import json
import math

import pytest
import torch

from hier.infer import answer
from hier.infer import calibration as cal
from hier.infer import class_conditional as cc
from hier.infer.curve import operating_curve
from hier.runs import calibration as calibration_file
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

ROOT, A, C, A1, A2, X, Y = range(7)


@pytest.fixture(scope="module")
def taxonomy():
    """root -> A -> (a1, a2 -> (x, y)); root -> c."""
    return Taxonomy([{"id": "root", "parent": None}, {"id": "A", "parent": "root"}, {"id": "c", "parent": "root"},
                     {"id": "a1", "parent": "A"}, {"id": "a2", "parent": "A"}, {"id": "x", "parent": "a2"},
                     {"id": "y", "parent": "a2"}])


def node_probs(leaf: torch.Tensor) -> torch.Tensor:
    """Node probabilities from leaf probabilities over (c, a1, x, y)."""
    probs = torch.zeros(len(leaf), 7, dtype=torch.float64)
    probs[:, [C, A1, X, Y]] = leaf.double()
    probs[:, A2] = probs[:, X] + probs[:, Y]
    probs[:, A] = probs[:, A1] + probs[:, A2]
    probs[:, ROOT] = 1
    return probs


def test_wrong_until_by_hand(taxonomy):
    tree = TreeTensors(taxonomy)
    probs = node_probs(torch.tensor([[0.0, 0.0, 0.3, 0.7],    # x: y answered for t <= 0.7, then a2 (right)
                                     [0.0, 0.0, 0.7, 0.3],    # x: x for t <= 0.7, then a2: never wrong
                                     [0.6, 0.1, 0.2, 0.1],    # x: c for t <= 0.6, then root: wrong up to 0.6
                                     [0.0, 0.8, 0.1, 0.1]]))  # a2 labelled: a1 for t <= 0.8 is wrong
    targets = torch.tensor([X, X, X, A2])
    assert cc.wrong_until(probs, targets, tree).tolist() == pytest.approx([0.7, 0.0, 0.6, 0.8])


@pytest.mark.parametrize("level, needed", [(0.5, 1), (0.8, 4), (0.9, 9), (0.95, 19), (0.99, 99)])
def test_images_needed(level, needed):
    assert cc.images_needed(level) == needed
    # the conformal quantile's rank ceil((n + 1) c) fits in n images at ``needed`` and not one fewer
    assert math.ceil((needed + 1) * level - 1e-9) <= needed
    assert needed == 1 or math.ceil(needed * level - 1e-9) > needed - 1


def test_rare_classes_are_pooled_up_the_tree(taxonomy):
    # 12 c, 3 a1, 5 x, 2 y, 1 labelled a2: with 9 needed, c alone; x, y and the a2 label pool at a2 (8, too
    # few), then a1 joins them at A (11): one group named A; nothing uncertified
    targets = torch.tensor([C] * 12 + [A1] * 3 + [X] * 5 + [Y] * 2 + [A2])
    groups, uncertified = cc.class_groups(taxonomy, targets, 9)
    assert sorted(groups) == sorted([(C, [C]), (A, [A1, A2, X, Y])]) and uncertified == []
    # with 13 needed, c is too rare alone and A's pool too small: all pool at the root (23)
    groups, uncertified = cc.class_groups(taxonomy, targets, 13)
    assert groups == [(ROOT, [C, A1, A2, X, Y])] and uncertified == []
    # a class too rare for even the root's pool is uncertified, never silently covered; so are the leaves
    # without calibration images (a1, y)
    groups, uncertified = cc.class_groups(taxonomy, torch.tensor([C] * 12 + [X] * 2), 9)
    assert groups == [(C, [C])] and uncertified == [A1, X, Y]


def test_group_threshold_is_the_conformal_quantile_by_hand():
    scores = torch.tensor([0.0, 0.0, 0.2, 0.5, 0.31, 0.0, 0.7, 0.0, 0.0, 0.1], dtype=torch.float64)  # n = 10
    # level 0.8: k = ceil(11 * 0.8) = 9; the 9th smallest score is 0.5; the threshold just above it is 0.501
    assert cc.group_threshold(scores, 0.8) == pytest.approx(0.501)
    # level 0.9: k = ceil(9.9) = 10: the largest, 0.7
    assert cc.group_threshold(scores, 0.9) == pytest.approx(0.701)
    assert cc.group_threshold(torch.tensor([1.0] * 10, dtype=torch.float64), 0.5) is None


# ---- a long-tailed calibration split, a test split with another mix --------------------------------


def draw(n_c: int, n_x: int, generator: torch.Generator):
    """c is easy (always answered right); x is confused with y: p(x) uniform in (0, 1), p(y) = 1 - p(x), so at
    threshold t >= 0.5 an x image is answered right with probability t exactly (x, or a2 above both)."""
    p_x = torch.rand(n_x, generator=generator, dtype=torch.float64)
    leaf = torch.cat([torch.tensor([[0.97, 0.01, 0.01, 0.01]], dtype=torch.float64).expand(n_c, 4),
                      torch.stack([torch.zeros(n_x), torch.zeros(n_x), p_x, 1 - p_x], 1).double()])
    return node_probs(leaf), torch.tensor([C] * n_c + [X] * n_x)


def test_a_shifted_mix_breaks_the_marginal_promise_and_keeps_the_per_class_one(taxonomy):
    tree = TreeTensors(taxonomy)
    marginal, per_class = [], []
    for seed in range(100):  # the per-class promise holds on average over calibration draws: average them
        probs, targets = draw(950, 50, torch.Generator().manual_seed(100 + seed))  # 95 % c, 5 % x
        [plain] = cal.threshold_table(probs, targets, tree, levels=(0.9,))
        [both] = cal.per_class_table(probs, targets, taxonomy, levels=(0.9,))
        assert plain["correct"] >= 0.9 and both["correct"] >= 0.9 and both["lower_bound"] >= 0.9
        assert both["threshold"] >= plain["threshold"] and both["uncertified"] == ["a1", "y"]  # no images of them
        assert sorted(g["node"] for g in both["groups"]) == ["c", "x"]
        marginal.append(plain["threshold"])
        per_class.append(both["threshold"])
    # the test split half c, half x: the mix the calibration split did not have
    test_probs, test_targets = draw(10_000, 10_000, torch.Generator().manual_seed(1))
    x_only = test_targets == X
    on_mix = operating_curve(test_probs, test_targets, tree, torch.tensor(marginal))["correct"]
    on_x = operating_curve(test_probs[x_only], test_targets[x_only], tree, torch.tensor(per_class))["correct"]
    assert sum(on_mix) / len(on_mix) < 0.8  # the marginal promise is broken by the new mix
    # each class keeps 0.9, x (the hard one) included: 0.903 here, the conformal rank 46 of 51 promising 0.902
    assert sum(on_x) / len(on_x) >= 0.9


# ---- the file and the answer rule ------------------------------------------------------------------


def test_per_class_calibration_file_round_trip_and_checks(tmp_path, taxonomy):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    probs, targets = draw(300, 60, torch.Generator().manual_seed(5))
    table = cal.per_class_table(probs, targets, taxonomy)
    calibration = calibration_file.Calibration(temperature=1.0, delta=0.05, n=360, table=table, split="calib",
                                               weights_sha256=calibration_file.weights_digest(run),
                                               guarantee="per-class")
    calibration.save(run)
    loaded = calibration_file.Calibration.load(run)
    assert loaded == calibration
    assert loaded.coverage(loaded.entry(0.9)) == "per class: 2 classes alone, 0 in 0 groups of relatives, 2 uncertified"
    (run / "taxonomy.json").write_text("{}")  # the answer rule reads only the calibration here
    described = answer.AnswerRule(0.9, loaded.entry(0.9)["threshold"], 1.0, True, 0.9, loaded).describe()
    assert "per class: 2 classes alone" in described
    data = json.loads((run / "calibration.json").read_text())
    del data["table"][3]["groups"]
    (run / "calibration.json").write_text(json.dumps(data))
    with pytest.raises(calibration_file.InputError, match="table entry 3 lacks its groups"):
        calibration_file.Calibration.load(run)
    data["guarantee"] = "always"
    (run / "calibration.json").write_text(json.dumps(data))
    with pytest.raises(calibration_file.InputError, match="guarantee is 'always'"):
        calibration_file.Calibration.load(run)
