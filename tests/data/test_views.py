"""The 8 dihedral views of an asymmetric image are the 8 distinct transforms, view 0 the image itself."""

import torch

from hier.data.views import DIHEDRAL, dihedral_views


def test_the_eight_views_of_an_asymmetric_image_are_distinct_and_the_group():
    image = torch.arange(16.0).view(1, 1, 4, 4)  # no symmetry: every transform moves some value
    views = dihedral_views(image)
    assert views.shape == (DIHEDRAL, 1, 1, 4, 4) and torch.equal(views[0], image)
    flat = {tuple(v.flatten().tolist()) for v in views}
    assert len(flat) == DIHEDRAL  # eight different images
    corners = {(int(v[0, 0, 0, 0]), int(v[0, 0, 0, -1]), int(v[0, 0, -1, 0]), int(v[0, 0, -1, -1])) for v in views}
    assert len(corners) == DIHEDRAL  # the corner 0 goes to each of the 4 corners, in both orientations
    assert torch.equal(views[1][0, 0], image[0, 0].rot90(1))  # a quarter turn counter-clockwise
    assert torch.equal(views[4][0, 0], image[0, 0].flip(-1))  # the mirror image
    # the group is closed: the views of any view are the same eight images
    assert {tuple(v.flatten().tolist()) for v in dihedral_views(views[5])} == flat


def test_views_keep_batch_and_channels():
    images = torch.rand(3, 3, 8, 8)
    views = dihedral_views(images)
    assert views.shape == (8, 3, 3, 8, 8)
    for k in range(8):
        assert torch.allclose(views[k].sum(dim=(-2, -1)), images.sum(dim=(-2, -1)))  # pixels moved, none lost


def test_the_turns_are_rot90s():
    images = torch.rand(2, 3, 5, 5)
    views = dihedral_views(images)
    for k in range(4):
        assert torch.equal(views[k], images.rot90(k, dims=(-2, -1)))
        assert torch.equal(views[4 + k], images.rot90(k, dims=(-2, -1)).flip(-1))
