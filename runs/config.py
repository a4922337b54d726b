"""Training configuration: defaults < the head's config file < --config FILE < flags < --set key=value.

Every key is known in advance: an unknown key, a value of the wrong type or out of its range is an
input error that names the source and the key (and a close match), before any work starts. One
check, ``_check``, sees every source: the head's defaults, config files, flags and ``--set``.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from hier.core.errors import InputError
from hier.core.files import read_text

DEFAULTS: dict = {
    "dataset": None,  # recorded by `hier fit`: calibrate and evaluate default to it
    # model
    "head": "classifier",  # chosen by measurement on real plankton (docs/results.md, "Deep and right")
    "head_options": {},
    "loss": None,  # None: the head's default loss
    "loss_options": {},
    "backbone": "efficientnet_lite0",  # ImageNet-pretrained weights that install with pip
    "backbone_options": {},
    "weights": None,  # None: the backbone's default (DEFAULT for efficientnet_lite0); DEFAULT, a name, a file, none
    "freeze_backbone": None,  # None: frozen when pretrained weights are loaded, trained from scratch otherwise
    "backbone_lr": None,  # learning rate of backbone weights that train (None: lr, or lr / 10 for train_stages)
    # the last stages of a frozen EfficientNet trained on their cached input; None: 2 up to 10,000 training images,
    # else 0 (hier.train.fit.SMALL_TRAINING_SPLIT; measured in docs/results.md, "Deep and right")
    "train_stages": None,
    "embedding_size": 128,  # None: no embedding block, the head reads the backbone's features
    "embedding_dropout": 0.2,
    # data
    "image_size": 160,  # letterbox side; plankton crops are small (see docs/training.md)
    "mean": None,  # None: the backbone's own preprocessing, recorded in the run
    "std": None,
    "interpolation": None,
    "keep_size": False,
    "augment": None,  # None: off for a frozen backbone (its features are cached), on when the backbone trains
    # dihedral views per training image in the frozen feature cache (1 or 8; an epoch draws one); None: 8 up to
    # 10,000 training images, else 1
    "views": None,
    "tta": False,  # answer from the mean features of the 8 dihedral views (calibrate, evaluate, predict alike)
    "split_fractions": [0.8, 0.1, 0.1],  # train, val, test, for a dataset without its own splits
    "calibration_fraction": 0.1,  # share of the training images held out for hier calibrate (docs/confidence.md)
    "train_split": "train",
    "val_split": "val",
    "balanced_sampler": False,
    # the long tail (docs/training.md); none stays the default until a long-tailed measurement shows a win
    "long_tail": "none",  # none | logit_adjust: train on scores + long_tail_tau * log(training prior) (Menon 2021)
    "long_tail_tau": 1.0,
    "prior": "train",  # the class mix the probabilities are for: train, uniform, or a CSV/JSON file of proportions
    "workers": None,  # DataLoader processes; None: one per CPU, up to 8
    "feature_cache": "auto",  # auto | memory | file | off; auto caches when the backbone is frozen and augment is off
    # optimisation
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "momentum": 0.9,
    "schedule": "cosine",  # cosine | step | constant
    "warmup_epochs": 0,
    "step_size": 10,
    "gamma": 0.1,
    "grad_clip": 5.0,
    "amp": "auto",  # auto (bf16 on CUDA) | bf16 | off
    "channels_last": True,  # faster convolutions on CPUs and GPUs alike
    "runtime": "auto",  # the CPU runtime of the backbone: auto (openvino, else onnxruntime, else torch) or one of them
    "runtime_precision": "f32",  # bf16: OpenVINO only, twice as fast, features no longer equal to f32's
    "compile": False,
    "seed": 0,
    "deterministic": False,
    "best_metric": "val_hierarchical_f1",
    "decode_rule": "deepest",  # the answer: the deepest node sure enough, or the most informative (Valmadre 2022)
    "early_stopping": 0,  # patience in epochs; 0 = off
    "device": "auto",
}

CHOICES = {
    "optimizer": ("adamw", "sgd"),
    "schedule": ("cosine", "step", "constant"),
    "amp": ("auto", "bf16", "off"),
    "feature_cache": ("auto", "memory", "file", "off"),
    "device": ("auto", "cpu", "cuda"),
    "best_metric": ("val_loss", "val_leaf_accuracy", "val_hierarchical_f1", "val_mistake_severity"),
    "interpolation": ("bilinear", "bicubic", "nearest"),
    "decode_rule": ("deepest", "informative"),
    "runtime": ("auto", "torch", "onnxruntime", "openvino"),
    "runtime_precision": ("f32", "bf16"),
    "views": (1, 8),
    "long_tail": ("none", "logit_adjust"),
}
OPTION_KEYS = ("head_options", "loss_options", "backbone_options")
NULLABLE_TYPES = {"embedding_size": int, "workers": int, "dataset": str, "loss": str, "weights": str,
                  "freeze_backbone": bool, "backbone_lr": float, "train_stages": int, "views": int, "mean": list,
                  "std": list, "interpolation": str, "augment": bool}



def _at_least(low):
    return (lambda v: v >= low), f"at least {low}"


def _above(low):
    return (lambda v: v > low), f"above {low}"


_FRACTION = (lambda v: 0 <= v < 1), "at least 0 and below 1"
# The range of every numeric key (NaN is in none); a list key: what each item must be, and the whole list.
LIMITS = {
    "epochs": _at_least(1), "batch_size": _at_least(1), "image_size": _at_least(8), "embedding_size": _at_least(1),
    "embedding_dropout": _FRACTION, "lr": _above(0), "backbone_lr": _above(0), "weight_decay": _at_least(0),
    "momentum": _FRACTION, "warmup_epochs": _at_least(0), "step_size": _at_least(1), "gamma": _above(0),
    "grad_clip": _at_least(0), "early_stopping": _at_least(0), "workers": _at_least(0),
    "long_tail_tau": _above(0), "train_stages": _at_least(0),
}
LIST_LIMITS = {
    "split_fractions": (lambda v: len(v) == 3 and all(f >= 0 for f in v) and abs(sum(v) - 1) <= 1e-6,
                        "three fractions (train, val, test), each at least 0, that add up to 1"),
    "mean": (lambda v: len(v) == 3, "three numbers, one per channel"),
    "std": (lambda v: len(v) == 3 and all(x > 0 for x in v), "three numbers above 0, one per channel"),
}


def _in_range(key: str, value, origin: str) -> None:
    if key in LIST_LIMITS:
        fits, wanted = LIST_LIMITS[key]
        numbers = all(_type_ok(float, x) and math.isfinite(x) for x in value)
        if not (numbers and fits(value)):
            raise InputError(f"{key!r} must be {wanted}, got {value!r}", path=origin)
    elif key in LIMITS:
        fits, wanted = LIMITS[key]
        if not fits(value):
            raise InputError(f"{key!r} must be {wanted}, got {value!r}", path=origin)
        if not math.isfinite(value):
            raise InputError(f"{key!r} must be a finite number, got {value!r}", path=origin)


def _type_ok(expected: type, value) -> bool:
    if expected is bool or isinstance(value, bool):
        return expected is bool and isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


class _Loader(yaml.SafeLoader):
    """The safe loader, reading '1e-3' as a number (YAML 1.1 wants '1.0e-3'), and refusing aliases: a
    config never needs one, and a few hundred bytes of nested aliases expand to gigabytes (an alias bomb)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"an alias (*{event.anchor}) is not allowed in a hier "
                                              "config; write the value out", event.start_mark)
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def head_defaults(head: str) -> dict:
    """The config ``hier fit --head HEAD`` starts from: the head factory's ``default_config``, or {}.

    Built-in heads and plugins ship it the same way, as a mapping of config keys on the factory.
    """
    from hier.plugins import get_plugins

    defaults = getattr(get_plugins().registry("heads").get(head).factory, "default_config", None)
    if defaults is None:
        return {}
    if not isinstance(defaults, Mapping) or defaults.get("head", head) != head:
        raise InputError(f"the {head} head's default config must be a mapping of config keys whose 'head', "
                         f"if given, is {head!r}")
    return copy.deepcopy(dict(defaults))


