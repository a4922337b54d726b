"""The class prior of a run's probabilities: training proportions, the shift of each kind of head, the refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from hier import runs
from hier.heads.arcface_multihead import ArcFaceMultiHead
from hier.heads.classifier import Classifier
from hier.heads.spheremulti import SphereMulti
from hier.runs.config import DEFAULTS
from hier.runs.prior import in_space, prior_record, prior_shift, train_proportions
from hier.taxo import InputError
from hier.tree import TreeTensors

# five-node tree (conftest): r a a1 a2 b, leaves a1 a2 b. Training counts by hand below.
COUNTS = {"a1": 3, "a": 2, "b": 1}  # the 2 images labelled "a" spread over a1 and a2: leaf counts 4, 1, 1
PI = [5 / 9, 2 / 9, 2 / 9]  # plus one pseudo-image per leaf


def config(**keys) -> dict:
    return {**DEFAULTS, **keys}


def run_with_counts(tmp_path, counts=COUNTS, proportions=None):
    runs.layout.write_prior(tmp_path, {"train_counts": counts, "proportions": proportions})
    return tmp_path


def test_training_proportions_spread_inner_labels_and_add_one_per_leaf(five):
    pi = train_proportions(COUNTS, five, TreeTensors(five), config())
    torch.testing.assert_close(pi, torch.tensor(PI, dtype=torch.float64))
    balanced = train_proportions(COUNTS, five, TreeTensors(five), config(balanced_sampler=True))
    # the sampler draws each of the 3 labelled classes 2 times in 6: a1 2, a 2 (1 + 1), b 2 -> 3 + 1, 1 + 1, 2 + 1
    torch.testing.assert_close(balanced, torch.tensor([4 / 9, 2 / 9, 3 / 9], dtype=torch.float64))


def test_leaf_proportions_in_each_score_space(five):
    tree, q = TreeTensors(five), torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64)
    torch.testing.assert_close(in_space(tree, q, "node"), torch.tensor([1, 0.7, 0.5, 0.2, 0.3], dtype=torch.float64))
    # level space: (a, b | a1, a2, b moved down)
    torch.testing.assert_close(in_space(tree, q, "level"),
                               torch.tensor([0.7, 0.3, 0.5, 0.2, 0.3], dtype=torch.float64))


def test_default_settings_shift_nothing(five, tmp_path):
    head = Classifier(in_features=4, taxonomy=five)
    assert prior_shift(tmp_path, head, five, config()) is None  # no prior.json needed either


def test_a_classifier_shifted_to_the_uniform_prior_by_hand(five, tmp_path):
    """Without logit adjustment the softmax carries pi; for a uniform mix p_i is proportional to e^{s_i} / pi_i."""
    head = Classifier(in_features=4, taxonomy=five)
    scores = torch.tensor([[1.0, 2.0, 0.5]])
    shift = prior_shift(run_with_counts(tmp_path), head, five, config(prior="uniform"))
    weights = [math.e ** s / p for s, p in zip([1.0, 2.0, 0.5], PI)]
    by_hand = [w / sum(weights) for w in weights]
    probs = head.node_probabilities(scores + shift)[0]
    torch.testing.assert_close(probs[[2, 3, 4]], torch.tensor(by_hand), rtol=1e-5, atol=1e-6)
    assert probs[1].item() == pytest.approx(by_hand[0] + by_hand[1], rel=1e-5)


def test_logit_adjusted_scores_take_the_prior_they_are_asked_for(five, tmp_path):
    """Trained with tau = 1 the raw scores are balanced: prior train adds log pi, uniform adds a constant."""
    head = Classifier(in_features=4, taxonomy=five)
    run = run_with_counts(tmp_path)
    train = prior_shift(run, head, five, config(long_tail="logit_adjust"))
    torch.testing.assert_close(train, torch.tensor(PI).log())
    uniform = prior_shift(run, head, five, config(long_tail="logit_adjust", prior="uniform"))
    torch.testing.assert_close(uniform, torch.full((3,), math.log(1 / 3)))


def test_a_prior_file_is_kept_in_the_run_and_shifts_to_its_proportions(five, tmp_path):
    prior = tmp_path / "mix.csv"
    prior.write_text("class,share\na1,1\na2,1\nb,2\n")
    record = prior_record(torch.tensor([2, 2, 2, 1, 1, 4]), five, config(prior=str(prior)))
    assert record == {"train_counts": COUNTS, "proportions": {"a1": 0.25, "a2": 0.25, "b": 0.5}}
    prior.unlink()  # the run keeps what it needs
    shift = prior_shift(run_with_counts(tmp_path, proportions=record["proportions"]),
                        Classifier(in_features=4, taxonomy=five), five, config(prior=str(prior)))
    torch.testing.assert_close(shift, torch.tensor([math.log(0.25 / PI[0]), math.log(0.25 / PI[1]),
                                                    math.log(0.5 / PI[2])]))


def test_per_node_sigmoids_shift_by_log_odds(five, tmp_path):
    head = SphereMulti(in_features=4, taxonomy=five)
    shift = prior_shift(run_with_counts(tmp_path), head, five, config(prior="uniform"))

    def logit(p):
        return math.log(p / (1 - p))

    # node a: uniform share 2/3, trained share 7/9; the root is certain whatever the mix
    assert shift[1].item() == pytest.approx(logit(2 / 3) - logit(7 / 9), rel=1e-5)
    assert shift[4].item() == pytest.approx(logit(1 / 3) - logit(2 / 9), rel=1e-5)
    assert shift[0].item() == 0


def test_per_level_softmaxes_shift_level_by_level(five, tmp_path):
    head = ArcFaceMultiHead(in_features=4, taxonomy=five)
    shift = prior_shift(run_with_counts(tmp_path), head, five, config(prior="uniform"))
    by_hand = [math.log((2 / 3) / (7 / 9)), math.log((1 / 3) / (2 / 9)),
               *(math.log((1 / 3) / p) for p in PI)]
    torch.testing.assert_close(shift, torch.tensor(by_hand))


class Opaque(Classifier):
    """A third-party head that does not say how a prior moves its scores."""

    name = "opaque"
    prior_link = None


def test_a_head_without_a_prior_link_works_until_a_prior_is_asked(five, tmp_path):
    head = Opaque(in_features=4, taxonomy=five)
    assert prior_shift(run_with_counts(tmp_path), head, five, config()) is None
    with pytest.raises(InputError, match="the 'opaque' head does not say how a class prior moves its scores"):
        prior_shift(run_with_counts(tmp_path), head, five, config(prior="uniform"))


def test_a_run_without_prior_json_is_told_to_fit_again(five, tmp_path):
    with pytest.raises(InputError, match="no prior.json"):
        prior_shift(tmp_path, Classifier(in_features=4, taxonomy=five), five, config(long_tail="logit_adjust"))


def test_a_loaded_run_answers_for_its_prior(run_copy):
    """hier fit keeps the training counts; a run whose config asks for another prior loads shifted."""
    run = run_copy("classifier")
    model, taxonomy, _ = runs.load_trained(run)
    assert model.prior_shift is None
    counts = json.loads((run / runs.layout.PRIOR).read_text())["train_counts"]
    assert sum(counts.values()) > 0 and set(counts) <= set(taxonomy.ids)
    saved = yaml.safe_load((run / runs.CONFIG).read_text())
    (run / runs.CONFIG).write_text(yaml.safe_dump({**saved, "prior": "uniform"}))
    shifted, _, config = runs.load_trained(run)
    expected = prior_shift(run, shifted.head, taxonomy, config)
    scores = torch.randn(4, len(taxonomy.leaves))
    torch.testing.assert_close(shifted.node_probabilities(scores), shifted.head.node_probabilities(scores + expected))
    assert not torch.allclose(shifted.node_probabilities(scores), model.node_probabilities(scores))
