"""A small synthetic benchmark (200 images, two held-out species) shared by the reader and benchmark tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hier.data.synth import synthesize


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize(out, seed=1, images=200, size=32, unseen=2, workers=1)
    return out
