"""The CPU runtimes give eager torch's features (real plankton images, the real Lite0 weights), their export is
cached and rebuilt when the backbone changes, and without them hier falls back to torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from hier.backbones import runtime as rt
from hier.backbones.lite import PREPROCESS, efficientnet_lite0
from hier.core.errors import InputError
from hier.data.images import build_transform, load_image
from hier.plugins import create_backbone

IMAGES = Path(__file__).parents[2] / "data" / "demo" / "images"
SIZE = 160
INSTALLED = [name for name in ("onnxruntime", "openvino") if name in rt.available_runtimes()]
needs_a_runtime = pytest.mark.skipif(not INSTALLED, reason="neither openvino nor onnxruntime is installed "
                                                           "(pip install hier[openvino,onnx])")


@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0("DEFAULT")[0].eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Nine real plankton images: an odd batch, so that no runtime may assume the export's batch size."""
    transform = build_transform(SIZE, train=False, mean=PREPROCESS["mean"], std=PREPROCESS["std"],
                                interpolation=PREPROCESS["interpolation"])
    return torch.stack([transform(load_image(p)) for p in sorted(IMAGES.glob("*/*.jpg"))[::97][:9]])


@pytest.mark.parametrize("runtime", INSTALLED)
@pytest.mark.parametrize("channels_last", [False, True])
def test_features_equal_eager(lite0, images, runtime, channels_last, tmp_path):
    with torch.no_grad():
        expected = lite0(images)
    run = rt.feature_runner(lite0, SIZE, runtime, tmp_path, "lite0")
    batch = images.contiguous(memory_format=torch.channels_last) if channels_last else images
    assert (run(batch) - expected).abs().max() < 1e-4
    assert (run(batch[:1]) - expected[:1]).abs().max() < 1e-4  # a last batch of one


@needs_a_runtime
def test_the_backbone_runner_follows_the_config(lite0, images, tmp_path):
    config = {"backbone": "efficientnet_lite0", "image_size": SIZE, "amp": "auto", "channels_last": True}
    with torch.no_grad():
        expected = lite0(images)
    for runtime in ("torch", "auto", *INSTALLED):
        run = rt.backbone_runner(lite0, {**config, "runtime": runtime}, torch.device("cpu"), tmp_path)
        assert (run(images) - expected).abs().max() < 1e-4, runtime
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.onnx")] == ["efficientnet_lite0"]  # one export, shared


@needs_a_runtime
def test_the_export_is_cached_and_rebuilt_when_the_weights_change(tmp_path):
    backbone = create_backbone("smallcnn", width=8, depth=2)[0].eval()
    run = rt.feature_runner(backbone, 32, INSTALLED[0], tmp_path, "small")
    first = sorted(tmp_path.glob("small-*.onnx"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    rt.feature_runner(backbone, 32, INSTALLED[0], tmp_path, "small")
    assert first[0].stat().st_mtime_ns == stamp  # reused, not written again
    x = torch.randn(3, 3, 32, 32)
    before = run(x)
    with torch.no_grad():
        backbone[0].weight.mul_(2)
    changed = rt.feature_runner(backbone, 32, INSTALLED[0], tmp_path, "small")
    files = sorted(tmp_path.glob("small-*.onnx"))
    assert len(files) == 1 and files != first  # the stale export replaced
    with torch.no_grad():
        assert (changed(x) - backbone(x)).abs().max() < 1e-4
    assert (changed(x) - before).abs().max() > 1e-3


def test_without_the_extras_auto_is_torch_and_a_named_runtime_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    assert rt.resolve_runtime("auto") == ("onnxruntime" if "onnxruntime" in INSTALLED else "torch")
    assert "openvino" not in rt.available_runtimes()
    with pytest.raises(InputError, match=r"pip install hier\[openvino\]"):
        rt.resolve_runtime("openvino")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert rt.resolve_runtime("auto") == "torch" and rt.available_runtimes() == ["torch"]
    with pytest.raises(InputError, match=r"pip install hier\[onnx\]"):
        rt.resolve_runtime("onnxruntime")
    backbone = create_backbone("smallcnn", width=8, depth=2)[0].eval()
    run = rt.backbone_runner(backbone, {"backbone": "smallcnn", "image_size": 32, "runtime": "auto", "amp": "auto",
                                        "channels_last": False}, torch.device("cpu"), None)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(run(x), backbone(x))  # the torch fallback is the module itself


def test_unknown_runtime_and_precision():
    with pytest.raises(InputError, match="one of auto, torch"):
        rt.resolve_runtime("tensorrt")
    with pytest.raises(InputError, match="bf16 with runtime openvino"):
        rt.feature_runner(torch.nn.Identity(), SIZE, "onnxruntime", None, "x", precision="bf16")
