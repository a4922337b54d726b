"""hier fit on real PNG files: run directory, checkpoints, feature cache, resume, two-process DDP."""

import csv
import os
import shutil
import subprocess
import sys

import pytest
import torch

from hier import runs
from hier.runs.config import resolve_config
from hier.taxo import InputError
from hier.train.fit import fit

TIMING = ("seconds", "images_per_s")


def small(**flags):
    sets = [f"{k}={v}" for k, v in flags.pop("sets", {}).items()]
    base = {"head": "classifier", "backbone": "smallcnn", "epochs": 2, "image_size": 32, "batch_size": 16}
    return resolve_config(flags={**base, **flags}, sets=["backbone_options.width=8", "backbone_options.depth=3",
                                                          "embedding_size=32", *sets])


def metric_rows(run_dir):
    with open(run_dir / runs.METRICS) as f:
        return [{k: float(v) for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def trained(synth_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fit") / "run"
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(), run_dir)
    return run_dir


def test_run_directory_contents(trained):
    for name in (runs.CONFIG, runs.TAXONOMY, runs.METRICS, runs.WEIGHTS, runs.LAST, runs.BEST):
        assert (trained / name).is_file(), name
    rows = metric_rows(trained)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_leaf_accuracy", "val_hierarchical_f1", "val_mistake_severity"} <= set(rows[0])
    last = torch.load(trained / runs.LAST, weights_only=True)  # plain types only
    assert last["epoch"] == 2 and last["head"] == "classifier" and len(last["history"]) == 2
    from safetensors import safe_open

    with safe_open(str(trained / runs.WEIGHTS), "pt") as f:
        assert f.metadata()["head"] == "classifier" and f.metadata()["backbone"] == "smallcnn"


def test_trained_model_loads_and_gives_consistent_probabilities(trained, synth_dataset):
    from hier.data.images import build_transform, load_image

    model, taxonomy, config = runs.load_trained(trained)
    image = next((synth_dataset / "test").rglob("*.png"))
    x = build_transform(config["image_size"], train=False)(load_image(image))[None]
    with torch.no_grad():
        p = model.node_probabilities(model(x))
    assert p.shape == (1, len(taxonomy))
    assert p[0, taxonomy.root] == pytest.approx(1.0)
    parent = torch.as_tensor(taxonomy.parent)
    has_parent = parent >= 0
    assert (p[0, has_parent] <= p[0, parent[has_parent]] + 1e-6).all()


def test_existing_run_dir_is_refused_and_resume_keeps_settings(trained, synth_dataset):
    with pytest.raises(InputError, match="already exists; continue it with --resume or replace it with --force"):
        fit(synth_dataset, synth_dataset / "taxonomy.json", small(), trained)
    changed = small(lr=0.5, batch_size=8)
    with pytest.raises(InputError, match="changed: batch_size, lr"):
        fit(synth_dataset, None, changed, trained, resume=True)


def test_resume_to_more_epochs_continues_from_the_checkpoint(trained, synth_dataset, tmp_path):
    run = tmp_path / "more"
    shutil.copytree(trained, run)
    fit(synth_dataset, None, small(epochs=3), run, resume=True)
    rows = metric_rows(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:2] == metric_rows(trained)


@pytest.fixture(scope="module")
def backbone_weights(tmp_path_factory):
    """A saved smallcnn: loading weights from a file freezes the backbone by default."""
    from hier.plugins import create_backbone

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "smallcnn.pth"
    torch.save(create_backbone("smallcnn", width=8, depth=3)[0].state_dict(), path)
    return str(path)


def test_feature_cache_trains_like_the_image_path(synth_dataset, backbone_weights, tmp_path):
    common = {"weights": backbone_weights, "sets": {"augment": "false"}}
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(**common), tmp_path / "cached")
    fit(synth_dataset, synth_dataset / "taxonomy.json",
        small(weights=backbone_weights, sets={"augment": "false", "feature_cache": "off"}), tmp_path / "images")
    cached, images = metric_rows(tmp_path / "cached"), metric_rows(tmp_path / "images")
    for a, b in zip(cached, images):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4), key
    fit(synth_dataset, synth_dataset / "taxonomy.json",
        small(weights=backbone_weights, sets={"augment": "false", "feature_cache": "file"}), tmp_path / "file")
    assert list((tmp_path / "file" / "cache").glob("features-train-*/*.pt"))  # kept in the run
    assert not list((tmp_path / "cached" / "cache").glob("features-*"))  # auto: removed when the run is done


