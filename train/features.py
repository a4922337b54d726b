"""The frozen-backbone feature cache: the backbone runs once, the embedding block and head train on its output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from hier import runs
from hier.backbones.runtime import backbone_runner, image_workers, torch_beside_the_runtime
from hier.core.errors import InputError
from hier.core.interrupts import check_interrupt
from hier.core.progress import Progress
from hier.data.images import ImageDataset, collate_skipping
from hier.data.views import dihedral_views
from hier.runs.model import backbone_is_frozen
from hier.train import distributed as dist


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


def cache_key(images: ImageDataset, config: dict) -> str:
    """Names the features of these image files (path, size, mtime) under this backbone, weights and size."""
    h = hashlib.sha1()
    for p in images.paths:
        stat = p.stat() if p.exists() else None
        h.update(f"{p}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    h.update(json.dumps([config.get(k) for k in ("backbone", "backbone_options", "weights", "image_size",
                                                 "keep_size", "mean", "std", "interpolation")],
                        sort_keys=True).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def compute_features(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device,
                     progress: Progress, what: str, cache_dir: Path | None = None, views: int = 1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of every readable image, in eval mode, on the configured runtime (its export kept in
    ``cache_dir``); returns (features, targets). With ``views`` 8 the features are [N, 8, F], one row per
    dihedral view of each image (``hier.data.views``), else [N, F]."""
    loader = torch.utils.data.DataLoader(images, batch_size=config["batch_size"], collate_fn=collate_skipping,
                                         num_workers=image_workers(config, device, config["workers"]),
                                         pin_memory=device.type == "cuda")
    was_training = backbone.training
    backbone.eval()
    run = backbone_runner(backbone, config, device, cache_dir)
    features, kept = [], []
    task = progress.add(f"features {what}", total=len(images))
    with torch_beside_the_runtime(config, device, loader.num_workers):
        for batch in loader:
            check_interrupt()
            progress.advance(task, config["batch_size"])
            if batch is None:
                continue
            x, target = batch
            if views == 1:
                features.append(run(x).cpu())
            else:
                features.append(run(dihedral_views(x).flatten(0, 1)).cpu().view(views, len(x), -1).transpose(0, 1))
            kept.append(target)
    progress.done(task)
    backbone.train(was_training)
    images.warn_skipped()
    if not features:
        raise InputError(f"no readable image in the {what} split")
    return torch.cat(features), torch.cat(kept)


def cached_features(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device, run_dir: Path,
                    progress: Progress, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features from memory (computed now) or from a file in the run directory keyed by data and backbone.

    The training images get ``config["views"]`` dihedral views each (an epoch draws one per image); the
    others one, the image as it is, as predict sees it."""
    exports = run_dir / "cache" if dist.is_main() else None  # one process writes the runtime's export
    views = (config.get("views") or 1) if what == "train" else 1
    if config["feature_cache"] != "file":
        return compute_features(backbone, images, config, device, progress, what, exports, views)
    path = run_dir / "cache" / f"features-{what}-{cache_key(images, config)}-v{views}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        return stored["features"], stored["targets"]
    features, kept = compute_features(backbone, images, config, device, progress, what, exports, views)
    if dist.is_main():
        path.parent.mkdir(exist_ok=True)
        runs.save_checkpoint(path, {"features": features, "targets": kept})
    return features, kept
