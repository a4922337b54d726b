"""One epoch: the training state, a pass over this rank's share of the batches, and validation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hier.backbones.device import as_input, autocast
from hier.core.interrupts import check_interrupt
from hier.core.progress import Progress
from hier.data.images import ImageDataset, collate_skipping, loader_workers
from hier.metrics import hierarchical as metrics
from hier.runs.model import HierNet
from hier.taxo import Taxonomy
from hier.train import distributed as dist
from hier.train.batches import Batches, epoch_batches, local_part
from hier.tree import TreeTensors


class Step(nn.Module):
    """What DDP wraps: the trainable path, from features (cache) or from images; ``tail``: the backbone's last
    stages, between the cached trunk output and the embedding (``train_stages``)."""

    def __init__(self, model: HierNet, from_features: bool, frozen_backbone: bool, tail: nn.Module | None = None):
        super().__init__()
        self.model, self.from_features, self.frozen_backbone = model, from_features, frozen_backbone
        self.tail = tail
        self.cached_ndim = 2 if tail is None else 4  # [B, F] features, or [B, C, H, W] trunk outputs

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_backbone:  # a frozen backbone keeps its batch-norm statistics: the cache sees the same
            self.model.backbone.eval()
        return self

    def forward(self, x, targets=None):
        if not self.from_features:
            return self.model(x, targets)
        if x.ndim > self.cached_ndim:  # [B, views, ...]: a dihedral view per image, drawn anew each step
            x = x[torch.arange(len(x)), torch.randint(x.shape[1], (len(x),), device=x.device)] if self.training \
                else x[:, 0]
        return self.model.from_features(x if self.tail is None else self.tail(x), targets)


@dataclass
class TrainState:
    """What a run trains with, and how far it got: all that ``checkpoints/last.pt`` saves and restores."""

    config: dict
    run_dir: Path
    taxonomy: Taxonomy
    device: torch.device
    model: HierNet
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    train_data: ImageDataset | tuple[torch.Tensor, torch.Tensor]  # images, or cached (features, targets)
    val_data: object  # re-iterable (inputs, targets) batches: this rank's share
    weights: torch.Tensor | None  # per-sample drawing weights of the balanced sampler
    step: nn.Module  # Step, compiled when asked
    trainer: nn.Module  # step, wrapped in DDP under torchrun
    tree: TreeTensors
    progress: Progress
    history: list[dict] = field(default_factory=list)  # one metrics row per finished epoch
    best: dict | None = None  # {"metric", "value", "epoch"}
    epoch: int = 0  # finished epochs

    @property
    def from_features(self) -> bool:
        return isinstance(self.train_data, tuple)

    @property
    def n_train(self) -> int:
        return len(self.train_data[1]) if self.from_features else len(self.train_data)


def run_epoch(state: TrainState, epoch: int) -> dict:
    """Train one epoch and validate: the epoch's metrics row (its validation part on rank 0 only)."""
    t0 = time.perf_counter()
    train_loss, seen = train_epoch(state, epoch)
    train_seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "train_loss": train_loss, **validate(state),
            "lr": state.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
            "images_per_s": seen / max(train_seconds, 1e-9)}


def train_epoch(state: TrainState, epoch: int) -> tuple[float, int]:
    """One pass over this rank's share of the epoch's batches: (mean loss, images seen) over all ranks."""
    config, device = state.config, state.device
    batches = epoch_batches(state.n_train, config, epoch, state.weights)
    state.trainer.train()
    task = state.progress.add(f"epoch {epoch + 1}", total=len(batches))
    total, seen = torch.zeros((), device=device), 0
    world = dist.world_size()
    for global_batch, batch in zip(batches, _train_loader(state, batches, epoch)):
        check_interrupt()
        if batch is None:
            state.progress.advance(task)
            continue
        x, t = as_input(batch[0], device, config), batch[1].to(device, non_blocking=True)
        with autocast(device, config):
            scores = state.trainer(x, t)
        # DDP averages gradients over ranks; weighting by this rank's share makes the step equal
        # to one process over the whole global batch, even when the shares differ in size.
        loss = state.loss_fn(scores.float(), t) * (len(t) * world / len(global_batch))
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config["grad_clip"]:
            nn.utils.clip_grad_norm_([p for g in state.optimizer.param_groups for p in g["params"]],
                                     config["grad_clip"])
        state.optimizer.step()
        state.schedule.step()
        total += loss.detach() * len(t) / world
        seen += len(t)
        state.progress.advance(task, loss=loss.detach(), images=len(t))
    state.progress.done(task)
    if not state.from_features:
        state.train_data.warn_skipped()
    total, seen_all = dist.all_reduce_sum(total), dist.all_reduce_sum(torch.tensor(float(seen), device=device))
    return (total * world / seen_all.clamp(min=1)).item(), int(seen_all.item())


def _train_loader(state: TrainState, batches: list[torch.Tensor], epoch: int):
    """This rank's share of each batch: slices of the cached features, or images read by a DataLoader."""
    if state.from_features:
        features, target = state.train_data
        return ((features[i], target[i]) for i in (local_part(b) for b in batches))
    config = state.config
    return torch.utils.data.DataLoader(state.train_data, batch_sampler=Batches(batches),
                                       num_workers=loader_workers(config["workers"]), collate_fn=collate_skipping,
                                       pin_memory=state.device.type == "cuda",
                                       generator=torch.Generator().manual_seed(config["seed"] + epoch))


@torch.no_grad()
def validate(state: TrainState) -> dict[str, float]:
    """Loss and hierarchical metrics on the validation split; each rank scores a share, rank 0 reduces."""
    config, device, step = state.config, state.device, state.step
    step.eval()
    probs, kept, losses, counts = [], [], [], []
    for batch in state.val_data:
        check_interrupt()
        if batch is None:  # no image of the batch could be read
            continue
        x, t = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        with autocast(device, config):
            scores_margin = step(x, t)
            scores = step(x)
        losses.append(state.loss_fn(scores_margin.float(), t).item() * len(t))
        counts.append(len(t))
        probs.append(state.model.node_probabilities(scores.float()).cpu())
        kept.append(t.cpu())
    step.train()
    if not state.from_features:  # images read anew each epoch: unreadable ones are told about, as in training
        state.val_data.dataset.dataset.warn_skipped()
    gathered = dist.gather((torch.cat(probs) if probs else torch.empty(0), torch.cat(kept) if kept else
                            torch.empty(0, dtype=torch.long), sum(losses), sum(counts)))
    if gathered is None:
        return {}
    p = torch.cat([g[0] for g in gathered])
    t = torch.cat([g[1] for g in gathered])
    out = {"val_loss": sum(g[2] for g in gathered) / max(1, sum(g[3] for g in gathered))}
    out.update({f"val_{k}": v for k, v in metrics.summary(p, t, state.tree).items()})
    return out


def epoch_line(row: dict, epochs: int) -> str:
    """The one line that sums up an epoch."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    for key, label in (("val_loss", "val loss"), ("val_leaf_accuracy", "leaf acc"),
                       ("val_hierarchical_f1", "hF1"), ("val_mistake_severity", "severity")):
        if key in row:
            parts.append(f"{label} {row[key]:.4f}")
    parts.append(f"{row['images_per_s']:.0f} img/s")
    return "  ".join(parts)
