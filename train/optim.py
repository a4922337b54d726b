"""The optimizer (its own learning rate for an unfrozen backbone) and the per-step learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from hier.runs.model import HierNet


def make_optimizer(model: HierNet, loss: nn.Module, config: dict) -> torch.optim.Optimizer:
    groups = [{"params": [p for p in [*model.embedding.parameters(), *model.head.parameters(),
                                      *loss.parameters()] if p.requires_grad], "lr": config["lr"]}]
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone:
        # the last stages of a pretrained backbone move ten times slower than the new head (docs/training.md)
        default = config["lr"] / 10 if config.get("train_stages") else config["lr"]
        groups.append({"params": backbone, "lr": config["backbone_lr"] or default})
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=config["lr"], momentum=config["momentum"],
                               weight_decay=config["weight_decay"])
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])


def make_schedule(optimizer: torch.optim.Optimizer, config: dict,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine, step or constant, stepped once per batch."""
    total, warmup = config["epochs"] * steps_per_epoch, config["warmup_epochs"] * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config["schedule"] == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if config["schedule"] == "step":
            return config["gamma"] ** ((step // steps_per_epoch) // config["step_size"])
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
