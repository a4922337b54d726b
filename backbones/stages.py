"""A backbone cut before its last stages: the trunk stays frozen and runs once (its output cached, as the features
are), the tail trains on CPU from that cache (``train_stages``, docs/training.md).

EfficientNet (Lite0/1/2 and timm's ``efficientnet_*``/``tf_efficientnet_*``) is a stem, seven stages of inverted
residual blocks, and a 1x1 head convolution before the pool. Cut before the last two stages at 160 px, the trunk's
output is 112 x 10 x 10 per image, and training them with the head costs about 4.5 ms an image on 2 cores
(docs/training.md; what it gains: docs/results.md, "Deep and right").
"""

from __future__ import annotations

from torch import nn

from hier.core.errors import InputError


class Tail(nn.Module):
    """The backbone's last ``stages`` stages, head convolution and pool: the trunk's output -> features [B, F]."""

    def __init__(self, backbone: nn.Module, stages: int):
        super().__init__()
        self.blocks = backbone.blocks[len(backbone.blocks) - stages:]
        self.conv_head, self.bn2, self.global_pool = backbone.conv_head, backbone.bn2, backbone.global_pool

    def forward(self, x):
        return self.global_pool(self.bn2(self.conv_head(self.blocks(x))))


def stage_count(backbone: nn.Module) -> int:
    """How many stages the backbone can be cut before (0: it cannot be cut)."""
    import timm.models.efficientnet as efficientnet

    return len(backbone.blocks) if isinstance(backbone, efficientnet.EfficientNet) else 0


def split_stages(backbone: nn.Module, stages: int) -> tuple[nn.Module, Tail]:
    """(trunk, tail): images -> the input of the last ``stages`` stages -> features. Both hold the backbone's own
    modules, so training the tail trains the backbone, and its weights are saved with it."""
    count = stage_count(backbone)
    if not 1 <= stages < count:
        raise InputError(f"train_stages must be from 1 to {count - 1} for this backbone (got {stages})" if count
                         else f"train_stages {stages}: only an EfficientNet backbone (efficientnet_lite0/1/2, "
                         "timm:efficientnet_*) can be cut into stages", where="train_stages")
    trunk = nn.Sequential(backbone.conv_stem, backbone.bn1, *backbone.blocks[:count - stages])
    return trunk, Tail(backbone, stages)
