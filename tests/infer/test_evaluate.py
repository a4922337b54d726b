"""``hier evaluate`` end to end on small trained runs, and its metrics from node probabilities."""

import json

import pytest
import torch

from hier import runs
from hier.infer import evaluate as evaluation
from hier.infer.curve import at_confidence, curve_area, operating_curve
from hier.metrics.bounds import clopper_pearson_upper
from hier.taxo import InputError
from hier.tree import TreeTensors


def test_evaluate_writes_every_metric_and_the_plot(trained, run_copy, tmp_path):
    run = run_copy("spheremulti")
    plot = tmp_path / "curve.png"
    result = evaluation.evaluate(run, trained.data, confidence=0.8, plot=plot, progress=False)
    for key in ("leaf_accuracy", "leaf_top5_accuracy", "balanced_accuracy", "hierarchical_precision",
                "hierarchical_recall", "hierarchical_f1", "hierarchical_f1_macro", "mistake_severity",
                "hierarchical_distance_at_1", "hierarchical_distance_at_5", "correct_at_confidence",
                "mean_depth_at_confidence", "information_recall_at_confidence", "operating_curve_area",
                "information_recall_at_correct_90", "information_recall_at_correct_95", "ece", "ece_per_level",
                "violation_rate", "per_level", "per_class_recall", "at_levels", "operating_curve", "unseen"):
        assert key in result, key
    assert result["split"] == "test" and result["images"] == len(list((trained.data / "test").rglob("*.png")))
    assert (result["calibrated"], result["threshold"], result["temperature"]) == (False, 0.8, 1.0)
    assert set(result["at_levels"]) == {"0.8", "0.9", "0.95"}
    assert result["at_levels"]["0.8"]["correct"] == pytest.approx(result["correct_at_confidence"])
    assert result["correct_at_confidence"] <= result["correct_at_confidence_upper_bound"] <= 1
    assert result["violation_rate"] == 0.0  # the max-constraint keeps sigmoid heads consistent
    assert 0 <= result["operating_curve_area"] <= 1
    assert set(result["per_level"]) == {"1", "2", "3", "4"}
    unseen = result["unseen"]
    assert unseen["images"] == len(list((trained.data / "unseen").rglob("*.png"))) and unseen["images"] > 0
    assert unseen["at_known_ancestor"] + unseen["in_wrong_leaf"] + unseen["elsewhere"] == pytest.approx(1)
    assert json.loads((run / runs.EVALUATION).read_text()) == json.loads(json.dumps(result))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_probabilities_matches_the_metric_functions(trained):
    taxonomy = runs.load_trained(trained.runs["classifier"])[1]
    tree = TreeTensors(taxonomy)
    g = torch.Generator().manual_seed(0)

    probs = TreeTensors(taxonomy).sum_up(torch.randn(300, len(taxonomy.leaves), generator=g).mul(3).softmax(-1))
    targets = torch.as_tensor(taxonomy.leaves)[torch.randint(0, len(taxonomy.leaves), (300,), generator=g)]
    result = evaluation.evaluate_probabilities(probs, targets, taxonomy, 0.7, level_thresholds={0.9: 0.85})
    assert result["correct_at_confidence"] == pytest.approx(at_confidence(probs, targets, tree, 0.7)["correct"])
    assert result["at_levels"]["0.9"]["threshold"] == 0.85
    full = operating_curve(probs, targets, tree)
    assert result["operating_curve_area"] == pytest.approx(curve_area(full))
    assert len(result["operating_curve"]["threshold"]) == min(len(full["threshold"]), evaluation.CURVE_POINTS)


