"""``hier fit``: train a head on a dataset, resumable, on CPU or GPU, one or many processes.

The data goes: dataset file -> samples and node targets -> (cached backbone features | images)
-> batches of global indices -> this rank's share -> HierNet -> loss -> optimizer. Each epoch
ends with validation, ``metrics.csv`` and an atomic ``checkpoints/last.pt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hier.core.errors import HierError, InputError
from hier.core.files import atomic_write_text
from hier.core.progress import Progress
from hier.data.images import ImageDataset, build_transform, collate_skipping
from hier.data.labels import resolve_labels, targets
from hier.data.readers import read_dataset
from hier.data.splits import saved_split, stratified_split
from hier.heads.tree import TreeTensors
from hier.metrics import hierarchical as metrics
from hier.taxo import Taxonomy
from hier.train import distributed as dist
from hier.train import runs
from hier.train.config import changed_keys
from hier.train.device import autocast, pick_device
from hier.train.model import HierNet, backbone_is_frozen, build_model
from torch import nn

HIGHER_IS_BETTER = {"val_leaf_accuracy": True, "val_hierarchical_f1": True, "val_loss": False,
                    "val_mistake_severity": False}


@dataclass
class Split:
    paths: list[Path]
    targets: torch.Tensor  # node indices


def load_splits(dataset_path, taxonomy: Taxonomy, config: dict, run_dir: Path) -> tuple[Split, Split, dict | None]:
    """Train and validation splits: the dataset's own, else a seeded stratified split.

    The third value is a new stratified split for the run to save (None when there is nothing to save).
    """
    dataset = read_dataset(dataset_path)
    nodes = resolve_labels(dataset, taxonomy)
    saved, new_split = run_dir / runs.SPLIT, None
    if dataset.has_splits:
        train, val = dataset.split(config["train_split"]), dataset.split(config["val_split"])
    elif saved.exists():
        train, val = (saved_split(saved, dataset, name) for name in ("train", "val"))
        if train is None or val is None:
            raise InputError("the dataset no longer holds every image of the saved split", path=saved)
    else:
        parts = stratified_split(dataset.samples, config["split_fractions"], seed=config["seed"],
                                 names=("train", "val", "test"))
        train, val = parts["train"], parts["val"]
        new_split = {k: [str(s.path) for s in part] for k, part in parts.items()}
    if not train or not val:
        raise InputError(f"the train and val splits need images (train {len(train)}, val {len(val)})",
                         path=dataset_path)
    return (Split([s.path for s in train], torch.as_tensor(targets(train, nodes))),
            Split([s.path for s in val], torch.as_tensor(targets(val, nodes))), new_split)


# ---- frozen-backbone feature cache ------------------------------------------------------------


def cache_key(split: Split, config: dict) -> str:
    h = hashlib.sha1()
    for p in split.paths:
        stat = p.stat() if p.exists() else None
        h.update(f"{p}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    h.update(json.dumps([config[k] for k in ("backbone", "backbone_options", "weights", "image_size",
                                             "keep_size")], sort_keys=True).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def compute_features(backbone: nn.Module, split: Split, config: dict, device, progress: Progress,
                     what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of every readable image, in eval mode; returns (features, targets)."""
    data = ImageDataset(split.paths, split.targets, build_transform(config["image_size"], train=False,
                                                                    keep_size=config["keep_size"]))
    loader = torch.utils.data.DataLoader(data, batch_size=config["batch_size"], num_workers=config["workers"],
                                         collate_fn=collate_skipping, pin_memory=device.type == "cuda")
    was_training = backbone.training
    backbone.eval()
    features, kept = [], []
    task = progress.add(f"features {what}", total=len(data))
    for batch in loader:
        progress.advance(task, config["batch_size"])
        if batch is None:
            continue
        images, target = batch
        with autocast(device, config):
            features.append(backbone(images.to(device, non_blocking=True)).float().cpu())
        kept.append(target)
    progress.done(task)
    backbone.train(was_training)
    data.warn_skipped()
    if not features:
        raise InputError(f"no readable image in the {what} split")
    return torch.cat(features), torch.cat(kept)