def load_config_file(path: str | Path) -> dict:
    try:
        data = _yaml(read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise InputError(f"not valid YAML ({getattr(e, 'problem', None) or e})", path=path, where=where) from None
    except RecursionError:
        raise InputError("nested too deeply to read (not a hier config)", path=path) from None
    if not isinstance(data, dict):
        raise InputError("a config file must be a mapping of key: value", path=path)
    return data


# What a stored run's config.yaml must hold: which network it is. Any other key missing (a run written before
# it existed) takes its default, which is what that older hier did; weights that then do not fit are refused.
RUN_REQUIRED = ("head", "backbone")
# Keys whose default (None) is decided by `hier fit` from the data: a run written before the key existed did this.
BEFORE_THE_KEY = {"views": 1, "train_stages": 0}


def check_run_config(data: dict, path: str | Path) -> dict:
    """A run's stored config, checked as it is read: every key known and of its type (as ``_check`` does for
    any config); a required key missing is an input error naming the file and the key; others default."""
    missing = [key for key in RUN_REQUIRED if key not in data]
    if missing:
        raise InputError(f"no {missing[0]!r} (the run is damaged or was written by another program)", path=path)
    data = _normalise(data)
    _check(data, str(path))
    if data["head"] is None or data["backbone"] is None:
        raise InputError("'head' and 'backbone' must be set", path=path)
    return {**copy.deepcopy(DEFAULTS), **BEFORE_THE_KEY, **data}


def parse_set(items: list[str]) -> dict:
    """``["lr=0.01", "head_options.margin=0.3"]`` -> nested dict; values are read as YAML scalars."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            parsed = _yaml(value) if value else None
        except yaml.YAMLError:
            parsed = value
        target = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = parsed
    return out


def _normalise(layer: dict) -> dict:
    """YAML reads a bare ``off`` as False; for keys with an "off" choice, that is what the user meant."""
    return {k: ("off" if v is False else "on" if v is True else v) if "off" in CHOICES.get(k, ()) else v
            for k, v in layer.items()}


def _check(layer: dict, origin: str) -> None:
    for key, value in layer.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"unknown config key {key!r}{hint}", path=origin)
        if value is None:
            continue
        if key in OPTION_KEYS:
            if not isinstance(value, dict):
                raise InputError(f"{key!r} must be a mapping of option: value", path=origin)
            continue
        expected = NULLABLE_TYPES.get(key) or type(DEFAULTS[key])
        if not _type_ok(expected, value):
            raise InputError(f"{key!r} must be {expected.__name__}, got {value!r}", path=origin)
        if key in CHOICES and value not in CHOICES[key]:
            raise InputError(f"{key!r} must be one of {', '.join(map(str, CHOICES[key]))}, got {value!r}", path=origin)
        _in_range(key, value, origin)


def merge(base: dict, layer: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in layer.items():
        if key in OPTION_KEYS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def resolve_config(*, config_file: str | Path | None = None, flags: dict | None = None,
                   sets: list[str] | None = None, base: dict | None = None) -> dict:
    """The fully resolved config. ``flags`` hold only the options given on the command line."""
    layers: list[tuple[dict, str]] = []
    if config_file is not None:
        layers.append((load_config_file(config_file), str(config_file)))
    if flags:
        layers.append(({k: v for k, v in flags.items() if v is not None}, "command line"))
    if sets:
        layers.append((parse_set(sets), "--set"))
    layers = [(_normalise(layer), origin) for layer, origin in layers]
    for layer, origin in layers:
        _check(layer, origin)
    head = next((layer["head"] for layer, _ in reversed(layers) if "head" in layer), None)
    config = copy.deepcopy(base if base is not None else DEFAULTS)
    if base is None:
        head = head or config["head"]
        defaults = head_defaults(head)
        _check(defaults, f"the {head} head's default config")
        config = merge(config, defaults)
    for layer, _ in layers:
        config = merge(config, layer)
    return _with_backbone_defaults(config)


def _with_backbone_defaults(config: dict) -> dict:
    """Settings left to the backbone: its default weights, then augmentation only when it trains."""
    from hier.plugins import get_plugins

    from .model import backbone_is_frozen

    if config["weights"] is None:
        factory = get_plugins().registry("backbones").get(config["backbone"]).factory
        config["weights"] = getattr(factory, "default_weights", "none")
    if config["augment"] is None:
        config["augment"] = not backbone_is_frozen(config)
    return config


def changed_keys(old: dict, new: dict) -> list[str]:
    """Keys whose value differs between two resolved configs."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
