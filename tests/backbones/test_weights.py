"""Where weights come from: the torch hub cache, an offline refusal naming the file, timm by name.

Nothing here can reach the internet, so no test downloads: the download itself is torchvision's
(``weights.get_state_dict(progress=True)``) and timm's (the Hugging Face hub client), called as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hier.core.errors import InputError
from hier.plugins import create_backbone


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HIER_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return Path(torch.hub.get_dir()) / "checkpoints"


def test_offline_and_not_cached_names_the_file_and_where_to_put_it(hub):
    with pytest.raises(InputError, match=r"resnet18 weights IMAGENET1K_V1 are not on this machine and hier is "
                                         r"offline; download https://download.pytorch.org/models/"
                                         r"resnet18-f37072fd.pth to .*/checkpoints/resnet18-f37072fd.pth"):
        create_backbone("resnet18", weights="DEFAULT")


def test_cached_weights_load_without_a_download(hub):
    from torchvision import models

    reference = models.get_model("mobilenet_v3_small", weights=None)
    hub.mkdir(parents=True)
    torch.save(reference.state_dict(), hub / Path(models.MobileNet_V3_Small_Weights.IMAGENET1K_V1.url).name)
    module, width = create_backbone("mobilenet_v3_small", weights="IMAGENET1K_V1")
    assert width == 1024
    assert torch.equal(module.features[0][0].weight, reference.features[0][0].weight)
    assert module.preprocess["input_size"] == 224 and module.preprocess["interpolation"] == "bilinear"


def test_unknown_weights_name_lists_the_choices(hub):
    with pytest.raises(InputError, match="no weights 'IMAGENET9K' for resnet18 .*IMAGENET1K_V1"):
        create_backbone("resnet18", weights="IMAGENET9K")


def test_timm_models_by_name(hub):
    module, width = create_backbone("timm:resnet10t", weights="none")
    assert width == 512 and module(torch.rand(1, 3, 64, 64)).shape == (1, 512)
    assert set(module.preprocess) == {"input_size", "mean", "std", "interpolation"}
    with pytest.raises(InputError, match=r"timm has no model 'resnet1000'; did you mean timm:resnet200"):
        create_backbone("timm:resnet1000")
    with pytest.raises(InputError, match=r"timm weights for resnet10t \(timm/resnet10t.*\) are not in the Hugging "
                                         r"Face cache and hier is offline"):
        create_backbone("timm:resnet10t", weights="DEFAULT")
