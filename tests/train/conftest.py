"""A training state on the five-node taxonomy (tests/conftest.py) with the smallest config."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_state(tmp_path, taxonomy, tiny_config):
    """A TrainState on 12 random feature vectors (the cached-features path), in a fresh run directory."""
    import torch

    from hier.core.progress import Progress
    from hier.runs.model import build_model
    from hier.train.batches import val_batches
    from hier.train.epoch import Step, TrainState
    from hier.train.optim import make_optimizer, make_schedule
    from hier.tree import TreeTensors

    torch.manual_seed(0)
    config = tiny_config("embedding_dropout=0.0")
    model, loss_fn = build_model(config, taxonomy)
    optimizer = make_optimizer(model, loss_fn, config)
    features, targets = torch.randn(12, 16), torch.tensor([2, 3, 4] * 4)
    step = Step(model, from_features=True, frozen_backbone=False)
    (tmp_path / "checkpoints").mkdir()
    return TrainState(config, tmp_path, taxonomy, torch.device("cpu"), model, loss_fn, optimizer,
                      make_schedule(optimizer, config, steps_per_epoch=3), (features, targets),
                      val_batches((features, targets), config, from_features=True), None, step, step,
                      TreeTensors(taxonomy), Progress(enabled=False))
