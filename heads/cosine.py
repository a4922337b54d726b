"""Cosine heads: scaled cosines between normalised embeddings and one normalised centre per score column."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hier.core.errors import InputError, is_number

from .base import Head


def angular_margin(cos_theta: torch.Tensor, margin: float) -> torch.Tensor:
    """cos(theta + m), continued past theta = pi - m by cos(theta) - m sin(m).

    cos(theta + m) turns back up once theta + m passes pi, which would reward pushing an embedding
    away from its centre; the continuation keeps the logit falling with theta (the guard of the
    ArcFace reference code, also in the method notes).
    """
    cos_theta = cos_theta.to(torch.promote_types(cos_theta.dtype, torch.float32))  # half precision underflows here
    # The floor stops the gradient of sin(theta) = sqrt(1 - cos^2) where it is infinite, on a centre or opposite it.
    sin_theta = (1 - cos_theta.square()).clamp_min(torch.finfo(cos_theta.dtype).tiny).sqrt()
    shifted = cos_theta * math.cos(margin) - sin_theta * math.sin(margin)
    return torch.where(cos_theta > math.cos(math.pi - margin), shifted, cos_theta - margin * math.sin(margin))


class CosineHead(Head):
    """Scale s and margin m over the cosines to learned centres; subclasses say where the margin goes."""

    def __init__(self, *, in_features: int, taxonomy, scale: float, margin: float):
        super().__init__(taxonomy)
        if not (is_number(scale) and scale > 0):
            raise InputError(f"head {self.name!r}: scale must be a positive number, got {scale!r}")
        # Beyond pi/2 the continuation of cos(theta + m) past theta = pi - m would jump up and break monotonicity.
        if not (is_number(margin) and 0 <= margin <= math.pi / 2):
            raise InputError(f"head {self.name!r}: margin must be between 0 and pi/2, got {margin!r}")
        self.scale = scale
        self.margin = margin
        # Gaussian rows point in uniformly random directions once normalised.
        self.centres = nn.Parameter(torch.randn(self.tree.width(self.score_space), in_features))

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine between each embedding and each centre, [B, C]."""
        return F.linear(F.normalize(embeddings, dim=-1), F.normalize(self.centres, dim=-1))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}"
