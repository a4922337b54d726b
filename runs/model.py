"""Backbone -> embedding block -> head, built from a resolved config."""

from __future__ import annotations

import torch
from torch import nn

from hier.core.errors import InputError
from hier.data.images import IMAGENET_PREPROCESS
from hier.plugins import create_backbone, create_head, create_loss
from hier.taxo import Taxonomy


class Embedding(nn.Sequential):
    """The embedding block between backbone and head: Linear-ReLU-Linear-ReLU-Dropout."""

    def __init__(self, in_features: int, embedding_size: int, dropout: float):
        super().__init__(nn.Flatten(), nn.Linear(in_features, in_features), nn.ReLU(),
                         nn.Linear(in_features, embedding_size), nn.ReLU(), nn.Dropout(dropout))


class HierNet(nn.Module):
    """``embedding_size`` None: the head reads the backbone's features directly (a linear probe, or a
    pretrained classifier kept as it is)."""

    def __init__(self, backbone: nn.Module, num_features: int, head: nn.Module, embedding_size: int | None,
                 dropout: float):
        super().__init__()
        self.backbone = backbone
        self.embedding = nn.Flatten() if embedding_size is None else Embedding(num_features, embedding_size, dropout)
        self.head = head
        # Added to the (tempered) scores before the head's probabilities: the run's class prior (hier.runs.prior),
        # set when a run is loaded; None (no shift) while training and for a run fitted with the defaults.
        self.register_buffer("prior_shift", None, persistent=False)

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.from_features(self.backbone(images), targets)

    def from_features(self, features: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embedding(features), targets)

    def node_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        if self.prior_shift is not None:
            scores = scores + self.prior_shift
        return self.head.node_probabilities(scores)


def backbone_is_frozen(config: dict) -> bool:
    """Frozen when pretrained weights are loaded (the method's default), trained from scratch otherwise."""
    if config["freeze_backbone"] is not None:
        if config["freeze_backbone"] and config["weights"] in (None, "none"):
            raise InputError("--freeze-backbone with --weights none would train on random features; "
                             "give pretrained weights or drop --freeze-backbone", where="freeze_backbone")
        return bool(config["freeze_backbone"])
    return config["weights"] not in (None, "none")


PREPROCESS_KEYS = ("mean", "std", "interpolation")


def with_preprocessing(config: dict, backbone: nn.Module | None) -> dict:
    """The config with the backbone's own mean, std and interpolation where it leaves them open
    (ImageNet's, bilinear, for a backbone that names none)."""
    own = {**IMAGENET_PREPROCESS, **getattr(backbone, "preprocess", {})}
    return {**config, **{k: own[k] for k in PREPROCESS_KEYS if config.get(k) is None}}


def build_model(config: dict, taxonomy: Taxonomy, *, load_weights: bool = True) -> tuple[HierNet, nn.Module]:
    """The network and its loss. ``load_weights=False`` skips backbone weights (they come from a checkpoint)."""
    weights = config["weights"] if load_weights else None
    backbone, num_features = create_backbone(config["backbone"], weights=weights, **config["backbone_options"])
    head = create_head(config["head"], in_features=config["embedding_size"] or num_features, taxonomy=taxonomy,
                       **config["head_options"])
    loss = create_loss(config["loss"] or head.default_loss, taxonomy=taxonomy, **config["loss_options"])
    model = HierNet(backbone, num_features, head, config["embedding_size"], config["embedding_dropout"])
    if backbone_is_frozen(config):
        backbone.requires_grad_(False)
    if config["channels_last"]:
        backbone.to(memory_format=torch.channels_last)
    return model, loss
