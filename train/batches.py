"""Batches of sample indices: global, seeded by (seed, epoch), and each process's share of them."""

from __future__ import annotations

import math

import torch

from hier.data.images import collate_skipping, loader_workers
from hier.train import distributed as dist


def epoch_batches(n: int, config: dict, epoch: int, weights: torch.Tensor | None) -> list[torch.Tensor]:
    """Global batches of sample indices for one epoch, the same on every rank and after a resume."""
    g = torch.Generator().manual_seed(config["seed"] * 100_003 + epoch)
    order = torch.multinomial(weights, n, replacement=True, generator=g) if weights is not None \
        else torch.randperm(n, generator=g)
    return list(order.split(config["batch_size"]))


def local_part(batch: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous share of a global batch."""
    world, rank = dist.world_size(), dist.rank()
    size = math.ceil(len(batch) / world)
    return batch[rank * size:(rank + 1) * size]


def balanced_weights(train_targets: torch.Tensor, config: dict, num_nodes: int) -> torch.Tensor | None:
    """Per-sample drawing weights that make classes equally frequent (``balanced_sampler``), else None."""
    if not config["balanced_sampler"]:
        return None
    from hier.data.sampling import sample_weights

    return torch.as_tensor(sample_weights(train_targets.numpy(), num_nodes), dtype=torch.double)


class Batches(torch.utils.data.Sampler):
    """Feeds a DataLoader this rank's share of each global batch."""

    def __init__(self, batches: list[torch.Tensor]):
        self.batches = batches

    def __iter__(self):
        for batch in self.batches:
            yield local_part(batch).tolist()

    def __len__(self):
        return len(self.batches)


def val_batches(split_data, config: dict, from_features: bool):
    """This rank's share of the validation data, re-iterable as (inputs, targets) batches.

    Images are read anew each epoch (memory stays flat); the loader has its own generator so that
    validation never draws from the global random state that a resumed run must replay.
    """
    if from_features:
        features, target = split_data
        share = torch.arange(dist.rank(), len(target), dist.world_size())
        return list(zip(features[share].split(config["batch_size"]), target[share].split(config["batch_size"])))
    share = list(range(dist.rank(), len(split_data), dist.world_size()))
    return torch.utils.data.DataLoader(torch.utils.data.Subset(split_data, share), batch_size=config["batch_size"],
                                       num_workers=loader_workers(config["workers"]), collate_fn=collate_skipping,
                                       generator=torch.Generator().manual_seed(0))
