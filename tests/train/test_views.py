"""The dihedral views in training: the feature pass keeps the 8 views of each training image, a training step
draws one per image, validation and scoring without tta see the image itself, and tta averages the 8."""

from __future__ import annotations

from pathlib import Path

import torch

from hier.core.progress import Progress
from hier.data.images import ImageDataset, image_transform, load_image
from hier.data.views import dihedral_views
from hier.infer.scoring import score_batches
from hier.runs.model import build_model
from hier.train.epoch import Step
from hier.train.features import compute_features

PLANKTON = sorted((Path(__file__).parents[1] / "data" / "phytoplankton").rglob("*.jpg"))[:6]


def test_the_feature_pass_keeps_the_eight_views_and_view_zero_is_the_image(taxonomy, tiny_config, tmp_path):
    config = tiny_config(runtime="torch")
    model, _ = build_model(config, taxonomy)
    images = ImageDataset(PLANKTON, [0] * len(PLANKTON), image_transform(config))
    one, _ = compute_features(model.backbone, images, config, torch.device("cpu"), Progress(enabled=False), "t")
    eight, _ = compute_features(model.backbone, images, config, torch.device("cpu"), Progress(enabled=False), "t",
                                views=8)
    assert one.shape == (6, 16) and eight.shape == (6, 8, 16)
    assert torch.allclose(eight[:, 0], one, atol=1e-5)
    x = torch.stack([images[i][0] for i in range(2)])
    with torch.no_grad():
        by_hand = model.backbone.eval()(dihedral_views(x)[3])  # the third quarter turn of the first two images
    assert torch.allclose(eight[:2, 3], by_hand, atol=1e-5)
    assert not torch.allclose(eight[:, 0], eight[:, 1], atol=1e-3)  # a turned plankton image gives other features


def test_a_training_step_draws_a_view_per_image_and_validation_takes_the_image(taxonomy, tiny_config):
    config = tiny_config()
    model, _ = build_model(config, taxonomy)
    step = Step(model, from_features=True, frozen_backbone=True)
    features = torch.randn(64, 8, 16)
    seen = []
    model.from_features = lambda x, targets=None: seen.append(x) or x  # what the head is given
    step.eval()
    step(features)
    assert torch.equal(seen[-1], features[:, 0])
    step.train()
    torch.manual_seed(0)
    step(features)
    picked = seen[-1]
    rows = [next(v for v in range(8) if torch.equal(picked[i], features[i, v])) for i in range(64)]
    assert len(set(rows)) == 8  # 64 draws reach every view


def test_tta_scores_the_mean_features_of_the_eight_views(taxonomy, tiny_config):
    config = tiny_config(runtime="torch")
    model, _ = build_model(config, taxonomy)
    model.eval()
    plain = list(score_batches(model, PLANKTON, config, torch.device("cpu"), workers=0, batch_size=8))[0][2]
    averaged = list(score_batches(model, PLANKTON, {**config, "tta": True}, torch.device("cpu"), workers=0,
                                  batch_size=8))[0][2]
    x = torch.stack([image_transform(config)(load_image(p)) for p in PLANKTON])
    with torch.no_grad():
        mean_features = model.backbone(dihedral_views(x).flatten(0, 1)).view(8, len(x), -1).mean(0)
        assert torch.allclose(averaged, model.from_features(mean_features), atol=1e-5)
        assert torch.allclose(plain, model.from_features(model.backbone(x)), atol=1e-5)
        assert not torch.allclose(mean_features, model.backbone(x), atol=1e-3)  # the average is not the image's own
