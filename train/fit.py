"""``hier fit``: train a head on a dataset, resumable, on CPU or GPU, one or many processes.

The data goes: dataset file -> splits of paths and node targets (``load_splits``) -> cached backbone
features or images (``features``) -> global batches of indices and this rank's share (``batches``)
-> HierNet -> loss -> optimizer (``epoch``). Each epoch ends with validation, ``metrics.csv`` and
an atomic ``checkpoints/last.pt`` (``checkpoint``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from hier import runs
from hier.backbones.device import pick_device
from hier.backbones.runtime import resolve_runtime
from hier.backbones.stages import split_stages, stage_count
from hier.core.errors import HierError, InputError, first_line
from hier.core.files import atomic_write_text, remove_stale_temporaries_below
from hier.core.interrupts import catching_interrupts, check_interrupt
from hier.core.progress import Progress
from hier.data.images import ImageDataset, image_transform
from hier.data.labels import resolve_labels, targets
from hier.data.own_taxonomy import dataset_taxonomy
from hier.data.readers import read_dataset
from hier.data.splits import training_parts
from hier.runs.config import changed_keys
from hier.runs.layout import write_prior
from hier.runs.model import (
    PREPROCESS_KEYS,
    HierNet,
    backbone_is_frozen,
    build_model,
    with_preprocessing,
)
from hier.runs.prior import adjusted_loss, prior_link, prior_record, shifts
from hier.taxo import Taxonomy
from hier.train import distributed as dist
from hier.train.batches import balanced_weights, epoch_batches, val_batches
from hier.train.checkpoint import finish, restore, save_best, save_last
from hier.train.epoch import Step, TrainState, epoch_line, run_epoch
from hier.train.features import cached_features, finished_chunks, use_feature_cache
from hier.train.optim import make_optimizer, make_schedule
from hier.tree import TreeTensors

HIGHER_IS_BETTER = {"val_leaf_accuracy": True, "val_hierarchical_f1": True, "val_loss": False,
                    "val_mistake_severity": False}


@dataclass
class Split:
    paths: list[Path]
    targets: torch.Tensor  # node indices


def load_splits(dataset_path, taxonomy: Taxonomy, config: dict, run_dir: Path, *, resume: bool
                ) -> tuple[Split, Split, dict | None]:
    """Train and validation splits (:func:`hier.data.splits.training_parts`; the calibration part is left out);
    a resumed run's from its ``split.json``.

    The third value is a new split for the run to save (None when there is nothing to save).
    """
    dataset = read_dataset(dataset_path)
    nodes = resolve_labels(dataset, taxonomy)
    parts, new_split = training_parts(dataset, config, runs.read_split(run_dir) if resume else None)
    train, val = parts["train"], parts["val"]
    if not train or not val:
        raise InputError(f"the train and val splits need images (train {len(train)}, val {len(val)})",
                         path=dataset_path)
    return (Split([s.path for s in train], torch.as_tensor(targets(train, nodes))),
            Split([s.path for s in val], torch.as_tensor(targets(val, nodes))), new_split)


def fit(dataset_path, taxonomy: str | os.PathLike | Taxonomy | None, config: dict, run_dir: str | Path, *,
        resume: bool = False, force: bool = False, console=None) -> Path:
    """Train and return the run directory. ``taxonomy``: a file or a built one; None: the run's own with
    ``resume``, else the dataset's own (``hier.data.own_taxonomy``: its taxonomy.json, an EcoTaxa export's
    lineages, or WordNet's tree of wnid folders), said on ``console``. With ``resume``, continue ``run_dir``
    from its last checkpoint."""
    run_dir = Path(run_dir)
    resolve_runtime(config.get("runtime") or "auto")  # a runtime asked for but not installed: said before any work
    config = {**config, "dataset": os.path.abspath(dataset_path)}  # as the dataset readers and split.json write paths
    dist.setup()
    try:
        if resume:
            checkpoint, taxonomy, config = _resumed(run_dir, config)
        else:
            if taxonomy is None:
                taxonomy, origin = dataset_taxonomy(dataset_path)
                if console is not None and dist.is_main():
                    console.print(f"taxonomy: {origin}")
            if not isinstance(taxonomy, Taxonomy):
                runs.check_outside(run_dir, dataset_path, taxonomy)
                taxonomy = Taxonomy.load(taxonomy)
            else:
                runs.check_outside(run_dir, dataset_path)
            checkpoint = None
        if config["deterministic"]:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(config["seed"])
        with catching_interrupts(), Progress(console=console, enabled=dist.is_main()) as progress:
            state = _start(dataset_path, taxonomy, config, run_dir, checkpoint, resume=resume, force=force,
                           progress=progress)
            _train(state)
            if dist.is_main():
                finish(state)
    finally:
        dist.teardown()
    return run_dir


def _resumed(run_dir: Path, config: dict) -> tuple[dict | None, Taxonomy, dict]:
    """The last checkpoint (None before the first), taxonomy and config of a run to continue; a changed setting
    but epochs is refused.

    Preprocessing left open (None: the backbone's own) is what the run recorded.
    """
    runs.check_run_dir(run_dir)
    saved = runs.read_config(run_dir)
    config = {**config, **{k: saved.get(k) for k in (*PREPROCESS_KEYS, "views", "train_stages")
                           if config.get(k) is None}}
    changed = [k for k in changed_keys(saved, config) if k not in ("epochs", "dataset")]
    if changed:
        raise InputError(f"--resume keeps the run's settings; changed: {', '.join(changed)} "
                         "(only epochs may change)", path=run_dir)
    # no last.pt: the run stopped before its first epoch (in the feature pass); it starts again, keeping its chunks
    checkpoint = runs.load_checkpoint(run_dir / runs.LAST) if (run_dir / runs.LAST).exists() else None
    remove_stale_temporaries_below(run_dir)  # left by a write that a kill interrupted; a live writer keeps its own
    return checkpoint, Taxonomy.load(run_dir / runs.TAXONOMY), config


def _start(dataset_path, taxonomy: Taxonomy, config: dict, run_dir: Path, checkpoint: dict | None, *,
           resume: bool, force: bool, progress: Progress) -> TrainState:
    """Data, model, optimizer and schedule; restored from ``checkpoint``, else saved as epoch 0 (of a new run, or
    of a resumed one stopped before its first epoch: the same seed builds the same model)."""
    device = pick_device(config["device"])
    train, val, new_split = load_splits(dataset_path, taxonomy, config, run_dir, resume=resume)
    model, loss_fn = build_model(config, taxonomy, load_weights=checkpoint is None)
    config = size_defaults(config, model.backbone, len(train.paths))
    if config["train_stages"]:
        trained_stages(model, config)[1].requires_grad_(True)
        if not resume:
            progress.print(f"training the backbone's last {config['train_stages']} stages with the head "
                           "(train_stages; docs/training.md)")
    loss_fn = adjusted_loss(loss_fn, model.head, taxonomy, train.targets, config)  # long_tail
    config = with_preprocessing(config, model.backbone)  # recorded: predict and evaluate read images the same way
    if resume:
        return _build_state(model, loss_fn, train, val, config, run_dir, taxonomy, device, progress, checkpoint)
    check_image_size(model.backbone, config)
    if shifts(config):
        prior_link(model.head)  # a head that cannot take a prior: said before the run directory exists
    prior = prior_record(train.targets, taxonomy, config)  # a bad prior file, too
    if dist.is_main():  # the data and the model are good: only now the run directory is made
        runs.prepare_run_dir(run_dir, force=force)
    try:
        _write_run_files(run_dir, config, taxonomy, new_split, prior)
        return _build_state(model, loss_fn, train, val, config, run_dir, taxonomy, device, progress, None)
    except BaseException as e:  # before the first checkpoint: leave nothing, unless feature chunks to resume from
        if dist.is_main() and not (isinstance(e, (KeyboardInterrupt, OSError)) and finished_chunks(run_dir)):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


# Up to this many training images the defaults spend more work per image: the 8 dihedral views of each in the
# feature cache, and the backbone's last 2 stages trained with the head (each worth points of accuracy on the
# shared sample, docs/results.md). Above it they cost hours on 2 cores (8 views of 240k images: 2 hours of feature
# pass; the 2 stages: about 20 minutes an epoch), and the frozen features of one view gain from the data instead.
SMALL_TRAINING_SPLIT = 10_000
DEFAULT_TRAIN_STAGES = 2


def size_defaults(config: dict, backbone: torch.nn.Module, n_train: int) -> dict:
    """``views`` and ``train_stages`` as set, else (None) by the size of the training split; a setting the backbone
    cannot take is refused here, before any work."""
    small, frozen = n_train <= SMALL_TRAINING_SPLIT, backbone_is_frozen(config)
    views, stages = config["views"], config["train_stages"]
    if views is None:
        views = 8 if small else 1
    if stages is None:
        stages = DEFAULT_TRAIN_STAGES if frozen and small and stage_count(backbone) > DEFAULT_TRAIN_STAGES else 0
    elif stages and not frozen:
        raise InputError("train_stages trains the last stages of a frozen backbone; this one trains whole "
                         "(drop train_stages, or freeze it)", where="train_stages")
    elif stages:
        split_stages(backbone, stages)  # a backbone that cannot be cut there
    return {**config, "views": views, "train_stages": stages}


def check_image_size(backbone: torch.nn.Module, config: dict) -> None:
    """One blank image through the backbone: a size it cannot take fails before the run directory exists."""
    size, was_training = config["image_size"], backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, size, size))
    except (RuntimeError, ValueError, AssertionError) as e:  # too small, or not the size a model was built for
        raise InputError(f"the backbone {config['backbone']!r} cannot take {size}-pixel images "
                         f"({first_line(e)})", where="image_size") from None
    finally:
        backbone.train(was_training)


def _build_state(model: HierNet, loss_fn, train: Split, val: Split, config: dict, run_dir: Path,
                 taxonomy: Taxonomy, device: torch.device, progress: Progress, checkpoint: dict | None) -> TrainState:
    """The training state on ``device``: restored from ``checkpoint``, else saved as epoch 0 of the new run."""
    model.to(device)
    loss_fn.to(device)
    trunk, tail = trained_stages(model, config)
    train_data, val_data = _data(trunk, train, val, config, device, run_dir, progress)
    from_features = isinstance(train_data, tuple)
    train_targets = train_data[1] if from_features else train_data.targets
    weights = balanced_weights(train_targets, config, len(taxonomy))
    optimizer = make_optimizer(model, loss_fn, config)
    schedule = make_schedule(optimizer, config, len(epoch_batches(len(train_targets), config, 0, weights)))
    step = Step(model, from_features, backbone_is_frozen(config), tail)
    if config["compile"]:
        step = torch.compile(step)
    state = TrainState(config, run_dir, taxonomy, device, model, loss_fn, optimizer, schedule, train_data,
                       val_batches(val_data, config, from_features), weights, step, dist.wrap(step, device),
                       TreeTensors(taxonomy).to(device), progress)
    if checkpoint is not None:
        restore(state, checkpoint)
    elif dist.is_main():
        save_last(state)
    return state


def _write_run_files(run_dir: Path, config: dict, taxonomy: Taxonomy, new_split: dict | None, prior: dict) -> None:
    if dist.is_main():
        runs.write_config(run_dir, config)
        taxonomy.save(run_dir / runs.TAXONOMY)
        write_prior(run_dir, prior)
        if new_split:
            atomic_write_text(run_dir / runs.SPLIT, json.dumps(new_split, indent=0))
    dist.barrier()


def trained_stages(model: HierNet, config: dict) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """(what the feature cache runs, what trains from it before the embedding): the backbone and nothing, or its
    trunk and its last ``train_stages`` stages."""
    if not config["train_stages"]:
        return model.backbone, None
    return split_stages(model.backbone, config["train_stages"])


def _data(trunk: torch.nn.Module, train: Split, val: Split, config: dict, device: torch.device, run_dir: Path,
          progress: Progress):
    """(train, val): the cached output of ``trunk`` (the backbone, or its part before the trained stages) as
    (features, targets), or image datasets read every epoch."""
    evaluation = image_transform(config)
    if use_feature_cache(config):
        train_images, val_images = (ImageDataset(split.paths, split.targets, evaluation) for split in (train, val))
        return (cached_features(trunk, train_images, config, device, run_dir, progress, "train"),
                cached_features(trunk, val_images, config, device, run_dir, progress, "val"))
    training = image_transform(config, train=True)
    return ImageDataset(train.paths, train.targets, training), ImageDataset(val.paths, val.targets, evaluation)


def _train(state: TrainState) -> None:
    """The epochs left; rank 0 records each one and stops early when the best metric stalls."""
    config, progress = state.config, state.progress
    task = progress.add("epochs", total=config["epochs"], completed=state.epoch)
    stale = 0
    try:
        for epoch in range(state.epoch, config["epochs"]):
            row = run_epoch(state, epoch)
            check_interrupt()  # a Ctrl-C that a loader's shutdown swallowed
            progress.advance(task)
            stop = False
            if dist.is_main():
                stale = 0 if _record(state, row) else stale + 1
                progress.print(epoch_line(row, config["epochs"]))
                stop = bool(config["early_stopping"]) and stale >= config["early_stopping"]
                if stop:
                    progress.print(f"early stop: no better {config['best_metric']} for {stale} epochs")
            # rank 0 decides; every rank must leave the loop with it, or the others wait forever
            if dist.all_reduce_sum(torch.tensor(float(stop), device=state.device)).item():
                break
    except (KeyboardInterrupt, OSError, HierError):  # Ctrl-C, SIGTERM, a full disk: the last epoch is on disk
        if dist.is_main():
            progress.print(f"stopped: {state.run_dir / runs.LAST} holds the last finished epoch; "
                           f"continue with: hier fit --resume {state.run_dir}")
        raise
    except torch.cuda.OutOfMemoryError:
        raise HierError(f"out of GPU memory at batch size {config['batch_size']}; "
                        f"try --batch-size {max(1, config['batch_size'] // 2)}") from None


def _record(state: TrainState, row: dict) -> bool:
    """Keep an epoch's row: ``best.pt`` if it improved the best metric, ``metrics.csv``, ``last.pt``; True if so."""
    metric = state.config["best_metric"]
    value = row.get(metric)
    improved = state.best is None or (value > state.best["value"] if HIGHER_IS_BETTER[metric]
                                      else value < state.best["value"])
    state.history.append(row)
    state.epoch = row["epoch"]
    if improved:
        state.best = {"metric": metric, "value": value, "epoch": row["epoch"]}
        save_best(state)
    runs.write_metrics(state.run_dir, state.history)
    save_last(state)
    return improved
