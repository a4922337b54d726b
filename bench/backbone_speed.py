"""The pretrained default on the CPU: `hier fit`'s feature pass and `hier predict` against a bare forward.

Side by side in one run, on the same images (the phytoplankton sample in ../shared when present,
else a synthetic set):
- bare: timm's EfficientNet-Lite0 alone (channels-last, inference mode) over tensors decoded and
  letterboxed beforehand, so it measures the network only;
- fit: the feature cache's first pass of `hier fit` (`hier.train.features.compute_features`: reading,
  decoding, letterboxing and the forward), at each `workers` setting;
- predict: `hier predict` on a run trained on the default (a fresh process, the run's own config),
  at 1,000 and 10,000 images, with its peak resident memory.

    python bench/backbone_speed.py [--image-size 160] [--images 1000] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, run_predict, synthetic

PHYTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "phytoplankton" / "images"


def sample_images(count: int) -> tuple[list[Path], str]:
    from hier.data.readers import images_under

    if PHYTO.is_dir():
        paths = images_under(PHYTO)
        return paths[:: max(1, len(paths) // count)][:count], f"phytoplankton sample ({PHYTO})"
    print(f"note: {PHYTO} is absent; using synthetic images")
    return images_under(synthetic(count, 96))[:count], "synthetic images, 96 px"


def bare_forward(backbone, images: list[torch.Tensor], batch_size: int) -> float:
    """Images/s of the backbone alone over ready tensors."""
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            backbone(torch.stack(images[i:i + batch_size]).contiguous(memory_format=torch.channels_last))
    return len(images) / (time.perf_counter() - start)


def fit_pass(backbone, paths: list[Path], config: dict) -> float:
    """Images/s of `hier fit`'s feature pass, reading the files."""
    from rich.console import Console

    from hier.core.progress import Progress
    from hier.data.images import ImageDataset, image_transform
    from hier.train.features import compute_features

    images = ImageDataset(paths, list(range(len(paths))), image_transform(config))
    start = time.perf_counter()
    with Progress(console=Console(quiet=True), enabled=False) as progress:
        compute_features(backbone, images, config, torch.device("cpu"), progress, "bench")
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--predict-sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()

    from hier.data.images import image_transform, load_image
    from hier.plugins import create_backbone
    from hier.runs.config import resolve_config
    from hier.runs.model import with_preprocessing
    from hier.train.fit import fit

    paths, source = sample_images(args.images)
    backbone, _ = create_backbone("efficientnet_lite0", weights="DEFAULT")
    backbone = backbone.eval().to(memory_format=torch.channels_last)
    config = with_preprocessing(resolve_config(flags={"image_size": args.image_size, "batch_size": args.batch_size}),
                                backbone)
    transform = image_transform(config)
    ready = [transform(load_image(p)) for p in paths]
    print(f"EfficientNet-Lite0 at {args.image_size} px, batch {args.batch_size}, {len(paths)} images of the {source}; "
          f"{machine()}; nothing else running")
    bare_forward(backbone, ready[: args.batch_size], args.batch_size)  # warm-up
    bare = bare_forward(backbone, ready, args.batch_size)
    print(f"{'bare forward (decoded beforehand)':40} {bare:8.1f} img/s")
    for workers in (0, 1, 2):
        ours = fit_pass(backbone, paths, {**config, "workers": workers})
        print(f"{f'hier fit feature pass, workers={workers}':40} {ours:8.1f} img/s   {ours / bare:.2f}x bare")
    del ready

    work = Path(tempfile.mkdtemp(prefix="hier-bench-"))
    try:
        data = synthetic(1000, 96)
        run_dir = work / "run"
        fit(data, data / "taxonomy.json", resolve_config(flags={"epochs": 1, "image_size": args.image_size}), run_dir)
        timed = {}
        for count in args.predict_sizes:
            folder = work / f"images-{count}"
            folder.mkdir()
            for k in range(count):  # the same images as the bare forward, repeated to reach the count
                path = paths[k % len(paths)]
                (folder / f"{k:06d}{path.suffix}").symlink_to(path)
            seconds, peak = run_predict(run_dir, folder, work / f"p{count}.csv")
            timed[count] = seconds
            print(f"{f'hier predict, {count} images':40} {count / seconds:8.1f} img/s   "
                  f"{count / seconds / bare:.2f}x bare   peak {peak:.0f} MiB (the whole process)")
        (small, t_small), (large, t_large) = sorted(timed.items())[0], sorted(timed.items())[-1]
        steady = (large - small) / (t_large - t_small)
        print(f"{'hier predict, steady (start-up excluded)':40} {steady:8.1f} img/s   {steady / bare:.2f}x bare")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