def test_frozen_random_backbone_is_refused(synth_dataset, tmp_path):
    with pytest.raises(InputError, match="would train on random features"):
        fit(synth_dataset, synth_dataset / "taxonomy.json", small(freeze_backbone=True), tmp_path / "r")


def test_two_gloo_processes_match_one_process(synth_dataset, backbone_weights, tmp_path):
    args = [str(synth_dataset), "--taxonomy", str(synth_dataset / "taxonomy.json"), "--head", "arcface", "--backbone",
            "smallcnn",
            "--epochs", "2", "--image-size", "32", "--batch-size", "16", "--weights", backbone_weights,
            "--set", "augment=false", "--set", "embedding_dropout=0.0", "--set", "backbone_options.width=8",
            "--set", "backbone_options.depth=3", "--set", "embedding_size=32",
            # every training image in both: a sampler pads an odd count with a repeated image
            "--set", "calibration_fraction=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "hier.cli", "fit", *args, "-o", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "hier.cli", "fit", *args,
                          "-o", str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = metric_rows(tmp_path / "one"), metric_rows(tmp_path / "two")
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        for key in ra:
            assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-5), key


def test_out_of_gpu_memory_names_the_batch_size_to_try(synth_dataset, tmp_path, monkeypatch):
    # No GPU here: the out-of-memory error a CUDA device would raise is simulated in the training step.
    import hier.train.epoch as epoch_module
    from hier.taxo import HierError

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(epoch_module, "train_epoch", out_of_memory)
    with pytest.raises(HierError, match="out of GPU memory at batch size 16; try --batch-size 8"):
        fit(synth_dataset, synth_dataset / "taxonomy.json", small(), tmp_path / "oom")


def test_early_stopping_stops_when_the_best_metric_stalls(synth_dataset, tmp_path, monkeypatch):
    from hier.train import fit as fit_module

    real_record = fit_module._record
    monkeypatch.setattr(fit_module, "_record", lambda state, row: real_record(state, row) and False)  # never better
    run_dir = tmp_path / "run"
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(epochs=5, sets={"early_stopping": 2}), run_dir)
    assert [r["epoch"] for r in metric_rows(run_dir)] == [1, 2]


def test_no_backbone_flags_train_on_frozen_pretrained_lite0_offline(synth_dataset, tmp_path):
    """The method's default on a machine that has never been online: empty download caches, offline."""
    import yaml

    env = {**os.environ, "HIER_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf")}
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "hier.cli", "fit", str(synth_dataset), "--taxonomy",
                           str(synth_dataset / "taxonomy.json"), "--epochs", "2", "--image-size", "64", "-o",
                           str(run_dir)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((run_dir / runs.CONFIG).read_text())
    assert (config["backbone"], config["weights"], config["augment"]) == ("efficientnet_lite0", "DEFAULT", False)
    assert (config["mean"], config["std"], config["interpolation"]) == ([0.5] * 3, [0.5] * 3, "bicubic")
    from hier.train.features import use_feature_cache

    assert use_feature_cache(config)  # the trunk runs once; the last stages and the head train on its output
    assert config["train_stages"] == 2  # a small training split: the last two stages train (docs/training.md)
    model, _, _ = runs.load_trained(run_dir)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    from hier.backbones.lite import efficientnet_lite0

    imagenet = efficientnet_lite0("DEFAULT")[0].state_dict()
    trained = model.backbone.state_dict()
    moved = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("blocks.") else "")
             for k, v in imagenet.items() if v.is_floating_point() and not torch.equal(v, trained[k])}
    assert moved == {"blocks.5", "blocks.6", "conv_head", "bn2"}  # the stem and stages 0-4 are ImageNet's
    assert all(torch.equal(v, trained[k]) for k, v in imagenet.items() if "running" in k)  # statistics kept
    assert not list((tmp_path / "torch").glob("**/*.pth")) and not (tmp_path / "hf").exists()


def test_force_refit_draws_its_own_calibration_part_and_saves_it(synth_dataset, tmp_path):
    """--force over an earlier run: the new run's parts come from its own seed, not the old split.json (which
    the replaced folder takes with it), and its split.json is written again."""
    import json

    run_dir = tmp_path / "run"
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(epochs=1, sets={"seed": 1}), run_dir)
    first = json.loads((run_dir / runs.SPLIT).read_text())["calib"]
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(epochs=1, sets={"seed": 2}), run_dir, force=True)
    again = json.loads((run_dir / runs.SPLIT).read_text())["calib"]
    assert again and set(again) != set(first)


