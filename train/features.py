"""The frozen-backbone feature cache: the backbone runs once, the embedding block and head train on its output (with
``train_stages``, the trunk runs once and the backbone's last stages train too, from the trunk's output).

The pass streams to disk: every ``CHUNK_BATCHES`` batches of images, a chunk file (half precision) lands
atomically in ``RUN/cache/features-WHAT-vVIEWS-SETTINGS/``. A killed pass leaves its finished chunks, and the next
(``hier fit --resume``) computes only the missing ones. A chunk is named by its images (path, size, modification
time) and the folder by the settings that shape the features, so a changed image recomputes its chunk only, a
changed setting the folder. Training reads the chunks through memory maps (:class:`ChunkedFeatures`): the process
holds a batch, the page cache what fits.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from hier import runs
from hier.backbones.runtime import backbone_runner, image_workers, torch_beside_the_runtime
from hier.core.errors import InputError
from hier.core.interrupts import check_interrupt
from hier.core.progress import Progress
from hier.data.images import ImageDataset, collate_skipping
from hier.data.views import each_view
from hier.runs.model import backbone_is_frozen
from hier.train import distributed as dist

CHUNK_BATCHES = 32  # batches per chunk file (2,048 images at the default batch size): what a kill costs at most
FEATURE_SETTINGS = ("backbone", "backbone_options", "weights", "image_size", "keep_size", "mean", "std",
                    "interpolation", "runtime_precision", "train_stages")
_CHUNK = re.compile(r"\d{5}-[0-9a-f]{16}\.pt")


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


def _digest(paths: Sequence[Path], config: dict | None = None) -> str:
    h = hashlib.sha1()
    for p in paths:
        try:  # one stat per file: 337k of them take seconds
            stat = p.stat()
            h.update(f"{p}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|-1|-1\n".encode())
    if config is not None:
        h.update(json.dumps([config.get(k) for k in FEATURE_SETTINGS], sort_keys=True).encode())
    return h.hexdigest()[:16]


def cache_key(images: ImageDataset, config: dict) -> str:
    """Names the features of these image files (path, size, mtime) under this backbone, weights and size."""
    return _digest(images.paths, config)


def _views(run, x: torch.Tensor, views: int) -> torch.Tensor:
    if views == 1:
        return run(x).cpu()
    return each_view(run, x).cpu()


@torch.no_grad()
def _pass(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device, progress: Progress,
          what: str, cache_dir: Path | None, views: int, chunks: list[range], done: int = 0, keep=None
          ) -> Iterator[tuple[int, list[torch.Tensor], list[torch.Tensor]]]:
    """Yields (k, features, targets) once chunk ``chunks[k]`` (a range of image indices) is through the backbone:
    the features [n, F] or [n, views, F] and node targets of its readable images, batch by batch, each batch's
    features as ``keep`` makes them (the chunk is held until it ends: half precision halves that)."""
    size = config["batch_size"]
    batches = [list(r[i:i + size]) for r in chunks for i in range(0, len(r), size)]
    chunk_of = [k for k, r in enumerate(chunks) for _ in range(0, len(r), size)]
    # its own generator: the pass leaves the global random state to training, which a resumed run replays
    loader = torch.utils.data.DataLoader(images, batch_sampler=batches, collate_fn=collate_skipping,
                                         num_workers=image_workers(config, device, config["workers"]),
                                         pin_memory=device.type == "cuda", generator=torch.Generator())
    was_training = backbone.training
    backbone.eval()
    run = backbone_runner(backbone, config, device, cache_dir)
    task = progress.add(f"features {what}", total=len(images), completed=done)
    features, kept = [], []
    try:
        with torch_beside_the_runtime(config, device, loader.num_workers):
            for j, batch in enumerate(loader):
                check_interrupt()
                if batch is not None:
                    out = _views(run, batch[0], views)
                    features.append(out if keep is None else keep(out))
                    kept.append(batch[1])
                progress.advance(task, len(batches[j]), images=len(batches[j]))
                if j + 1 == len(batches) or chunk_of[j + 1] != chunk_of[j]:
                    yield chunk_of[j], features, kept
                    features, kept = [], []
    finally:
        backbone.train(was_training)
    progress.done(task)


def compute_features(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device,
                     progress: Progress, what: str, cache_dir: Path | None = None, views: int = 1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of every readable image, in memory, in eval mode, on the configured runtime (its export
    kept in ``cache_dir``); returns (features, targets). With ``views`` 8 the features are [N, 8, F], one row per
    dihedral view of each image (``hier.data.views``), else [N, F]."""
    features, kept = [], []
    for _, batch_features, batch_targets in _pass(backbone, images, config, device, progress, what, cache_dir, views,
                                                  [range(len(images))]):
        features, kept = features + batch_features, kept + batch_targets
    images.warn_skipped()
    if not features:
        raise InputError(f"no readable image in the {what} split")
    return torch.cat(features), torch.cat(kept)


