"""A five-node taxonomy and the smallest config that builds a model on it."""

from __future__ import annotations

import pytest

from hier.taxo import Taxonomy


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    """r ─┬─ a ─┬─ a1 / a2, and b under r."""
    return Taxonomy([{"id": i, "name": i, "parent": p}
                     for i, p in [("r", None), ("a", "r"), ("a1", "a"), ("a2", "a"), ("b", "r")]])


@pytest.fixture(scope="session")
def tiny_config():
    """A resolved config for a width-8 smallcnn at 32 px; keyword arguments are command-line flags."""
    from hier.train.config import resolve_config

    def make(*sets: str, **flags) -> dict:
        return resolve_config(flags={"head": "classifier", "backbone": "smallcnn", "image_size": 32, "batch_size": 4, "epochs": 2,
                                     "device": "cpu", **flags},
                              sets=["backbone_options.width=8", "backbone_options.depth=2", "embedding_size=16",
                                    *sets])
    return make


@pytest.fixture
def tiny_state(tmp_path, taxonomy, tiny_config):
    """A TrainState on 12 random feature vectors (the cached-features path), in a fresh run directory."""
    import torch

    from hier.core.progress import Progress
    from hier.heads.tree import TreeTensors
    from hier.train.batches import val_batches
    from hier.train.epoch import Step, TrainState
    from hier.train.model import build_model
    from hier.train.optim import make_optimizer, make_schedule

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
