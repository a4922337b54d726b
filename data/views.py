"""The 8 dihedral views of a letterboxed image: its 4 rotations by 90 degrees, each also mirrored.

A plankton crop has no up, down, left or right, so all 8 are the same organism; a frozen backbone's
features of them differ, which makes them free, exact augmentation (no interpolation, no corners
lost, unlike a rotation by any angle) and a test-time average.
"""

from __future__ import annotations

import torch

DIHEDRAL = 8


def dihedral_views(images: torch.Tensor) -> torch.Tensor:
    """[B, C, S, S] -> [8, B, C, S, S]: view 0 is the image itself, 1-3 its rotations by 90, 180 and 270
    degrees, 4-7 those four mirrored left to right."""
    # quarter turns as transposes and flips: the same pixels as rot90, and an ONNX graph can hold them
    upright = images.transpose(-2, -1)
    turned = [images, upright.flip(-2), images.flip(-2).flip(-1), upright.flip(-1)]
    return torch.stack(turned + [view.flip(-1) for view in turned])


def each_view(run, images: torch.Tensor) -> torch.Tensor:
    """``run`` (a batch -> outputs [B, ...]) on each of the 8 views of ``images`` -> [B, 8, ...]. A batch per view:
    a backbone holds one batch's activations at a time, not eight (6.8 GB at 8 x 64 images of 160 px)."""
    return torch.stack([run(view) for view in dihedral_views(images)], 1)
