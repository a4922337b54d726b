"""Runs that ship with hier: ``imagenet-lite0`` answers on any photo with no dataset and no training.

EfficientNet-Lite0's own 1,000-way ImageNet classifier (its weights come with pip) is kept as a flat
``classifier`` head over the leaves of ImageNet-1k's WordNet tree; the head sums the leaf probabilities
up the tree and the decoder answers with the deepest node sure enough, as for any trained run. The run
directory is written on first use into the user cache, from what is installed: nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hier.core.cache import cache_dir
from hier.core.errors import HierError, InputError
from hier.core.files import WRITE_ERRORS, atomic_folder

from . import layout

BUILTIN_RUNS = {
    "imagenet-lite0": "EfficientNet-Lite0's ImageNet-1k classifier on the WordNet tree of its 1,000 classes "
                      "(no training; calibrate it with ImageNet-style folders named by wnid)",
}
# Part of the cached folder's name: a changed recipe writes a new folder instead of reusing a stale one.
RECIPE_VERSION = 1


def builtin_dir(name: str) -> Path:
    return cache_dir() / "runs" / f"{name}-v{RECIPE_VERSION}"


def is_builtin(name: str | Path) -> bool:
    return str(name) in BUILTIN_RUNS


def builtin_run(name: str, console=None) -> Path:
    """The run directory of a built-in run, written into the cache the first time it is asked for."""
    if name not in BUILTIN_RUNS:
        raise InputError(f"no built-in run {name!r}; built-in runs: {', '.join(BUILTIN_RUNS)}")
    target = builtin_dir(name)
    if _whole(target):
        return target
    damaged = target.exists()  # a file of it deleted (a cache cleaner, a user): written again, whole
    if console is not None:
        console.print(f"{'rewriting the damaged' if damaged else 'writing the'} built-in run {name} to {target}"
                      f"{'' if damaged else ' (once)'}")
    try:
        with atomic_folder(target, replace=damaged) as staging:
            _imagenet_lite0(staging)
    except OSError as e:
        if not _whole(target):  # else another process finished it first
            error = HierError if e.errno in WRITE_ERRORS else InputError  # a full disk is not the user's input
            raise error(f"{target}: cannot write the built-in run ({e.strerror or e})") from None
    return target


def _whole(folder: Path) -> bool:
    """Every file a built-in run needs is there."""
    return all((folder / name).is_file() for name in (layout.CONFIG, layout.TAXONOMY, layout.WEIGHTS))


def _imagenet_lite0(folder: Path) -> None:
    from hier.backbones.lite import weights_file
    from hier.backbones.weights import read_state
    from hier.taxo.sources import DEFAULT_WNIDS, wnid_list, wordnet_source
    from hier.taxo.wordnet import read_wnids

    from .config import resolve_config
    from .model import build_model

    taxonomy = wordnet_source(wnids=DEFAULT_WNIDS)
    config = resolve_config(flags={"head": "classifier", "backbone": "efficientnet_lite0", "weights": "DEFAULT",
                                   "image_size": 224})
    config["embedding_size"] = None  # the pretrained classifier reads the pooled features, as it was trained
    model, _ = build_model(config, taxonomy)
    # ImageNet's class index i is the i-th wnid in sorted order; the head has one row per leaf in tree order.
    class_index = {wnid: i for i, wnid in enumerate(read_wnids(wnid_list(DEFAULT_WNIDS)))}
    order = torch.tensor([class_index[taxonomy.ids[leaf]] for leaf in taxonomy.leaves])
    state = read_state(weights_file())
    with torch.no_grad():
        model.head.linear.weight.copy_(state["_fc.weight"][order])
        model.head.linear.bias.copy_(state["_fc.bias"][order])
    layout.write_config(folder, config)
    taxonomy.save(folder / layout.TAXONOMY)
    layout.save_weights(folder, model, config)
