"""One epoch: the Step module, a training pass and validation on cached features."""

import torch

from hier.train.epoch import Step, epoch_line, run_epoch, train_epoch, validate


def test_step_keeps_a_frozen_backbone_in_eval_mode(tiny_state):
    model = tiny_state.model
    frozen, trained = Step(model, False, frozen_backbone=True), Step(model, False, frozen_backbone=False)
    frozen.train()
    assert model.embedding.training and not model.backbone.training
    trained.train()
    assert model.backbone.training
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(frozen(x), Step(model, True, True)(model.backbone(x)))  # images and features agree


def test_training_lowers_the_loss_and_validation_reports_every_metric(tiny_state):
    first, seen = train_epoch(tiny_state, 0)
    assert seen == 12 and tiny_state.schedule.last_epoch == 3  # 12 samples in batches of 4, one step each
    for epoch in range(1, 6):
        last, _ = train_epoch(tiny_state, epoch)
    assert last < first
    metrics = validate(tiny_state)
    assert {"val_loss", "val_leaf_accuracy", "val_hierarchical_f1", "val_mistake_severity"} <= set(metrics)
    assert tiny_state.model.training  # validation puts the model back in training mode


def test_epoch_row_and_line(tiny_state):
    row = run_epoch(tiny_state, 0)
    assert row["epoch"] == 1 and row["images_per_s"] > 0 and "val_loss" in row
    assert row["lr"] == tiny_state.optimizer.param_groups[0]["lr"]
    line = epoch_line(row, 5)
    assert line.startswith("epoch 1/5  loss ") and "hF1" in line and line.endswith("img/s")
