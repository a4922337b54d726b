"""Where backbone weights come from: a local file, torchvision's or timm's download cache, or a download.

Downloads go through the libraries' own mechanisms (torchvision's weights enums into the torch hub
cache, timm's pretrained configs into the Hugging Face cache), with their progress bars. Offline
(``hier fit --offline`` or ``HIER_OFFLINE=1``) nothing is downloaded: weights already in those caches
load, and missing ones are one line naming the file and where to put it.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import torch
from torch import nn

from hier.core.errors import InputError, first_line

# What torch.load raises, besides pickle.UnpicklingError, on a truncated, damaged or foreign file.
TORCH_LOAD_ERRORS = (OSError, EOFError, RuntimeError, ValueError, KeyError, IndexError, struct.error, AssertionError)


def offline() -> bool:
    return os.environ.get("HIER_OFFLINE", "") not in ("", "0")


def looks_like_path(value: str) -> bool:
    return "/" in value or value.endswith((".pt", ".pth", ".safetensors", ".bin")) or Path(value).exists()


def read_state(path: str | os.PathLike) -> dict:
    """A state dict from a torch checkpoint or a safetensors file (``{"state_dict": ...}`` unwrapped)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError("no such weights file", path=path)
    try:
        state = load_file(str(path)) if path.suffix == ".safetensors" else \
            torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, *TORCH_LOAD_ERRORS) as e:
        raise InputError(f"cannot read weights ({type(e).__name__}: {first_line(e, 200)})", path=path) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"not a state dict of weights (holds a {type(state).__name__})", path=path)
    return state


def load_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load a local state dict into ``module``, strictly."""
    try:
        module.load_state_dict(read_state(path))
    except RuntimeError as e:
        raise InputError(f"weights do not fit the backbone ({first_line(e, 200)})", path=path) from None


def torchvision_weights(name: str, choice: str):
    """The weights enum ``choice`` (``DEFAULT`` or a name such as ``IMAGENET1K_V2``) of a torchvision model."""
    from torchvision import models

    options = models.get_model_weights(name)
    try:
        return options.DEFAULT if choice.upper() == "DEFAULT" else options[choice.upper()]
    except KeyError:
        raise InputError(f"no weights {choice!r} for {name} (choices: DEFAULT, "
                         f"{', '.join(w.name for w in options)}, a file path, or none)", where="--weights") from None


def torchvision_state(name: str, enum) -> dict:
    """The state dict of ``name``'s weights enum: from the torch hub cache, else downloaded (when online)."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    if cached.is_file():
        return read_state(cached)
    if offline():
        raise InputError(f"{name} weights {enum.name} are not on this machine and hier is offline; download "
                         f"{enum.url} to {cached}, or pass --weights PATH", where="--weights")
    try:
        return enum.get_state_dict(progress=True)  # torchvision's download into the torch hub cache
    except OSError as e:  # URLError and socket errors are OSErrors
        raise InputError(f"cannot download {name} weights {enum.name} ({first_line(e)}); download {enum.url} "
                         f"to {cached} by hand, or pass --weights PATH", where="--weights") from None


def timm_pretrained(model_name: str) -> nn.Module:
    """A timm model with its pretrained weights, from the Hugging Face cache or downloaded (when online)."""
    import timm
    from huggingface_hub import constants

    was_offline = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = was_offline or offline()  # offline: fail at once, not after the hub client's retries
    try:
        return timm.create_model(model_name, pretrained=True, num_classes=0)
    except OSError as e:  # the hub client's "not in the cache" and connection errors
        cfg = timm.models.get_pretrained_cfg(model_name)
        where = getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None) or model_name
        state = "hier is offline" if offline() else f"the download failed ({first_line(e)})"
        raise InputError(f"timm weights for {model_name} ({where}) are not in the Hugging Face cache and {state}; "
                         "download them once with internet (HF_HOME sets the cache), or pass --weights PATH",
                         where="--weights") from None
    finally:
        constants.HF_HUB_OFFLINE = was_offline
