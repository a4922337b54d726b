"""A run's files are checked when read (issue 28, class 4): a damaged or older config.yaml, split.json,
evaluation.json or metrics.csv is one line naming the file; hier runs lists a damaged run as damaged; a
built-in run missing a file is written again; HIER_CACHE that is a file is one clear line."""

from __future__ import annotations

import json

import pytest

from hier.core.errors import InputError
from hier.runs import layout
from hier.runs.builtin import _whole


def edit_config(run, old: str, new: str) -> None:
    config = run / "config.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


@pytest.mark.parametrize("old, new, message", [
    ("head: classifier\n", "", "config.yaml: no 'head' (the run is damaged"),
    ("image_size: 32", "image_size: big", "config.yaml: 'image_size' must be int, got 'big'"),
    ("keep_size: false", "keep_size: 3", "config.yaml: 'keep_size' must be bool"),
    ("epochs: 1", "epochs: 1\nfuture_key: 1", "config.yaml: unknown config key 'future_key'"),
])
def test_a_damaged_config_is_one_line_naming_it_and_the_key(trained, run_copy, run_cli, tmp_path, old, new, message):
    run = run_copy()
    edit_config(run, old, new)
    image = next((trained.data / "test").rglob("*.png"))
    for args in (("predict", run, image, "-c", "0.5", "-o", tmp_path / "p.csv"), ("fit", "--resume", run)):
        code, _, err = run_cli(*args)
        assert code == 2 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p.csv").exists()


def test_an_older_config_without_a_key_that_has_a_default_takes_it(trained, run_copy, run_cli, tmp_path):
    run = run_copy()
    edit_config(run, "keep_size: false\n", "")  # a run written before keep_size existed
    assert layout.read_config(run)["keep_size"] is False
    image = next((trained.data / "test").rglob("*.png"))
    code, _, err = run_cli("predict", run, image, "-c", "0.5", "-o", tmp_path / "p.csv")
    assert code == 0, err


def test_an_older_config_keeps_what_fit_did_before_it_chose_views_and_stages_by_size(trained, run_copy):
    run = run_copy()
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text("".join(line + "\n" for line in text.splitlines()
                                             if not line.startswith(("views:", "train_stages:"))))
    config = layout.read_config(run)
    assert (config["views"], config["train_stages"]) == (1, 0)  # one view, the frozen backbone: as it trained


@pytest.mark.parametrize("name, text, message", [
    ("metrics.csv", "epoch,val_loss\n1,0.5\n2,", "metrics.csv: line 3: damaged"),
    ("metrics.csv", "epoch,val_loss\n1,abc\n", "metrics.csv: line 2: damaged"),
    ("split.json", '{"train": ["a.png"', "split.json: line 1: not valid JSON"),
    ("split.json", '{"train": "a.png"}', "split.json: expected an object of split name"),
    ("evaluation.json", '{"leaf_accuracy": "high"}', "evaluation.json: 'leaf_accuracy' must be a number"),
    ("evaluation.json", "[1, 2]", "evaluation.json: expected a JSON object"),
])
def test_damaged_run_files_are_named_when_read(run_copy, name, text, message):
    run = run_copy()
    (run / name).write_text(text)
    reader = {"metrics.csv": layout.read_metrics, "split.json": layout.read_split,
              "evaluation.json": layout.read_evaluation}[name]
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        reader(run)


def test_hier_runs_lists_a_damaged_run_as_damaged(run_copy, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    good = run_copy("classifier")
    bad = run_copy("spheremulti")
    (bad / "metrics.csv").write_text("epoch,val_loss\n1,x\n")
    edit_config(bad, "image_size: 32", "image_size: big")
    code, out, err = run_cli("runs", tmp_path, "--json")
    assert code == 0, err
    found = {entry["run"]: entry for entry in json.loads(out)}
    assert found[str(good)]["damaged"] is None and found[str(good)]["complete"]
    assert "config.yaml" in found[str(bad)]["damaged"] and not found[str(bad)]["complete"]


def test_a_builtin_run_missing_a_file_is_written_again(tmp_path, monkeypatch):
    from hier.runs import builtin

    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    written = []

    def fake_recipe(folder):  # the real one needs EfficientNet-Lite0's weights: the same files, small
        written.append(folder)
        for name in (layout.CONFIG, layout.TAXONOMY, layout.WEIGHTS):
            (folder / name).write_text("x")

    monkeypatch.setattr(builtin, "_imagenet_lite0", fake_recipe)
    target = builtin.builtin_run("imagenet-lite0")
    (target / layout.TAXONOMY).unlink()  # a cache cleaner took one file
    assert builtin.builtin_run("imagenet-lite0") == target and _whole(target) and len(written) == 2
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no staging left


def test_hier_cache_that_is_a_file_is_one_line(run_cli, tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("runs")
    assert code == 2 and "HIER_CACHE is" in err and "is a file, not a folder" in err and "Traceback" not in err, err
