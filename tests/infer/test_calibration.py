"""The temperature fit, the threshold table's guarantee, the calibration file and the answer rule it gives."""

import csv
import json
from pathlib import Path

import pytest
import torch

from hier import runs
from hier.infer import answer
from hier.infer import calibration as cal
from hier.infer.curve import at_confidence, operating_curve
from hier.infer.predict import predict
from hier.metrics.correctness import is_correct
from hier.runs import calibration as calibration_file
from hier.taxo import InputError, Taxonomy
from hier.tree import TreeTensors

ROOT, A, C, A1, A2, X, Y = range(7)
LEAVES = torch.tensor([C, A1, X, Y])


@pytest.fixture(scope="module")
def taxonomy():
    return Taxonomy([{"id": "root", "parent": None}, {"id": "A", "parent": "root"}, {"id": "c", "parent": "root"},
                     {"id": "a1", "parent": "A"}, {"id": "a2", "parent": "A"}, {"id": "x", "parent": "a2"},
                     {"id": "y", "parent": "a2"}])


# ---- temperature --------------------------------------------------------------------------------


def test_fit_temperature_recovers_the_scale_of_overconfident_scores(taxonomy):
    g = torch.Generator().manual_seed(1)
    true_logits = torch.randn(4000, 4, generator=g) * 2
    leaf = torch.multinomial(true_logits.softmax(-1), 1, generator=g)[:, 0]
    targets = LEAVES[leaf]
    # labels that stop at a2 leave x and y unknown: the fit must still find the same temperature
    stops = (torch.rand(4000, generator=g) < 0.3) & ((targets == X) | (targets == Y))
    targets = torch.where(stops, A2, targets)
    head = TreeTensors(taxonomy)
    temperature, before, after = cal.fit_temperature(2.5 * true_logits, targets,
                                                     lambda s: head.sum_up(s.softmax(-1)), taxonomy)
    assert temperature == pytest.approx(2.5, rel=0.08)
    assert after < before


# ---- thresholds and their guarantee -------------------------------------------------------------


def draw(n: int, generator: torch.Generator, sharpen: float = 3.0):
    """Samples whose true leaf follows a known distribution, and a model that is overconfident about it
    (the distribution raised to a power and renormalised), as node probabilities."""
    truth = torch.distributions.Dirichlet(torch.full((4,), 0.7)).sample((n,))
    leaf = torch.multinomial(truth, 1, generator=generator)[:, 0]
    model = truth ** sharpen
    model = model / model.sum(-1, keepdim=True)
    probs = torch.zeros(n, 7)
    probs[:, LEAVES] = model
    probs[:, A2] = probs[:, X] + probs[:, Y]
    probs[:, A] = probs[:, A1] + probs[:, A2]
    probs[:, ROOT] = 1
    return probs, LEAVES[leaf]


def true_correct(probs: torch.Tensor, targets: torch.Tensor, tree: TreeTensors, threshold: float) -> float:
    return at_confidence(probs, targets, tree, threshold)["correct"]


def test_uncalibrated_thresholds_break_the_promise(taxonomy):
    """The distortion is strong enough that threshold = confidence is wrong more often than promised."""
    torch.manual_seed(0)
    tree = TreeTensors(taxonomy)
    probs, targets = draw(50_000, torch.Generator().manual_seed(0))
    assert true_correct(probs, targets, tree, 0.9) < 0.87


def test_threshold_table_keeps_its_promise_on_new_data(taxonomy):
    torch.manual_seed(0)
    tree = TreeTensors(taxonomy)
    levels, draws = (0.8, 0.9, 0.95), 12
    chosen = []  # (level, threshold) of every draw's table
    for seed in range(draws):
        probs, targets = draw(1000, torch.Generator().manual_seed(100 + seed))
        for e in cal.threshold_table(probs, targets, tree, levels=levels):
            assert e["threshold"] is not None
            assert e["lower_bound"] >= e["level"] and e["correct"] >= e["lower_bound"]
            chosen.append((e["level"], e["threshold"]))
    test_probs, test_targets = draw(20_000, torch.Generator().manual_seed(1))
    on_test = operating_curve(test_probs, test_targets, tree, torch.tensor([t for _, t in chosen]))["correct"]
    misses = {level: sum(c < level for (lv, _), c in zip(chosen, on_test) if lv == level) for level in levels}
    # each entry may fail with probability at most 0.05: more than 3 failures in 12 draws has odds of 0.002
    assert all(count <= 3 for count in misses.values()), misses


def test_threshold_table_is_monotone_and_uncertifiable_levels_have_none(taxonomy):
    torch.manual_seed(0)
    tree = TreeTensors(taxonomy)
    probs, targets = draw(40, torch.Generator().manual_seed(3))
    table = cal.threshold_table(probs, targets, tree)
    assert [e["level"] for e in table] == list(cal.LEVELS)
    certified = [e for e in table if e["threshold"] is not None]
    assert [e["threshold"] for e in certified] == sorted(e["threshold"] for e in certified)
    # 40 answers all correct bound the rate by 0.05 ** (1/40) = 0.928 at most
    assert all(e["threshold"] is None for e in table if e["level"] > 0.93)


# ---- the calibration file and the answer rule ---------------------------------------------------


@pytest.fixture
def run_dir(tmp_path, taxonomy):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("head: classifier\n")
    taxonomy.save(run / "taxonomy.json")
    (run / "model.safetensors").write_bytes(b"weights")
    return run


def stored(run_dir, table) -> calibration_file.Calibration:
    calibration = calibration_file.Calibration(temperature=1.7, delta=0.05, n=500, table=table,
                                            weights_sha256=calibration_file.weights_digest(run_dir), split="val")
    calibration.save(run_dir)
    return calibration


