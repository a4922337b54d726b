"""The run directory: creation and refusal, config and metrics files, checkpoints, loading a trained run."""

import pickle
from pathlib import Path

import pytest
import torch

from hier import runs
from hier.runs.model import build_model
from hier.taxo import InputError


def test_prepare_run_dir_creates_and_refuses_to_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()  # an empty folder is taken as it is
    assert runs.prepare_run_dir(run, force=False) == run
    assert (run / "checkpoints").is_dir()
    with pytest.raises(InputError, match="the run directory already exists; continue it with --resume"):
        runs.prepare_run_dir(run, force=False)
    (run / runs.METRICS).write_text("epoch\n1\n")
    runs.prepare_run_dir(run, force=True)
    assert not (run / runs.METRICS).exists() and (run / "checkpoints").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        runs.prepare_run_dir(tmp_path / "file", force=True)


def test_config_round_trip(tmp_path, tiny_config):
    config = tiny_config("head_options.scale=20", lr=0.01)
    runs.write_config(tmp_path, config)
    assert runs.read_config(tmp_path) == config


def test_metrics_round_trip(tmp_path):
    assert runs.read_metrics(tmp_path) == []
    runs.write_metrics(tmp_path, [])
    assert not (tmp_path / runs.METRICS).exists()
    rows = [{"epoch": 1, "train_loss": 1.5, "val_loss": 0.25}, {"epoch": 2, "train_loss": 0.75, "val_loss": 0.125}]
    runs.write_metrics(tmp_path, rows)
    back = runs.read_metrics(tmp_path)
    assert back == rows and isinstance(back[0]["epoch"], int)


def test_checkpoint_round_trip_of_plain_types(tmp_path):
    state = {"epoch": 3, "model": {"w": torch.arange(6.0).reshape(2, 3)}, "history": [{"loss": 0.5}],
             "best": None, "ids": ["a", "b"]}
    runs.save_checkpoint(tmp_path / "c.pt", state)
    back = runs.load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["model"]["w"], state["model"]["w"])
    assert {k: v for k, v in back.items() if k != "model"} == {k: v for k, v in state.items() if k != "model"}
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no staging file left


def test_unreadable_checkpoints_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no checkpoint here"):
        runs.load_checkpoint(tmp_path / "none.pt")
    good = tmp_path / "good.pt"
    runs.save_checkpoint(good, {"w": torch.zeros(100)})
    for name, data, error in [("empty.pt", b"", "EOFError"), ("cut.pt", good.read_bytes()[:200], "RuntimeError")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=f"{name}: not a readable checkpoint \\({error}"):
            runs.load_checkpoint(tmp_path / name)
    torch.save({"path": Path("x")}, tmp_path / "object.pt")  # an object beyond plain types
    with pytest.raises(InputError, match="object.pt: refused: the checkpoint holds objects beyond plain types"):
        runs.load_checkpoint(tmp_path / "object.pt")


@pytest.fixture
def run(tmp_path, taxonomy, tiny_config):
    """A run directory holding config, taxonomy and final weights of an untrained model."""
    config = tiny_config()
    (tmp_path / "checkpoints").mkdir()
    runs.write_config(tmp_path, config)
    taxonomy.save(tmp_path / runs.TAXONOMY)
    torch.manual_seed(0)
    model, _ = build_model(config, taxonomy)
    runs.save_weights(tmp_path, model, config)
    return tmp_path, model


def test_load_trained_gives_the_saved_weights_in_eval_mode(run, taxonomy):
    run_dir, saved = run
    model, loaded_taxonomy, config = runs.load_trained(run_dir)
    assert not model.training and config["head"] == "classifier" and loaded_taxonomy.ids == taxonomy.ids
    for key, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_load_trained_falls_back_to_the_last_checkpoint(run):
    run_dir, saved = run
    (run_dir / runs.WEIGHTS).unlink()
    with pytest.raises(InputError, match="last.pt: no checkpoint here"):
        runs.load_trained(run_dir)
    runs.save_checkpoint(run_dir / runs.LAST, {"model": saved.state_dict()})
    model, _, _ = runs.load_trained(run_dir)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.state_dict().items())


def test_load_trained_errors(run, tmp_path, tiny_config, taxonomy):
    run_dir, saved = run
    with pytest.raises(InputError, match="no such run directory"):
        runs.load_trained(tmp_path / "nowhere")
    (run_dir / runs.TAXONOMY).rename(run_dir / "elsewhere.json")
    with pytest.raises(InputError, match="not a hier run directory \\(no taxonomy.json\\)"):
        runs.load_trained(run_dir)
    (run_dir / "elsewhere.json").rename(run_dir / runs.TAXONOMY)

    other, _ = build_model(tiny_config("embedding_size=8"), taxonomy)
    runs.save_weights(run_dir, other, tiny_config())
    with pytest.raises(InputError, match="do not fit this run's head, backbone and taxonomy \\(shape of embedding"):
        runs.load_trained(run_dir)
    state = {**saved.state_dict(), "extra.weight": torch.zeros(1)}
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(run_dir / runs.WEIGHTS))
    with pytest.raises(InputError, match="do not fit .* \\(unexpected extra.weight\\)"):
        runs.load_trained(run_dir)
    (run_dir / runs.WEIGHTS).write_bytes(pickle.dumps("not safetensors"))
    with pytest.raises(InputError, match="model.safetensors: cannot read weights"):
        runs.load_trained(run_dir)
