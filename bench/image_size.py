"""Which letterbox size suits plankton crops: a linear probe on frozen EfficientNet-Lite0 features.

For each size, the features of the same images (24 per class of the phytoplankton sample in
../shared, 3/4 to train and 1/4 to test, seeded) come from `hier fit`'s feature pass; a multinomial
logistic regression (L-BFGS, L2 1e-3, standardised features) is fitted on the train part and scored
on the test part. It prints the probe's accuracy and the feature pass's speed, side by side.

    python bench/image_size.py [--sizes 96 128 160 224] [--per-class 24]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import machine

PHYTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "phytoplankton" / "images"


def linear_probe(features: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> float:
    x = (features - features[train].mean(0)) / (features[train].std(0) + 1e-6)
    classes = int(labels.max()) + 1
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x[train] @ weight + bias, labels[train]) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(((x[test] @ weight + bias).argmax(1) == labels[test]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 160, 224])
    parser.add_argument("--per-class", type=int, default=24)
    args = parser.parse_args()
    if not PHYTO.is_dir():
        sys.exit(f"{PHYTO} is absent: this benchmark needs the phytoplankton sample")

    from rich.console import Console

    from hier.core.progress import Progress
    from hier.data.images import ImageDataset, image_transform
    from hier.data.readers import images_under
    from hier.plugins import create_backbone
    from hier.runs.config import resolve_config
    from hier.runs.model import with_preprocessing
    from hier.train.features import compute_features

    folders = sorted(p for p in PHYTO.iterdir() if p.is_dir())
    paths, labels = [], []
    for k, folder in enumerate(folders):
        chosen = images_under(folder)[: args.per_class]
        paths += chosen
        labels += [k] * len(chosen)
    labels = torch.tensor(labels)
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(0))
    test, train = order[: len(order) // 4], order[len(order) // 4:]
    backbone, _ = create_backbone("efficientnet_lite0", weights="DEFAULT")
    backbone = backbone.eval().to(memory_format=torch.channels_last)
    print(f"{len(paths)} images, {len(folders)} classes of {PHYTO}; {machine()}; nothing else running")
    print(f"{'size':>5} {'probe top-1':>12} {'feature pass':>14}")
    for size in args.sizes:
        config = with_preprocessing(resolve_config(flags={"image_size": size}), backbone)
        images = ImageDataset(paths, labels, image_transform(config))
        start = time.perf_counter()
        with Progress(console=Console(quiet=True), enabled=False) as progress:
            features, kept = compute_features(backbone, images, config, torch.device("cpu"), progress, "probe")
        rate = len(paths) / (time.perf_counter() - start)
        assert torch.equal(kept, labels), "an image could not be read"
        print(f"{size:5d} {linear_probe(features, labels, train, test):12.3f} {rate:10.0f} img/s")


if __name__ == "__main__":
    main()
