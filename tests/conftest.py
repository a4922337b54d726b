"""Shared fixtures: the project's CLI run in-process, real data paths."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# Tests see only the built-in plugins unless a test asks for more (entry points of installed
# third-party packages would otherwise change what the registries list).
os.environ.setdefault("HIER_LOAD_PLUGINS", "")


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def run_cli(capfd):
    """Run ``hier ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from hier.cli.main import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """A small synthetic benchmark (real PNG files), made once per test session."""
    from hier.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, seed=0, images=300, size=32, unseen=2)
    return out


@dataclass(frozen=True)
class Trained:
    data: Path  # a synthetic dataset (train/ val/ test/ unseen/)
    runs: dict[str, Path]  # head name -> run directory, one head per score space (leaf, node)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    """Small trained runs for the inference, calibration and evaluation tests, built once per session."""
    from hier.data.synth import synthesize
    from hier.train.config import resolve_config
    from hier.train.fit import fit

    root = tmp_path_factory.mktemp("inference")
    data = root / "synth"
    synthesize(data, images=150, size=32, unseen=1, depth=3, workers=1)
    runs = {}
    for head in ("classifier", "spheremulti"):
        config = resolve_config(flags={"head": head, "backbone": "smallcnn", "epochs": 1, "image_size": 32,
                                       "batch_size": 32, "device": "cpu"},
                                sets=["backbone_options.width=8", "backbone_options.depth=3", "embedding_size=16"])
        runs[head] = fit(data, data / "taxonomy.json", config, root / "runs" / head)
    return Trained(data, runs)


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of a trained run that a test may write calibration or evaluation files into."""
    def copy(head: str = "classifier") -> Path:
        return Path(shutil.copytree(trained.runs[head], tmp_path / head))
    return copy


from hier.plugins.testing import hier_plugin  # noqa: E402, F401  (the fixture users get the same way)
