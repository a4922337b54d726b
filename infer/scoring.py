"""Scores of a list of images, batch by batch, and the held-out split a run is calibrated or evaluated on.

Unreadable files are skipped by the loader; every batch says which of its samples could be read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hier import runs
from hier.backbones.device import autocast
from hier.backbones.runtime import backbone_runner, image_workers, torch_beside_the_runtime
from hier.core.errors import InputError
from hier.core.progress import Progress
from hier.data.images import (
    ImageDataset,
    UnreadableImage,
    collate_skipping,
    image_transform,
    load_image,
)
from hier.data.labels import resolve_labels
from hier.data.readers import Dataset, Sample, read_dataset
from hier.data.splits import CALIBRATION, saved_split
from hier.data.views import each_view
from hier.taxo import Taxonomy


def score_batches(model, paths: Sequence[Path], config: dict, device: torch.device, *,
                  batch_size: int | None = None, workers: int | None = None,
                  progress: Progress | None = None, what: str = "images", cache_dir: Path | None = None
                  ) -> Iterator[tuple[range, torch.Tensor, torch.Tensor | None]]:
    """Yields (span, readable, scores) per batch, in order: the sample indices of the batch, those that
    could be read, and their scores [len(readable), width] on ``device`` (None when none could be read).

    The backbone runs on the run's runtime (``backbone_runner``; its export kept in ``cache_dir``), the
    embedding block and head in torch; with ``tta`` in the config, on the mean features of the image's 8
    dihedral views (``hier.data.views``)."""
    batch_size = batch_size or config["batch_size"]
    run = backbone_runner(model.backbone, config, device, cache_dir)

    def features(images: torch.Tensor) -> torch.Tensor:
        if not config.get("tta"):
            return run(images)
        return each_view(run, images).mean(1)

    data = ImageDataset(paths, transform=image_transform(config), return_index=True)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, collate_fn=collate_skipping,
                                         num_workers=image_workers(config, device,
                                                                   config["workers"] if workers is None else workers),
                                         pin_memory=device.type == "cuda")
    task = progress.add(what, total=len(data)) if progress else None
    with torch_beside_the_runtime(config, device, loader.num_workers):
        for number, batch in enumerate(loader):
            span = range(number * batch_size, min((number + 1) * batch_size, len(data)))
            if batch is None:
                yield span, torch.empty(0, dtype=torch.long), None
            else:
                images, _, readable = batch
                with torch.no_grad(), autocast(device, config):
                    scores = model.from_features(features(images))
                yield span, readable, scores.float()
            if progress:
                progress.advance(task, len(span), images=len(span))
    if progress:
        progress.done(task)


def unreadable_reason(path: Path) -> str:
    """Why an image the loader skipped cannot be read (decoded again, once, for the message)."""
    try:
        load_image(path)
    except UnreadableImage as e:
        return str(e).removeprefix(f"{path}: ")
    return "could not be read"


@dataclass
class Scored:
    scores: torch.Tensor  # [n readable, width], on the CPU
    targets: torch.Tensor  # [n readable]
    unreadable: list[Path]


def score_samples(model, samples: Sequence[Sample], taxonomy: Taxonomy, config: dict, device, *,
                  batch_size: int | None = None, workers: int | None = None,
                  progress: Progress | None = None, what: str = "images", cache_dir: Path | None = None) -> Scored:
    """Scores and node targets of every readable sample (calibration and evaluation hold them all)."""
    nodes = resolve_labels(samples, taxonomy)
    paths = [s.path for s in samples]
    targets = torch.tensor([nodes[s.label] for s in samples], dtype=torch.long)
    scores, kept, unreadable = [], [], []
    for span, readable, batch_scores in score_batches(model, paths, config, device, batch_size=batch_size,
                                                      workers=workers, progress=progress, what=what,
                                                      cache_dir=cache_dir):
        unreadable += [paths[i] for i in sorted(set(span) - set(readable.tolist()))]
        if batch_scores is not None:
            scores.append(batch_scores.cpu())
            kept.append(targets[readable])
    if not scores:
        raise InputError(f"none of the {len(paths)} {what} could be read")
    return Scored(torch.cat(scores), torch.cat(kept), unreadable)


@torch.no_grad()
def node_probabilities(model, scores: torch.Tensor, temperature: float, device, rows: int = 8192) -> torch.Tensor:
    """Probabilities of ``scores / temperature`` on the CPU, computed on ``device`` a chunk at a time."""
    return torch.cat([model.node_probabilities(chunk.to(device) / temperature).float().cpu()
                      for chunk in scores.split(rows)])


# ---- held-out splits ----------------------------------------------------------------------------


def dataset_of(run_dir: Path, dataset, command: str) -> Path:
    """The dataset given, else the one the run was trained on (``hier fit`` records it in the config)."""
    if dataset is not None:
        return Path(dataset)
    recorded = runs.read_config(run_dir).get("dataset")
    if not recorded:
        raise InputError(f"this run does not record its dataset; give it: hier {command} RUN_DIR DATASET",
                         path=run_dir)
    return Path(recorded)


def held_out_split(run_dir: Path, dataset_path, split: str | None, default: str) -> tuple[list[Sample], str, Dataset]:
    """The samples to calibrate or evaluate on, the split's name, and the dataset read.

    A dataset with its own splits gives ``split`` (else ``default``). A dataset without splits gives the
    run's saved split of that name (``split.json``, written by ``hier fit`` on that dataset) when every
    image of it is in the dataset, else all of its images (a dataset the run never saw). ``dataset_path``
    may be a dataset already read.
    """
    dataset = dataset_path if isinstance(dataset_path, Dataset) else read_dataset(dataset_path)
    name = split or default
    if name == CALIBRATION:  # a dataset's own, or the part `hier fit` held out of the training images
        samples, _ = _calibration_part(run_dir, dataset)
        if samples is not None:
            return samples, name, dataset
    if dataset.has_splits:
        return dataset.split(name), name, dataset
    saved = saved_split(runs.read_split(run_dir), dataset, name) if name != "all" else None
    if saved is not None:
        return saved, name, dataset
    if split not in (None, "all"):
        raise InputError(f"no split {split!r}: the dataset has no splits and the run saved none of that name "
                         "(leave out --split to use all of it)", path=dataset.root)
    return dataset.samples, "all", dataset


@dataclass
class CalibrationParts:
    """The images ``hier calibrate`` certifies thresholds on, and those it fits the temperature on."""

    certify: list[Sample]
    certify_name: str
    temperature: list[Sample]
    temperature_name: str
    warning: str | None  # why the promise is weaker than it could be, when it is
    dataset: Dataset


def calibration_parts(run_dir: Path, dataset_path, split: str | None, val_split: str) -> CalibrationParts:
    """Thresholds on the calibration part (or ``split``), the temperature on the run's validation split.

    The validation split chose the best epoch already; the temperature, fitted there too, is part of
    the model fixed before the calibration images are looked at. Where there is no validation split
    apart from the images to certify on (``split`` is it, or a dataset the run never saw), the images
    are halved at random (seeded): the temperature on one half, the thresholds on the other. A run
    without a calibration part (written before it existed) certifies on its validation split, with a
    warning.
    """
    warning = None
    dataset = read_dataset(dataset_path)
    if split is None:
        samples, name = _calibration_part(run_dir, dataset)
        if samples is None:
            samples, name, _ = held_out_split(run_dir, dataset, None, val_split)
        if name == val_split:  # not data the run never saw ("all")
            warning = (
                f"this run has no calibration part (fitted before hier kept one apart), so the thresholds "
                f"are certified on the {name} split, which also chose the best epoch: the promise is "
                "weaker than stated; refit the run, or give held-out data: hier calibrate RUN DATASET"
            )
    else:
        samples, name, _ = held_out_split(run_dir, dataset, split, val_split)
    if name != val_split:
        try:
            tuned, tuned_name, _ = held_out_split(run_dir, dataset, val_split, val_split)
            if tuned_name == val_split and not {s.path for s in tuned} & {s.path for s in samples}:
                return CalibrationParts(samples, name, tuned, tuned_name, warning, dataset)
        except InputError:
            pass  # no validation split in this dataset: halve the images below
    # a seeded random half, not a stratified one: singleton classes would all land on one side
    order = np.random.default_rng(0).permutation(len(samples))
    ordered = sorted(samples, key=lambda s: str(s.path))
    half = [ordered[k] for k in order[: len(samples) // 2]], [ordered[k] for k in order[len(samples) // 2:]]
    return CalibrationParts(half[1], f"{name} (half)", half[0], f"{name} (other half)", warning, dataset)


def _calibration_part(run_dir: Path, dataset: Dataset) -> tuple[list[Sample] | None, str]:
    """The dataset's own calib split, else the run's saved one (``split.json``); None when neither exists."""
    if CALIBRATION in dataset.splits:
        return dataset.splits[CALIBRATION], CALIBRATION
    return saved_split(runs.read_split(run_dir), dataset, CALIBRATION), CALIBRATION
