"""Shared fixtures: the project's CLI run in-process, real data paths."""

from __future__ import annotations

import os
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
    from hier.engine.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, seed=0, images=300, size=32, unseen=2)
    return out
