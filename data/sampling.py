"""The long tail: each sample's draw weight for class-balanced sampling.

Plankton classes span four orders of magnitude (a detritus class with 10^5 images beside
species with 10). Targets are node indices, so a "class" here is whatever node a sample is
labelled with, at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_counts(targets: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Samples per class index, int64 [num_classes]."""
    return np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes)


def sample_weights(targets, num_classes: int, *, power: float = 1.0) -> np.ndarray:
    """Each sample's draw weight ``1 / n_class ** power``: 1 balances classes, 0.5 is square-root sampling."""
    targets = np.asarray(targets, dtype=np.int64)
    counts = class_counts(targets, num_classes).astype(np.float64)
    return 1.0 / counts[targets] ** power
