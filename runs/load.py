"""A trained run, loaded: the network its config builds, with its final weights (else the last checkpoint), its
probabilities for the run's class prior."""

from __future__ import annotations

from pathlib import Path

import torch

from hier.core.errors import InputError
from hier.taxo import Taxonomy

from .layout import CONFIG, LAST, TAXONOMY, WEIGHTS, check_run_dir, load_checkpoint, read_config
from .model import build_model
from .prior import prior_shift


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, taxonomy, config) from a run: final weights, else the last checkpoint."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = check_run_dir(run_dir)
    config = read_config(run_dir)
    taxonomy = Taxonomy.load(run_dir / TAXONOMY)
    try:
        model, _ = build_model(config, taxonomy, load_weights=False)
    except InputError as e:  # an edited config.yaml: say which file holds the setting
        raise InputError(str(e), path=run_dir / CONFIG) from None
    weights = run_dir / WEIGHTS
    if weights.is_file():
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as e:
            raise InputError(f"cannot read weights ({e})", path=weights) from None
    else:
        state = load_checkpoint(run_dir / LAST)["model"]
    _load_state(model, state, weights if weights.is_file() else run_dir / LAST)
    model.prior_shift = prior_shift(run_dir, model.head, taxonomy, config)
    return model.to(device).eval(), taxonomy, config


def _load_state(model: torch.nn.Module, state: dict, origin: Path) -> None:
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and expected[k].shape != v.shape]
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if wrong or missing or extra:
        detail = f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}" \
            if wrong else f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise InputError(f"the weights do not fit this run's head, backbone and taxonomy ({detail})", path=origin)
    model.load_state_dict(state)
