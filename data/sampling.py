"""The long tail: class weights for the loss and a class-balanced sampler.

Plankton classes span four orders of magnitude (a detritus class with 10^5 images beside
species with 10). Targets are node indices, so a "class" here is whatever node a sample is
labelled with, at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def class_counts(targets: Sequence[int] | np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Samples per class index, int64 [num_classes]."""
    return np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes)


def effective_number(counts: np.ndarray, beta: float) -> np.ndarray:
    """``(1 - beta^n) / (1 - beta)`` (Cui et al., 2019): 1 at beta = 0, n in the limit beta -> 1."""
    counts = np.asarray(counts, dtype=np.float64)
    if beta >= 1.0:
        return counts
    return -np.expm1(counts * np.log(beta)) / (1.0 - beta) if beta > 0 else np.minimum(counts, 1.0)


def class_weights(targets, num_classes: int, *, beta: float = 0.999) -> torch.Tensor:
    """Per-class loss weights, float32 [num_classes], inversely proportional to the effective number.

    ``beta = 1`` gives inverse frequency, ``beta = 0`` equal weights; the default 0.999 lets
    weights grow like 1/n up to about a thousand images and flatten beyond, so a class of
    10^5 is not weighted 10^4 times less than one of 10. Weights are scaled so that their
    mean over the samples is 1 (the loss keeps its scale); classes without samples get 0.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    counts = class_counts(targets, num_classes)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = 1.0 / effective_number(counts[present], beta)
    weights *= counts.sum() / (counts * weights).sum()
    return torch.as_tensor(weights, dtype=torch.float32)


def sample_weights(targets, num_classes: int, *, power: float = 1.0) -> np.ndarray:
    """Each sample's draw weight ``1 / n_class ** power``: 1 balances classes, 0.5 is square-root sampling."""
    targets = np.asarray(targets, dtype=np.int64)
    counts = class_counts(targets, num_classes).astype(np.float64)
    return 1.0 / counts[targets] ** power


def balanced_sampler(targets, num_classes: int, *, power: float = 1.0, num_samples: int | None = None,
                     seed: int = 0) -> WeightedRandomSampler:
    """Draws (with replacement) ``num_samples`` indices per epoch (default: one epoch's worth).

    With ``power = 1`` every class is drawn equally often; seeded, so a run repeats its draws.
    """
    weights = sample_weights(targets, num_classes, power=power)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples or len(weights),
                                 replacement=True, generator=generator)
