"""``hier fit``: parse the flags, resolve the config, call the library."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from hier.core.errors import InputError

console = Console(stderr=True)
WEIGHTS_HELP = ("Backbone weights: DEFAULT (downloaded through torchvision or timm when online and not cached), "
                "a weights name such as IMAGENET1K_V2, a local file, or none. Default: the backbone's own "
                "(efficientnet_lite0: ImageNet weights installed with pip).")

_TRAIN_STAGES = typer.Option(None, min=0, help="Train the frozen backbone's last N stages with the head "
                                               "(default: 2 up to 10,000 training images, else 0).")
_LONG_TAIL = typer.Option(None, "--long-tail", help="none, or logit_adjust: train on the scores plus log(training "
                                                    "prior), for long-tailed data (docs/training.md).")
_PRIOR = typer.Option(None, "--prior", help="The class mix the probabilities are for: train (default), uniform, "
                                            "or a CSV/JSON file of proportions per leaf (docs/training.md).")


def _names(kind: str):
    def complete(incomplete: str) -> list[str]:
        from hier.plugins import get_plugins

        return get_plugins().registry(kind).names(f"{incomplete}*")

    return complete


def _settings(dataset: Path | None, resume: Path | None, out: Path | None, config: Path | None, flags: dict,
              sets: list[str]) -> tuple[Path, dict, Path]:
    """The dataset, resolved config and run directory: a new run's, or those recorded in the run resumed."""
    from hier import runs
    from hier.runs import config as cfg

    if resume is None:
        resolved = cfg.resolve_config(config_file=config, flags=flags, sets=sets)
        return (dataset or Path("."), resolved,
                out or Path("runs") / f"{resolved['head']}-{time.strftime('%Y%m%d-%H%M%S')}")
    base = runs.read_config(runs.check_run_dir(resume))
    recorded = Path(base["dataset"]) if base.get("dataset") else Path(".")
    return dataset or recorded, cfg.resolve_config(config_file=config, flags=flags, sets=sets, base=base), resume


def fit(
    dataset: Optional[Path] = typer.Argument(None, help="Class folders, an EcoTaxa export, or a CSV of paths and "
                                                        "labels (default: the current folder; with --resume, the "
                                                        "run's own)."),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", "-t",
                                            help="hier-taxonomy JSON (not with --resume). Default: "
                                                 "DATASET/taxonomy.json, else the lineage of an EcoTaxa export, "
                                                 "else WordNet's tree of wnid class folders."),
    head: Optional[str] = typer.Option(None, help="Registered head name (see `hier heads`).",
                                       autocompletion=_names("heads")),
    loss: Optional[str] = typer.Option(None, help="Registered loss (default: the head's own).",
                                       autocompletion=_names("losses")),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config file."),
    set_: List[str] = typer.Option([], "--set", help="key=value, dotted for options (head_options.margin=0.3)."),
    backbone: Optional[str] = typer.Option(None, help="Registered backbone (see `hier backbones`).",
                                           autocompletion=_names("backbones")),
    weights: Optional[str] = typer.Option(None, help=WEIGHTS_HELP),
    offline: bool = typer.Option(False, "--offline", help="Never download weights (also HIER_OFFLINE=1)."),
    freeze_backbone: Optional[bool] = typer.Option(None, "--freeze-backbone/--finetune", help="Freeze the "
                                                   "backbone, or train it (default: frozen with pretrained weights)."),
    train_stages: Optional[int] = _TRAIN_STAGES,
    epochs: Optional[int] = typer.Option(None, min=1),
    batch_size: Optional[int] = typer.Option(None, min=1),
    image_size: Optional[int] = typer.Option(None, min=8),
    device: Optional[str] = typer.Option(None, help="auto, cpu or cuda."),
    runtime: Optional[str] = typer.Option(None, help="Where the frozen backbone runs on the CPU: auto (OpenVINO, "
                                                     "else ONNX Runtime, else torch), torch, onnxruntime, openvino."),
    long_tail: Optional[str] = _LONG_TAIL,
    prior: Optional[str] = _PRIOR,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/HEAD-TIME)."),
    resume: Optional[Path] = typer.Option(None, help="Continue this run directory from its last checkpoint."),
    force: bool = typer.Option(False, help="Replace an existing run directory."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
):
    """Train a head on a dataset; writes a run directory (config, metrics, checkpoints, weights).

    By default on frozen ImageNet features of EfficientNet-Lite0 (from pip), with its last 2 stages on up to
    10,000 training images (docs/training.md); --backbone smallcnn trains a small CNN from scratch instead.

    Examples: hier fit synth/ --taxonomy synth/taxonomy.json --head arcface-multihead --epochs 5 -o runs/demo ·
    cd synth && hier fit --head arcface-multihead   (the dataset is ., its taxonomy ./taxonomy.json)
    """
    if offline:
        os.environ["HIER_OFFLINE"] = "1"  # read where weights are fetched, and by torchrun's other processes
    from hier.runs import config as cfg

    flags = {"head": head, "loss": loss, "backbone": backbone, "weights": weights, "freeze_backbone": freeze_backbone,
             "train_stages": train_stages, "epochs": epochs, "batch_size": batch_size, "image_size": image_size,
             "device": device, "runtime": runtime, "long_tail": long_tail, "prior": prior}
    if resume is not None and taxonomy is not None:
        raise InputError("--resume uses the run's own taxonomy; drop --taxonomy", where="--taxonomy")
    dataset, resolved, run_dir = _settings(dataset, resume, out, config, flags, set_)
    if print_config:
        typer.echo(cfg.dump(resolved), nl=False)
        return
    from hier.train.fit import fit as run_fit

    run_fit(dataset, taxonomy, resolved, run_dir, resume=resume is not None, force=force, console=console)
    console.print(f"run written to {run_dir}; next: hier calibrate {run_dir} · hier predict {run_dir} IMAGES "
                  f"--confidence 0.9 · hier evaluate {run_dir} {dataset}")