def test_a_logit_adjusted_run_keeps_its_counts_resumes_and_answers_for_its_prior(synth_dataset, tmp_path):
    """long_tail logit_adjust, prior uniform: the raw scores are balanced, so the uniform prior is the same log
    share added to every leaf (the softmax unchanged); the wrapped loss's state survives a resume."""
    import json
    import math

    run = tmp_path / "adjusted"
    adjusted = {"long_tail": "logit_adjust", "prior": "uniform"}
    fit(synth_dataset, synth_dataset / "taxonomy.json", small(epochs=1, sets=adjusted), run)
    counts = json.loads((run / "prior.json").read_text())["train_counts"]
    assert 0 < sum(counts.values()) <= len(list((synth_dataset / "train").rglob("*.png")))
    model, taxonomy, _ = runs.load_trained(run)
    leaves = len(taxonomy.leaves)
    torch.testing.assert_close(model.prior_shift, torch.full((leaves,), math.log(1 / leaves)))
    fit(synth_dataset, None, small(epochs=2, sets=adjusted), run, resume=True)
    assert [r["epoch"] for r in metric_rows(run)] == [1, 2]


def test_views_and_train_stages_by_default_follow_the_size_of_the_training_split():
    """Up to SMALL_TRAINING_SPLIT images: 8 views and the last 2 stages of a frozen EfficientNet; above: one view,
    the frozen features; a value set is kept at any size; a backbone that cannot take it is refused."""
    from hier.backbones.lite import efficientnet_lite0
    from hier.backbones.plugin import small_cnn
    from hier.train.fit import SMALL_TRAINING_SPLIT, size_defaults

    lite0 = efficientnet_lite0()[0]

    def chosen(config, backbone, n):
        resolved = size_defaults(config, backbone, n)
        return resolved["views"], resolved["train_stages"]

    frozen = resolve_config(flags={"backbone": "efficientnet_lite0"})
    assert (frozen["views"], frozen["train_stages"]) == (None, None)
    assert chosen(frozen, lite0, SMALL_TRAINING_SPLIT) == (8, 2)
    assert chosen(frozen, lite0, SMALL_TRAINING_SPLIT + 1) == (1, 0)  # at scale: one view, the frozen features
    assert chosen({**frozen, "train_stages": 3, "views": 8}, lite0, 10**6) == (8, 3)  # as set, whatever the size
    whole = resolve_config(flags={"backbone": "efficientnet_lite0"}, sets=["weights=none"])
    assert chosen(whole, lite0, 100) == (8, 0)  # a backbone trained whole has no last stages of its own
    with pytest.raises(InputError, match="frozen backbone"):
        size_defaults({**whole, "train_stages": 1}, lite0, 100)
    cnn = resolve_config(flags={"backbone": "smallcnn"}, sets=["weights=some.pt"])
    assert chosen(cnn, small_cnn()[0], 100) == (8, 0)
    with pytest.raises(InputError, match="only an EfficientNet"):
        size_defaults({**cnn, "train_stages": 1}, small_cnn()[0], 100)


def test_a_run_training_the_last_stages_caches_the_trunk_and_resumes_with_them(synth_dataset, tmp_path):
    """The cache holds the trunk's output per dihedral view (not the pooled features); --resume with the default
    (None) keeps the number the run recorded, and the resumed epochs train the same stages."""
    run_dir = tmp_path / "run"
    config = resolve_config(flags={"epochs": 1, "image_size": 64}, sets=["feature_cache=file"])
    fit(synth_dataset, synth_dataset / "taxonomy.json", config, run_dir)
    chunk = torch.load(next((run_dir / "cache").glob("features-train-v8-*/*.pt")), weights_only=True)
    assert chunk["features"].shape[1:] == (8, 112, 4, 4)  # Lite0's stage-5 input at 64 px, 8 views
    def last(key):  # the last epoch's weights (the run's final ones are its best epoch's)
        return runs.load_checkpoint(run_dir / runs.LAST)["model"][f"backbone.{key}"]

    first = {k: last(k) for k in ("blocks.6.0.conv_pw.weight", "blocks.4.0.conv_pw.weight")}
    fit(synth_dataset, None, {**config, "epochs": 2}, run_dir, resume=True)
    assert [r["epoch"] for r in metric_rows(run_dir)] == [1, 2]
    assert not torch.equal(first["blocks.6.0.conv_pw.weight"], last("blocks.6.0.conv_pw.weight"))
    assert torch.equal(first["blocks.4.0.conv_pw.weight"], last("blocks.4.0.conv_pw.weight"))
