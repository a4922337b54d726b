"""EfficientNet-Lite0, -1 and -2 with their pip-installed ImageNet weights: the key mapping, real photos classified
right, and the same logits as the author's own model definition (``efficientnet-lite-pytorch``)."""

from __future__ import annotations

import pytest
import torch

from hier.backbones.lite import NATIVE_SIZE, PREPROCESS, efficientnet_lite, efficientnet_lite0, mapped_state, timm_key, weights_file
from hier.core.errors import InputError
from hier.data.images import image_transform

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def classifier():
    """The backbone with its original 1,000-way ImageNet classifier."""
    model, _ = efficientnet_lite0("DEFAULT", num_classes=1000)
    return model.eval()


def photo_batch(photo, size: int) -> torch.Tensor:
    config = {"image_size": size, "augment": False, "keep_size": False, **PREPROCESS}
    return image_transform(config)(torch.from_numpy(photo).permute(2, 0, 1).contiguous())[None]


def imagenet_probabilities(model, photo, size: int = PREPROCESS["input_size"]) -> torch.Tensor:
    with torch.no_grad():
        return model(photo_batch(photo, size)).softmax(-1)[0]


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_real_photos_get_their_imagenet_class(variant):
    from skimage import data  # real photos: a cat (Chelsea) and a cup of coffee

    model = efficientnet_lite(variant, "DEFAULT", num_classes=1000)[0].eval()
    cat = imagenet_probabilities(model, data.chelsea(), NATIVE_SIZE[variant])
    assert int(cat.argmax()) in CATS and float(cat[list(CATS)].sum()) > 0.8
    coffee = imagenet_probabilities(model, data.coffee(), NATIVE_SIZE[variant])
    assert int(coffee.argmax()) == ESPRESSO and float(coffee[ESPRESSO]) > 0.45
    assert model.preprocess["input_size"] == NATIVE_SIZE[variant]


@pytest.mark.parametrize("variant", [1, 2])
def test_the_same_logits_as_the_authors_own_model(variant):
    """The weights' own model (the package ``efficientnet-lite-pytorch``, its author's definition) is the reference."""
    from efficientnet_lite_pytorch import EfficientNet
    from skimage import data

    reference = EfficientNet.from_name(f"efficientnet-lite{variant}")
    reference.load_state_dict(torch.load(weights_file(variant), map_location="cpu", weights_only=True))
    ours = efficientnet_lite(variant, "DEFAULT", num_classes=1000)[0].eval()
    x = torch.cat([photo_batch(data.chelsea(), NATIVE_SIZE[variant]), photo_batch(data.coffee(), NATIVE_SIZE[variant])])
    with torch.no_grad():
        assert (ours(x) - reference.eval()(x)).abs().max() < 1e-3


def test_feature_extractor_gives_the_classifier_inputs(classifier):
    features, width = efficientnet_lite0("DEFAULT")
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert width == 1280 and features.eval()(x).shape == (2, 1280)
        assert torch.allclose(classifier.forward_head(classifier.forward_features(x), pre_logits=True),
                              features(x), atol=1e-5)


def test_keys_are_mapped_rule_by_rule():
    blocks = [(s, i) for s, n in enumerate([1, 2, 2, 3, 3, 4, 1]) for i in range(n)]
    expanded = set(range(1, 16))
    assert timm_key("_conv_stem.weight", blocks, expanded) == "conv_stem.weight"
    assert timm_key("_bn1.running_var", blocks, expanded) == "bn2.running_var"
    assert timm_key("_blocks.0._bn1.weight", blocks, expanded) == "blocks.0.0.bn1.weight"  # no expansion
    assert timm_key("_blocks.0._project_conv.weight", blocks, expanded) == "blocks.0.0.conv_pw.weight"
    assert timm_key("_blocks.8._bn0.weight", blocks, expanded) == "blocks.4.0.bn1.weight"
    assert timm_key("_blocks.15._project_conv.weight", blocks, expanded) == "blocks.6.0.conv_pwl.weight"
    assert timm_key("_fc.bias", blocks, expanded) == "classifier.bias"


def test_a_file_that_does_not_fit_is_named(tmp_path):
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    state["_blocks.3._depthwise_conv.weight"] = torch.zeros(1, 1, 3, 3)
    del state["_conv_head.weight"]
    bad = tmp_path / "lite0.pth"
    torch.save(state, bad)
    with pytest.raises(InputError, match=r"lite0.pth: not EfficientNet-Lite0 weights: _blocks.3._depthwise_conv"):
        efficientnet_lite0(str(bad))
    model, _ = efficientnet_lite0(None)
    with pytest.raises(InputError, match="no weights for conv_head.weight"):
        mapped_state({k: v for k, v in state.items() if k != "_blocks.3._depthwise_conv.weight"}, model, bad)


def test_a_timm_layout_file_loads_too(tmp_path):
    pretrained, _ = efficientnet_lite0("DEFAULT")
    saved = tmp_path / "backbone.pth"
    torch.save(pretrained.state_dict(), saved)
    reloaded, _ = efficientnet_lite0(str(saved))
    assert torch.equal(reloaded.conv_head.weight, pretrained.conv_head.weight)
    with pytest.raises(InputError, match="absent.pth: no such weights file"):
        efficientnet_lite0(str(tmp_path / "absent.pth"))
