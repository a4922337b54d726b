"""Small trained runs for the inference, calibration and evaluation tests, built once per test session.

Test files import this module by path (it is no conftest: pytest does not load it) under one module
name, so that the runs are built once whichever file asks first, and use its ``trained`` fixture: a
synthetic benchmark (train/val/test and unseen/) and two runs on it, one per score space (leaf, node).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Trained:
    data: Path  # the synthetic dataset (train/ val/ test/ unseen/)
    runs: dict[str, Path]  # head name -> run directory


@functools.cache
def build(root: Path) -> Trained:
    from hier.engine.config import resolve_config
    from hier.engine.fit import fit
    from hier.engine.synth import synthesize

    (root / "runs").mkdir(parents=True)
    data = root / "synth"
    synthesize(data, images=150, size=32, unseen=1, depth=3, workers=1)
    runs = {}
    for head in ("classifier", "spheremulti"):
        config = resolve_config(flags={"head": head, "epochs": 1, "image_size": 32, "batch_size": 32,
                                       "device": "cpu"},
                                sets=["backbone_options.width=8", "backbone_options.depth=3", "embedding_size=16"])
        runs[head] = fit(data, data / "taxonomy.json", config, root / "runs" / head)
    return Trained(data, runs)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return build(tmp_path_factory.getbasetemp() / "inference")

