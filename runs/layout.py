"""The run directory's layout: config, taxonomy, metrics, checkpoints and final weights, all written atomically.

Checkpoints hold plain types and tensors only, so they load with ``torch.load(weights_only=True)``;
a file that needs more (a pickled object that could run code) is refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import torch

from hier.backbones.weights import TORCH_LOAD_ERRORS
from hier.core.errors import InputError, first_line, is_number
from hier.core.files import atomic_write_bytes, atomic_write_text, check_replaceable, read_json, read_text
from hier.core.tables import csv_text

from . import config as cfg

CONFIG, TAXONOMY, METRICS, WEIGHTS, CALIBRATION, SPLIT = (
    "config.yaml", "taxonomy.json", "metrics.csv", "model.safetensors", "calibration.json", "split.json")
LAST, BEST = "checkpoints/last.pt", "checkpoints/best.pt"
EVALUATION = "evaluation.json"
PRIOR = "prior.json"  # the training class counts, and a prior file's proportions (hier.runs.prior)
# Everything a run directory holds: what `hier fit --force` may replace.
RUN_FILES = frozenset({CONFIG, TAXONOMY, METRICS, WEIGHTS, CALIBRATION, SPLIT, EVALUATION, PRIOR, "checkpoints",
                       "cache"})


def prepare_run_dir(path: Path, *, force: bool) -> Path:
    """A new, empty run directory; an existing non-empty one is refused unless ``force``."""
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", path=path)
    if check_replaceable(path, force=force, what="the run directory", own=RUN_FILES,
                         hint="continue it with --resume or replace it with --force"):
        shutil.rmtree(path)
    try:
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the run directory ({e.strerror})", path=path) from None
    return path


def check_outside(run_dir: Path, *inputs) -> None:
    """A run directory never is, nor holds, one of the command's inputs (``--force`` would delete it)."""
    target = Path(os.path.abspath(run_dir))
    for given in inputs:
        source = Path(os.path.abspath(given))
        if source == target or target in source.parents:
            raise InputError(f"the run directory would hold the input {given}; choose another -o", path=run_dir)


def run_files(run_dir: str | Path) -> list[Path]:
    """What a run directory holds (files and folders): inputs that no command's output may replace."""
    return [Path(run_dir) / name for name in sorted(RUN_FILES)]


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise InputError("no checkpoint here", path=path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError("refused: the checkpoint holds objects beyond plain types and tensors, which could run "
                         f"code when loaded ({first_line(e)})", path=path) from None
    except TORCH_LOAD_ERRORS as e:
        raise InputError(f"not a readable checkpoint ({type(e).__name__}: {first_line(e)})", path=path) from None


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    if not rows:
        return
    atomic_write_text(run_dir / METRICS, csv_text(rows))


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.csv's rows (numbers); a damaged file is an input error naming it and the line."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    reader = csv.DictReader(io.StringIO(read_text(path)))
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values() or "epoch" not in row:
                raise ValueError("fields missing")
            rows.append({k: float(v) if k != "epoch" else int(v) for k, v in row.items()})
    except (ValueError, csv.Error) as e:
        raise InputError(f"damaged ({e}); the run is damaged or was edited", path=path,
                         where=f"line {reader.line_num}") from None
    return rows


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / CONFIG, cfg.dump(config))


def read_config(run_dir: Path) -> dict:
    """The run's config.yaml, checked: a damaged or older file is an input error naming it and the key."""
    path = Path(run_dir) / CONFIG
    return cfg.check_run_config(cfg.load_config_file(path), path)


def read_split(run_dir: Path) -> dict[str, list[str]] | None:
    """split.json: split name -> image paths; None when absent; anything else an input error naming it."""
    path = Path(run_dir) / SPLIT
    if not path.is_file():
        return None
    data = read_json(path)
    if not (isinstance(data, dict) and all(isinstance(v, list) and all(isinstance(p, str) for p in v)
                                           for v in data.values())):
        raise InputError("expected an object of split name: [image paths]; the run is damaged", path=path)
    return data


def write_prior(run_dir: Path, record: dict) -> None:
    atomic_write_text(run_dir / PRIOR, json.dumps(record, indent=0) + "\n")


def read_prior(run_dir: Path) -> dict | None:
    """prior.json: {"train_counts": {node id: images}, "proportions": {leaf id: proportion} or null}; None when
    absent (a run fitted before hier kept it); anything else an input error naming it."""
    path = Path(run_dir) / PRIOR
    if not path.is_file():
        return None
    data = read_json(path)

    def numbers(value) -> bool:
        return isinstance(value, dict) and all(is_number(v) and v >= 0 for v in value.values())

    if not (isinstance(data, dict) and numbers(data.get("train_counts"))
            and (data.get("proportions") is None or numbers(data["proportions"]))):
        raise InputError("expected {\"train_counts\": {id: count}, \"proportions\": {id: proportion} or null}; "
                         "the run is damaged", path=path)
    return data


def read_evaluation(run_dir: Path) -> dict:
    """evaluation.json, checked: an object whose metrics are numbers (or null)."""
    path = Path(run_dir) / EVALUATION
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object; run hier evaluate again", path=path)
    for key, value in data.items():
        if key.endswith(("accuracy", "f1", "severity", "area", "ece")) and value is not None \
                and not is_number(value):
            raise InputError(f"{key!r} must be a number, got {value!r}; run hier evaluate again", path=path)
    return data


def save_weights(run_dir: Path, model: torch.nn.Module, config: dict) -> None:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"head": config["head"], "backbone": config["backbone"], "config": json.dumps(config)}
    atomic_write_bytes(run_dir / WEIGHTS, save(state, metadata=metadata))


def export_cache(run_dir: str | Path) -> Path | None:
    """Where commands keep the run's backbone exported for a CPU runtime: the run's cache folder, or None
    (export in memory each time) when the run cannot be written, as a shared or read-only run."""
    return Path(run_dir) / "cache" if os.access(run_dir, os.W_OK) else None


def check_run_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("is a file, expected a run directory", path=run_dir)
    if not run_dir.is_dir():
        raise InputError("no such run directory", path=run_dir)
    for name in (CONFIG, TAXONOMY):
        if not (run_dir / name).is_file():
            raise InputError(f"not a hier run directory (no {name})", path=run_dir)
    return run_dir
