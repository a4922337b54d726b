"""The example third-party package, pip-installed for real, then used by the CLI like any plugin."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hier-plugin-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package pip-installed into a throw-away folder on PYTHONPATH: its entry points are found
    like any installed distribution's, and the environment running the tests is left as it was."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # builds write beside it
    # --no-deps: hier itself is already installed; --no-build-isolation: build with this environment's setuptools
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    env = {k: v for k, v in os.environ.items() if k != "HIER_LOAD_PLUGINS"}
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))}


def hier(env, *args):
    return subprocess.run([sys.executable, "-m", "hier.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_listed_by_plugins_heads_and_losses(installed):
    plugins = json.loads(hier(installed, "plugins", "--json").stdout)
    example = next(p for p in plugins if p["distribution"] == "hier-plugin-example")
    assert example["status"] == "ok" and example["hooks"] == ["register_heads", "register_losses"]
    heads = json.loads(hier(installed, "heads", "--json").stdout)
    assert {"name": "cosface", "plugin": "hier-plugin-example",
            "help": "Large-margin cosine head: s * (cos(theta) - m) on the true class"} in heads
    losses = json.loads(hier(installed, "losses", "--json").stdout)
    assert "label-smoothing" in [loss["name"] for loss in losses]


def test_fit_selects_the_plugin_head_and_loss(installed, synth_dataset, tmp_path):
    result = hier(installed, "fit", synth_dataset, "--taxonomy", synth_dataset / "taxonomy.json", "--head", "cosface",
                  "--loss", "label-smoothing", "--backbone", "smallcnn", "--epochs", "1", "--image-size", "32",
                  "--batch-size", "32",
                  "--set", "backbone_options.width=8", "--set", "backbone_options.depth=3", "-o", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "head: cosface" in config and "loss: label-smoothing" in config
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_hier_load_plugins_can_leave_it_out(installed):
    env = {**installed, "HIER_LOAD_PLUGINS": ""}
    heads = json.loads(hier(env, "heads", "--json").stdout)
    assert "cosface" not in [h["name"] for h in heads]