def cached_features(backbone, split: Split, config: dict, device, run_dir: Path, progress: Progress, what: str):
    """Features from memory (computed now) or from a file in the run directory keyed by data and backbone."""
    if config["feature_cache"] != "file":
        return compute_features(backbone, split, config, device, progress, what)
    path = run_dir / "cache" / f"features-{what}-{cache_key(split, config)}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        return stored["features"], stored["targets"]
    features, kept = compute_features(backbone, split, config, device, progress, what)
    if dist.is_main():
        path.parent.mkdir(exist_ok=True)
        runs.save_checkpoint(path, {"features": features, "targets": kept})
    return features, kept


def use_feature_cache(config: dict) -> bool:
    mode = config["feature_cache"]
    if mode == "off":
        return False
    frozen = backbone_is_frozen(config)
    if mode == "auto":
        return frozen and not config["augment"]
    if not frozen:
        raise InputError("feature_cache needs a frozen backbone (the features change while it trains)",
                         where="feature_cache")
    return True


# ---- batches -----------------------------------------------------------------------------------


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


# ---- the loop ----------------------------------------------------------------------------------


class Step(nn.Module):
    """What DDP wraps: the trainable path, from features (cache) or from images."""

    def __init__(self, model: HierNet, from_features: bool, frozen_backbone: bool):
        super().__init__()
        self.model, self.from_features, self.frozen_backbone = model, from_features, frozen_backbone

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_backbone:  # a frozen backbone keeps its batch-norm statistics: the cache sees the same
            self.model.backbone.eval()
        return self

    def forward(self, x, targets=None):
        return self.model.from_features(x, targets) if self.from_features else self.model(x, targets)


def make_optimizer(model: HierNet, loss: nn.Module, config: dict) -> torch.optim.Optimizer:
    groups = [{"params": [p for p in [*model.embedding.parameters(), *model.head.parameters(),
                                      *loss.parameters()] if p.requires_grad], "lr": config["lr"]}]
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone:
        groups.append({"params": backbone, "lr": config["backbone_lr"] or config["lr"]})
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=config["lr"], momentum=config["momentum"],
                               weight_decay=config["weight_decay"])
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])


def make_schedule(optimizer, config: dict, steps_per_epoch: int):
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


@torch.no_grad()
def validate(step: Step, loss_fn: nn.Module, data, config: dict, device, tree: TreeTensors) -> dict[str, float]:
    """Loss and hierarchical metrics on the validation split; each rank scores a share, rank 0 reduces."""
    step.eval()
    probs, kept, losses, counts = [], [], [], []
    for batch in data:
        if batch is None:  # no image of the batch could be read
            continue
        x, t = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        with autocast(device, config):
            scores_margin = step(x, t)
            scores = step(x)
        losses.append(loss_fn(scores_margin.float(), t).item() * len(t))
        counts.append(len(t))
        probs.append(step.model.node_probabilities(scores.float()).cpu())
        kept.append(t.cpu())
    step.train()
    gathered = dist.gather((torch.cat(probs) if probs else torch.empty(0), torch.cat(kept) if kept else
                            torch.empty(0, dtype=torch.long), sum(losses), sum(counts)))
    if gathered is None:
        return {}
    p = torch.cat([g[0] for g in gathered])
    t = torch.cat([g[1] for g in gathered])
    out = {"val_loss": sum(g[2] for g in gathered) / max(1, sum(g[3] for g in gathered))}
    out.update({f"val_{k}": v for k, v in metrics.summary(p, t, tree).items()})
    return out


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
                                       num_workers=config["workers"], collate_fn=collate_skipping,
                                       generator=torch.Generator().manual_seed(0))


def fit(dataset_path, taxonomy_path, config: dict, run_dir: str | Path, *, resume: bool = False,
        force: bool = False, console=None) -> Path:
    """Train and return the run directory. With ``resume``, continue ``run_dir`` from its last checkpoint."""
    run_dir = Path(run_dir)
    dist.setup()
    try:
        return _fit(dataset_path, taxonomy_path, config, run_dir, resume, force, console)
    finally:
        dist.teardown()