class ChunkedFeatures:
    """A split's features, chunk files read through memory maps; indexing with row numbers gathers float32 rows."""

    def __init__(self, chunks: list[torch.Tensor]):
        self.chunks = chunks
        sizes = torch.tensor([len(c) for c in chunks])
        self.ends = sizes.cumsum(0)
        self.starts = self.ends - sizes

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(rows)
        which = torch.searchsorted(self.ends, rows, right=True)
        out = torch.empty((len(rows), *self.chunks[0].shape[1:]), dtype=torch.float32)
        for k in which.unique().tolist():  # index_select: advanced indexing of half tensors is many times slower
            at = (which == k).nonzero().squeeze(1)
            out.index_copy_(0, at, self.chunks[k].index_select(0, rows[at] - self.starts[k]).float())
        return out


def _half(features: torch.Tensor) -> torch.Tensor:
    """Half precision (off by at most 1 part in 2,048; Lite0's pooled ReLU6 features lie in [0, 6], its trunk's
    outputs within +-100), unless a value overflows it."""
    half = features.half()
    return half if torch.isfinite(half).all() or not torch.isfinite(features).all() else features


def feature_folders(run_dir: Path) -> list[Path]:
    """The run's streamed feature caches (one per split, views and settings)."""
    return sorted(p for p in (Path(run_dir) / "cache").glob("features-*") if p.is_dir())


def finished_chunks(run_dir: Path) -> int:
    """How many feature chunks the run holds: a fit stopped in its feature pass keeps them to resume."""
    return sum(1 for folder in feature_folders(run_dir) for p in folder.iterdir() if _CHUNK.fullmatch(p.name))


def cached_features(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device, run_dir: Path,
                    progress: Progress, what: str) -> tuple[torch.Tensor | ChunkedFeatures, torch.Tensor]:
    """Features from memory (``feature_cache: memory``, computed now) or streamed to chunk files in the run's cache
    and read back from them (``auto``, ``file``), the chunks a killed pass finished kept.

    The training images get ``config["views"]`` dihedral views each (an epoch draws one per image); the
    others one, the image as it is, as predict sees it."""
    exports = run_dir / "cache" if dist.is_main() else None  # one process writes the runtime's export
    views = (config.get("views") or 1) if what == "train" else 1
    if config["feature_cache"] == "memory":
        return compute_features(backbone, images, config, device, progress, what, exports, views)
    folder = run_dir / "cache" / f"features-{what}-v{views}-{_digest([], config)}"
    size = CHUNK_BATCHES * config["batch_size"]
    chunks = [range(s, min(s + size, len(images))) for s in range(0, len(images), size)]
    names = [folder / f"{k:05d}-{_digest(images.paths[r.start:r.stop])}.pt" for k, r in enumerate(chunks)]
    todo = [k for k, name in enumerate(names) if not name.exists()]
    dist.barrier()  # every process has listed the missing chunks before any writes one
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
    if todo and dist.is_main():
        if len(todo) < len(chunks):
            progress.print(f"features {what}: {len(chunks) - len(todo)} of {len(chunks)} chunks already in "
                           f"{folder}; computing the other {len(todo)}")
    mine = todo[dist.rank()::dist.world_size()]  # under torchrun each process computes and writes its share
    if mine:
        _stream(backbone, images, config, device, progress, what, exports, views, [chunks[k] for k in mine],
                [names[k] for k in mine], run_dir)
    dist.barrier()  # every process reads what all wrote
    if dist.is_main() and folder.is_dir():  # chunks of images changed since: recomputed above under new names
        for stale in set(folder.iterdir()) - set(names):
            if _CHUNK.fullmatch(stale.name):
                stale.unlink()
    stored = [torch.load(name, mmap=True, weights_only=True) for name in names]
    stored = [s for s in stored if len(s["targets"])]
    if not stored:
        raise InputError(f"no readable image in the {what} split")
    return ChunkedFeatures([s["features"] for s in stored]), torch.cat([s["targets"] for s in stored])


def _stream(backbone: nn.Module, images: ImageDataset, config: dict, device: torch.device, progress: Progress,
            what: str, exports: Path | None, views: int, chunks: list[range], names: list[Path], run_dir: Path) -> None:
    """The pass over ``chunks``, each written to its name as it ends; a stop says what is kept."""
    try:
        for k, features, kept in _pass(backbone, images, config, device, progress, what, exports, views, chunks,
                                       done=len(images) - sum(map(len, chunks)), keep=_half):
            runs.save_checkpoint(names[k], {
                "features": torch.cat(features) if features else torch.empty(0),  # float32 if a batch overflowed
                "targets": torch.cat(kept) if kept else torch.empty(0, dtype=torch.long)})
    except (KeyboardInterrupt, OSError):  # Ctrl-C, SIGTERM, a full disk: what fit keeps of a run (train/fit.py)
        finished = finished_chunks(run_dir) if dist.is_main() else 0
        if finished:
            progress.print(f"stopped: {run_dir / 'cache'} holds {finished} finished feature chunks; "
                           f"continue with: hier fit --resume {run_dir}")
        raise
    images.warn_skipped()


def remove_streamed(run_dir: Path, config: dict) -> None:
    """``feature_cache: auto`` keeps the features only while the run trains; ``file`` keeps them in the run."""
    if config["feature_cache"] == "auto":
        for folder in feature_folders(run_dir):
            shutil.rmtree(folder, ignore_errors=True)
