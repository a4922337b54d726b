"""Built-in backbones: a small CNN for CPU work and torchvision models by name.

A backbone factory returns ``(module, num_features)``; the module maps images [B, 3, H, W]
to features [B, num_features]. Weights come from local files only: a path (torchvision
checkpoint or safetensors), a torchvision weights enum already in the torch cache, or none.
"""

from __future__ import annotations

from pathlib import Path

from hier.core.errors import InputError
from hier.plugins.hookspecs import hookimpl

TORCHVISION = {
    "resnet18": "ResNet-18 (11M parameters, 512 features)",
    "resnet50": "ResNet-50 (25M parameters, 2048 features)",
    "efficientnet_v2_s": "EfficientNetV2-S, the method notes' backbone (1280 features)",
    "efficientnet_b0": "EfficientNet-B0 (1280 features)",
    "convnext_tiny": "ConvNeXt-Tiny (768 features)",
    "mobilenet_v3_small": "MobileNetV3-Small (1024 features)",
    "mobilenet_v3_large": "MobileNetV3-Large (1280 features)",
}


def small_cnn(weights=None, *, width: int = 32, depth: int = 4):
    """Small CNN for CPU work: ``depth`` conv-BN-ReLU blocks, doubling width, global average pool."""
    import torch.nn as nn

    layers, channels = [], 3
    for block in range(depth):
        out = width * 2**block
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2) if block < depth - 1 else nn.Identity()]
        channels = out
    module = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if weights not in (None, "none"):
        load_weights(module, weights)
    return module, channels


def torchvision_backbone(name: str, weights=None):
    """A torchvision classification model with its last linear layer removed."""
    import torch.nn as nn
    from torchvision import models

    enum_name = weights if isinstance(weights, str) and not _looks_like_path(weights) and weights != "none" else None
    model = models.get_model(name, weights=None)
    if enum_name is not None:
        model.load_state_dict(_cached_torchvision_weights(name, enum_name))
    elif weights not in (None, "none"):
        load_weights(model, weights)
    parent, attr, linear = _last_linear(model)
    setattr(parent, attr, nn.Identity())
    return model, linear.in_features


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.endswith((".pt", ".pth", ".safetensors", ".bin")) or Path(value).exists()


def _last_linear(model):
    import torch.nn as nn

    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name, module
    name, linear = found
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return parent, name.rsplit(".", 1)[-1], linear


def _cached_torchvision_weights(name: str, enum_name: str):
    """The state dict of a torchvision weights enum, from the torch cache only (never downloads)."""
    import torch
    from torchvision import models

    try:
        enum = models.get_model_weights(name)[enum_name.upper()] if enum_name.upper() != "DEFAULT" \
            else models.get_model_weights(name).DEFAULT
    except KeyError:
        choices = ", ".join(w.name for w in models.get_model_weights(name))
        raise InputError(f"no weights {enum_name!r} for {name} (choices: {choices}, a file path, or none)",
                         where="--weights") from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    if not cached.exists():
        raise InputError(f"{name} weights {enum.name} are not on this machine and hier does not download; "
                         f"put {Path(enum.url).name} at {cached} or pass --weights PATH", where="--weights")
    return torch.load(cached, map_location="cpu", weights_only=True)


def load_weights(module, path) -> None:
    """Load a local state dict (torch checkpoint or safetensors) into ``module``, strictly."""
    import pickle

    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from hier.train.runs import TORCH_LOAD_ERRORS, first_line

    path = Path(path)
    if not path.is_file():
        raise InputError("no such weights file", path=path)
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, *TORCH_LOAD_ERRORS) as e:
        raise InputError(f"cannot read weights ({type(e).__name__}: {first_line(e, 200)})", path=path) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"not a state dict of weights (holds a {type(state).__name__})", path=path)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise InputError(f"weights do not fit the backbone ({first_line(e, 200)})", path=path) from None


@hookimpl
def register_backbones(register):
    register("smallcnn", small_cnn)
    for name, help in TORCHVISION.items():
        register(name, lambda weights=None, _name=name: torchvision_backbone(_name, weights), help=help)