def entry(level, threshold):
    return {"level": level, "threshold": threshold, "correct": None, "lower_bound": None, "mean_depth": None,
            "information_recall": None}


def test_answer_rule_maps_a_confidence_to_the_smallest_level_at_or_above_it(run_dir):
    stored(run_dir, [entry(0.89, 0.61), entry(0.9, 0.7), entry(0.91, 0.75), entry(0.92, None)])
    assert json.loads((run_dir / "calibration.json").read_text())["format"] == "hier-calibration"
    d = answer.answer_rule(run_dir, 0.9)
    assert (d.calibrated, d.level, d.threshold, d.temperature) == (True, 0.9, 0.7, 1.7)
    assert answer.answer_rule(run_dir, 0.905).threshold == 0.75  # conservative: the next level up
    assert "calibration.json" in d.describe() and "0.700" in d.describe()
    with pytest.raises(InputError, match="cannot certify confidence 0.92"):
        answer.answer_rule(run_dir, 0.915)
    with pytest.raises(InputError, match="stops at confidence 0.92"):
        answer.answer_rule(run_dir, 0.95)
    plain = answer.answer_rule(run_dir, 0.9, use_calibration=False)
    assert (plain.calibrated, plain.threshold, plain.temperature) == (False, 0.9, 1.0)


def test_answer_rule_without_calibration_and_bad_confidences(run_dir):
    d = answer.answer_rule(run_dir, 0.8)
    assert (d.calibrated, d.threshold, d.temperature) == (False, 0.8, 1.0) and "uncalibrated" in d.describe()
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(InputError, match="--confidence must be in"):
            answer.answer_rule(run_dir, bad)
    assert answer.answer_rule(run_dir, 1.0).threshold == 1.0


def test_calibration_of_other_weights_is_refused(run_dir):
    stored(run_dir, [entry(0.9, 0.7)])
    (run_dir / "model.safetensors").write_bytes(b"retrained")
    with pytest.raises(InputError, match="other weights"):
        answer.answer_rule(run_dir, 0.9)


def test_unreadable_calibration_file(run_dir):
    (run_dir / "calibration.json").write_text("{}")
    with pytest.raises(InputError, match="not a readable calibration file"):
        answer.answer_rule(run_dir, 0.9)


# ---- end to end ---------------------------------------------------------------------------------


def test_calibrate_then_predict_uses_the_table(trained, run_copy, tmp_path):
    run = run_copy("classifier")
    calibration = cal.calibrate(run, trained.data, progress=False)
    # thresholds on the part fit held out of the training images; the temperature on val, disjoint from it
    held_out = [Path(p) for p in json.loads((run / runs.SPLIT).read_text())["calib"]]
    assert held_out and all(p.parent.parent.name == "train" for p in held_out)
    val = held_out
    assert calibration.n == len(val) and calibration.split == "calib" and len(calibration.table) == 50
    assert calibration.temperature_split == "val"
    assert calibration.temperature_n == len(list((trained.data / "val").rglob("*.png")))
    assert calibration.temperature > 0 and calibration.loss_after <= calibration.loss_before
    stored = json.loads((run / "calibration.json").read_text())
    assert stored["table"] == calibration.table and stored["delta"] == 0.05
    level = calibration.highest_certified
    assert level is not None  # the threshold 1.000 answers the root: always correct
    rule = answer.answer_rule(run, level)
    assert rule.calibrated and rule.threshold == calibration.entry(level)["threshold"]
    out = tmp_path / "p.csv"
    predict(run, val, rule, out=out, progress=False)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    taxonomy = runs.load_trained(run)[1]
    targets = [taxonomy.index(p.parent.name) for p in val]
    answered = [taxonomy.index(r["node_id"]) for r in rows]
    tree = TreeTensors(taxonomy)
    correct = is_correct(torch.tensor(answered), torch.tensor(targets), tree).float().mean().item()
    assert correct == pytest.approx(calibration.entry(level)["correct"])  # the same split, the same answers


# ---- how many calibration images a level needs ----------------------------------------------------


@pytest.mark.parametrize("level, needed", [(0.9, 29), (0.95, 59), (0.99, 299)])
def test_images_needed_to_certify_a_level(level, needed):
    from hier.metrics.bounds import minimum_correct

    assert cal.images_needed(level) == needed
    assert minimum_correct(needed, level) == needed  # all of them right: just enough
    assert minimum_correct(needed - 1, level) == needed  # one image fewer: not even all right is enough


def test_a_run_without_a_calibration_part_falls_back_to_val_with_a_warning(trained, run_copy):
    run = run_copy("classifier")
    (run / runs.SPLIT).unlink()  # as fit wrote runs before the calibration part existed
    with pytest.warns(UserWarning, match="no calibration part.*promise is weaker"):
        calibration = cal.calibrate(run, trained.data, progress=False)
    assert calibration.split == "val (half)" and calibration.temperature_split == "val (other half)"
    val = len(list((trained.data / "val").rglob("*.png")))
    assert calibration.n + calibration.temperature_n == val


def test_the_docs_table_of_images_needed_is_the_computed_one():
    docs = (Path(__file__).parents[2] / "docs" / "confidence.md").read_text()
    levels = next(line for line in docs.splitlines() if line.strip().startswith("| level |"))
    needed = next(line for line in docs.splitlines() if "fewest calibration images" in line)
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")][1:]  # noqa: E731
    assert [int(n) for n in cells(needed)] == [cal.images_needed(float(c)) for c in cells(levels)]