def test_bad_plot_paths_are_refused_before_any_work(trained, tmp_path):
    run = trained.runs["classifier"]
    with pytest.raises(InputError, match="must end in .png, .svg or .pdf"):
        evaluation.evaluate(run, trained.data, plot=tmp_path / "curve.txt", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        evaluation.evaluate(run, trained.data, plot=tmp_path / "missing" / "curve.png", progress=False)
    assert not (run / runs.EVALUATION).exists()


def test_the_informative_rule_answers_where_the_deepest_rule_goes_astray():
    """Unbalanced tree: x1 (a leaf at depth 2) carries more information than y2 (an inner node at depth 3
    over 2 of the 6 leaves). Both reach 0.45 at threshold 0.4: 'deepest' takes y2, 'informative' x1."""
    import torch

    from hier.infer.evaluate import evaluate_probabilities
    from hier.taxo import Taxonomy

    def path(*ids):
        return [(i, i, None) for i in ids]

    taxonomy = Taxonomy.from_paths([*(path("x", f"x{k}") for k in range(1, 5)),
                                    path("y", "y1", "y2", "a"), path("y", "y1", "y2", "b")], source="test")
    probs = torch.zeros(1, len(taxonomy))
    for node, p in {"root": 1.0, "x": 0.5, "x1": 0.45, "x2": 0.05, "y": 0.5, "y1": 0.5, "y2": 0.45,
                    "a": 0.25, "b": 0.2}.items():
        probs[0, taxonomy.index(node)] = p
    target = torch.tensor([taxonomy.index("x1")])
    deepest = evaluate_probabilities(probs, target, taxonomy, 0.4)
    informative = evaluate_probabilities(probs, target, taxonomy, 0.4, rule="informative")
    assert (deepest["correct_at_confidence"], deepest["mean_depth_at_confidence"]) == (0.0, 3.0)
    assert (informative["correct_at_confidence"], informative["mean_depth_at_confidence"]) == (1.0, 2.0)
    assert informative["operating_curve_area"] > deepest["operating_curve_area"]


def test_answers_by_rank_and_the_share_at_genus_or_deeper():
    import torch

    from hier.infer.evaluate import answers_by_rank
    from hier.taxo import Taxonomy

    tree = Taxonomy([{"id": "r", "parent": None}, {"id": "Bacillariophyceae", "parent": "r", "rank": "class"},
                     {"id": "Chaetoceros", "parent": "Bacillariophyceae", "rank": "genus"},
                     {"id": "C. affinis", "parent": "Chaetoceros", "rank": "species"},
                     {"id": "C. danicus", "parent": "Chaetoceros", "rank": "species"},
                     {"id": "Bubbles", "parent": "r"}])  # a leaf without a rank: as deep as it goes
    answered = torch.tensor([0, 1, 1, 2, 3, 5, 5, 4])  # r, class x2, genus, species x2 (3, 4), Bubbles x2
    figures = answers_by_rank(answered, tree)
    assert figures["answers_by_rank_at_confidence"] == {"class": 2 / 8, "depth 0": 1 / 8, "depth 1": 2 / 8,
                                                        "genus": 1 / 8, "species": 2 / 8}
    assert figures["genus_or_deeper_at_confidence"] == 5 / 8  # genus, two species, two Bubbles


def test_evaluate_reweighted_to_a_uniform_mix(trained, run_copy, run_cli):
    """Weighed to a uniform mix, the fraction correct is the mean of the classes' fractions correct."""
    run = run_copy("classifier")
    result = evaluation.evaluate(run, trained.data, confidence=0.8, reweight="uniform", progress=False)
    per_class = result["per_class_at_confidence"]
    assert result["reweight"]["mix"] == "uniform" and result["reweight"]["classes"] == len(per_class)
    assert sum(c["images"] for c in per_class.values()) == result["images"]
    mean = sum(c["correct"] for c in per_class.values()) / len(per_class)
    assert result["correct_at_confidence"] == pytest.approx(mean)
    worst = result["worst_class_at_confidence"]
    assert worst["correct_upper_bound"] == pytest.approx(min(
        clopper_pearson_upper(round(c["correct"] * c["images"]), c["images"]) for c in per_class.values()))
    code, out, _ = run_cli("evaluate", run, trained.data, "--reweight", "uniform", "-c", "0.8")
    said = " ".join(out.split())  # rich wraps long lines
    assert code == 0 and f"worst class at confidence 0.8: {worst['name']}" in said
    assert "weighed to the class mix uniform" in said


def test_a_bad_reweight_file_is_one_line_before_scoring(trained, run_copy, run_cli, tmp_path):
    run = run_copy("classifier")
    mix = tmp_path / "mix.csv"
    mix.write_text("class,proportion\nnot-a-class,1\n")
    code, _, err = run_cli("evaluate", run, trained.data, "--reweight", mix)
    assert code == 2
    assert err.strip() == f"hier: error: {mix}: line 2: 'not-a-class' is not a node of the run's taxonomy " \
                          "(by id, name or lineage)"
    assert not (run / runs.EVALUATION).exists()


def test_the_worst_class_is_the_one_most_surely_short(five):
    """0 of 1 image right bounds the class's rate by 0.95 only; 7 of 20 by 0.57: the second is named."""
    per_class = {"a1": {"images": 1, "correct": 0.0, "mean_depth": 1.0},
                 "b": {"images": 20, "correct": 0.35, "mean_depth": 2.0}}
    worst = evaluation.worst_class(per_class, five)
    assert worst["id"] == "b" and worst["correct_upper_bound"] == pytest.approx(clopper_pearson_upper(7, 20))
    assert 0.55 < worst["correct_upper_bound"] < 0.6 and clopper_pearson_upper(0, 1) == pytest.approx(0.95)
