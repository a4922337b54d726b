"""Backbones: real torchvision models, weights from local files only."""

import pytest
import torch

from hier.plugins import create_backbone, list_backbones
from hier.taxo import InputError


def test_builtin_backbones_are_registered():
    assert {"smallcnn", "resnet18", "resnet50", "efficientnet_v2_s", "convnext_tiny",
            "mobilenet_v3_small"} <= set(list_backbones())
    assert list_backbones("resnet*") == ["resnet18", "resnet50"]


def test_smallcnn_features():
    module, features = create_backbone("smallcnn", width=8, depth=3)
    out = module(torch.randn(2, 3, 48, 40))
    assert out.shape == (2, features) and features == 32


@pytest.mark.parametrize("name, features", [("resnet18", 512), ("mobilenet_v3_small", 1024)])
def test_torchvision_backbone_drops_classifier(name, features):
    module, n = create_backbone(name)
    assert n == features
    module.eval()
    assert module(torch.randn(1, 3, 64, 64)).shape == (1, features)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_loads(tmp_path, suffix):
    from torchvision.models import resnet18

    reference = resnet18()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(reference.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    module, _ = create_backbone("resnet18", weights=str(path))
    assert torch.equal(module.conv1.weight, reference.conv1.weight)


def test_weights_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(InputError, match="no weights 'IMAGENET9K' for resnet18"):
        create_backbone("resnet18", weights="IMAGENET9K")
    wrong = tmp_path / "small.pth"
    torch.save(create_backbone("smallcnn", width=4, depth=2)[0].state_dict(), wrong)
    with pytest.raises(InputError, match="small.pth: weights do not fit the backbone"):
        create_backbone("resnet18", weights=str(wrong))
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(wrong.read_bytes()[:100])
    with pytest.raises(InputError, match="cut.pth: cannot read weights"):
        create_backbone("resnet18", weights=str(truncated))


def test_weights_files_that_hold_no_state_dict(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.pth: cannot read weights \(EOFError"):
        create_backbone("smallcnn", weights=str(empty))
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(InputError, match=r"list.pth: not a state dict of weights \(holds a list\)"):
        create_backbone("smallcnn", weights=str(listed))