def _fit(dataset_path, taxonomy_path, config, run_dir, resume, force, console) -> Path:
    checkpoint = None
    config = {**config, "dataset": os.path.abspath(dataset_path)}  # as the dataset readers and split.json write paths
    if resume:
        runs.check_run_dir(run_dir)
        saved = runs.read_config(run_dir)
        changed = [k for k in changed_keys(saved, config) if k not in ("epochs", "dataset")]
        if changed:
            raise InputError(f"--resume keeps the run's settings; changed: {', '.join(changed)} "
                             "(only epochs may change)", path=run_dir)
        checkpoint = runs.load_checkpoint(run_dir / runs.LAST)
        for stale in run_dir.rglob(".*.tmp"):  # left by a write that a kill interrupted
            stale.unlink()
        taxonomy = Taxonomy.load(run_dir / runs.TAXONOMY)
    else:
        taxonomy = Taxonomy.load(taxonomy_path)

    if config["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(config["seed"])
    device = pick_device(config["device"])
    progress = Progress(console=console, enabled=dist.is_main())
    with progress:
        train, val, new_split = load_splits(dataset_path, taxonomy, config, run_dir)
        model, loss_fn = build_model(config, taxonomy, load_weights=checkpoint is None)
        if checkpoint is None:  # the data and the model are good: only now the run directory is made
            if dist.is_main():
                runs.prepare_run_dir(run_dir, force=force)
                runs.write_config(run_dir, config)
                taxonomy.save(run_dir / runs.TAXONOMY)
                if new_split:
                    atomic_write_text(run_dir / runs.SPLIT, json.dumps(new_split, indent=0))
            dist.barrier()
        model.to(device)
        loss_fn.to(device)
        if config["channels_last"]:
            model.backbone.to(memory_format=torch.channels_last)
        from_features = use_feature_cache(config)
        if from_features:
            train_data = cached_features(model.backbone, train, config, device, run_dir, progress, "train")
            val_data = cached_features(model.backbone, val, config, device, run_dir, progress, "val")
            n_train = len(train_data[1])
            train_targets = train_data[1]
        else:
            transform = build_transform(config["image_size"], train=config["augment"], keep_size=config["keep_size"])
            train_data = ImageDataset(train.paths, train.targets, transform)
            val_data = ImageDataset(val.paths, val.targets, build_transform(config["image_size"], train=False,
                                                                              keep_size=config["keep_size"]))
            n_train, train_targets = len(train_data), train.targets
        weights = balanced_weights(train_targets, config, len(taxonomy))
        steps_per_epoch = len(epoch_batches(n_train, config, 0, weights))
        optimizer = make_optimizer(model, loss_fn, config)
        schedule = make_schedule(optimizer, config, steps_per_epoch)
        history, best, start = [], None, 0
        if checkpoint is not None:
            _restore(checkpoint, model, loss_fn, optimizer, schedule, device)
            history, best, start = checkpoint["history"], checkpoint["best"], checkpoint["epoch"]
        elif dist.is_main():
            _save_last(run_dir, 0, model, loss_fn, optimizer, schedule, history, best, taxonomy, config)

        step = Step(model, from_features, backbone_is_frozen(config))
        if config["compile"]:
            step = torch.compile(step)
        trainer = dist.wrap(step, device)
        tree = TreeTensors(taxonomy).to(device)
        val_loader = val_batches(val_data, config, from_features)
        stale = 0
        epochs_task = progress.add("epochs", total=config["epochs"], completed=start)
        try:
            for epoch in range(start, config["epochs"]):
                t0 = time.perf_counter()
                train_loss, seen = _train_epoch(trainer, loss_fn, optimizer, schedule, train_data, from_features,
                                                epoch_batches(n_train, config, epoch, weights), config, device,
                                                progress, epoch)
                train_seconds = time.perf_counter() - t0
                row = {"epoch": epoch + 1, "train_loss": train_loss, **validate(step, loss_fn, val_loader, config,
                                                                                device, tree),
                       "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
                       "images_per_s": seen / max(train_seconds, 1e-9)}
                progress.advance(epochs_task)
                if not dist.is_main():
                    continue
                history.append(row)
                value = row.get(config["best_metric"])
                improved = best is None or (value > best["value"] if HIGHER_IS_BETTER[config["best_metric"]]
                                            else value < best["value"])
                if improved:
                    best = {"metric": config["best_metric"], "value": value, "epoch": epoch + 1}
                    runs.save_checkpoint(run_dir / runs.BEST, {"epoch": epoch + 1, "model": model.state_dict(),
                                                               "best": best})
                stale = 0 if improved else stale + 1
                runs.write_metrics(run_dir, history)
                _save_last(run_dir, epoch + 1, model, loss_fn, optimizer, schedule, history, best, taxonomy, config)
                progress.print(_epoch_line(row, config["epochs"]))
                if config["early_stopping"] and stale >= config["early_stopping"]:
                    progress.print(f"early stop: no better {config['best_metric']} for {stale} epochs")
                    break
        except KeyboardInterrupt:
            if dist.is_main():
                progress.print(f"interrupted: {run_dir / runs.LAST} holds the last finished epoch; "
                               f"continue with: hier fit --resume {run_dir}")
            raise
        except torch.cuda.OutOfMemoryError:
            raise HierError(f"out of GPU memory at batch size {config['batch_size']}; "
                            f"try --batch-size {max(1, config['batch_size'] // 2)}") from None
        if dist.is_main():
            _finish(run_dir, model, config, best)
    return run_dir


def _train_epoch(trainer, loss_fn, optimizer, schedule, train_data, from_features, batches, config, device,
                 progress, epoch) -> tuple[float, int]:
    trainer.train()
    if from_features:
        features, target = train_data
        loader = ((features[i], target[i]) for i in (local_part(b) for b in batches))
    else:
        loader = torch.utils.data.DataLoader(train_data, batch_sampler=Batches(batches), num_workers=config["workers"],
                                             collate_fn=collate_skipping, pin_memory=device.type == "cuda",
                                             generator=torch.Generator().manual_seed(config["seed"] + epoch))
    task = progress.add(f"epoch {epoch + 1}", total=len(batches))
    total, seen = torch.zeros((), device=device), 0
    world = dist.world_size()
    for global_batch, batch in zip(batches, loader):
        if batch is None:
            progress.advance(task)
            continue
        x, t = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        if config["channels_last"] and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, config):
            scores = trainer(x, t)
        # DDP averages gradients over ranks; weighting by this rank's share makes the step equal
        # to one process over the whole global batch, even when the shares differ in size.
        loss = loss_fn(scores.float(), t) * (len(t) * world / len(global_batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config["grad_clip"]:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config["grad_clip"])
        optimizer.step()
        schedule.step()
        total += loss.detach() * len(t) / world
        seen += len(t)
        progress.advance(task, loss=loss.detach(), images=len(t))
    progress.done(task)
    if not from_features:
        train_data.warn_skipped()
    total, seen_all = dist.all_reduce_sum(total), dist.all_reduce_sum(torch.tensor(float(seen), device=device))
    return (total * world / seen_all.clamp(min=1)).item(), int(seen_all.item())


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    for key, label in (("val_loss", "val loss"), ("val_leaf_accuracy", "leaf acc"),
                       ("val_hierarchical_f1", "hF1"), ("val_mistake_severity", "severity")):
        if key in row:
            parts.append(f"{label} {row[key]:.4f}")
    parts.append(f"{row['images_per_s']:.0f} img/s")
    return "  ".join(parts)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save_last(run_dir, epoch, model, loss_fn, optimizer, schedule, history, best, taxonomy, config) -> None:
    runs.save_checkpoint(run_dir / runs.LAST, {
        "epoch": epoch, "model": model.state_dict(), "loss": loss_fn.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(), "rng": _rng_state(),
        "history": history, "best": best, "taxonomy_ids": list(taxonomy.ids), "head": config["head"],
    })


def _restore(checkpoint, model, loss_fn, optimizer, schedule, device) -> None:
    model.load_state_dict(checkpoint["model"])
    loss_fn.load_state_dict(checkpoint["loss"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    schedule.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    if "cuda" in checkpoint["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])


def _finish(run_dir: Path, model: HierNet, config: dict, best: dict | None) -> None:
    """Final weights: those of the best epoch (what predict and evaluate use)."""
    if best is not None and (run_dir / runs.BEST).exists():
        model.load_state_dict(runs.load_checkpoint(run_dir / runs.BEST)["model"])
    runs.save_weights(run_dir, model, config)
