"""`hier fit` against a bare hand-written PyTorch loop: same model, data, batch size and transforms.

The bare loop is what a researcher writes: a DataLoader over the images, forward, loss,
backward, step. `hier fit` adds its global-batch sampler, progress bars, gradient clipping,
schedule, validation and checkpoints; only training throughput is compared (images/s over
the epochs after the first), alternating the two, best of the rounds.

    python bench/fit_overhead.py [--images 1500] [--image-size 48] [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, synthetic


def bare_loop(data: Path, config: dict, epochs: int) -> float:
    """Images per second of a plain loop over epochs 2..N."""
    from hier.data.images import ImageDataset, build_transform, collate_skipping
    from hier.data.labels import resolve_labels, targets
    from hier.data.readers import read_dataset
    from hier.runs.model import build_model
    from hier.taxo import Taxonomy

    taxonomy = Taxonomy.load(data / "taxonomy.json")
    dataset = read_dataset(data)
    train = dataset.split("train")
    torch.manual_seed(0)
    model, loss_fn = build_model(config, taxonomy)
    images = ImageDataset(train, targets(train, resolve_labels(dataset, taxonomy)),
                          build_transform(config["image_size"], train=True))
    loader = torch.utils.data.DataLoader(images, batch_size=config["batch_size"], shuffle=True,
                                         collate_fn=collate_skipping)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    model.train()
    seen, elapsed = 0, 0.0
    for epoch in range(epochs):
        start, count = time.perf_counter(), 0
        for x, t in loader:
            loss = loss_fn(model(x, t), t)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            count += len(t)
        if epoch:
            seen, elapsed = seen + count, elapsed + time.perf_counter() - start
    return seen / elapsed


def hier_fit(data: Path, config: dict, run_dir: Path) -> float:
    from hier.train.fit import fit

    fit(data, data / "taxonomy.json", config, run_dir)
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))[1:]
    # images/s in metrics.csv is the training time of each epoch; weight epochs by their time
    seconds = sum(float(r["seconds"]) for r in rows)
    return sum(float(r["images_per_s"]) * float(r["seconds"]) for r in rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from hier.runs.config import resolve_config

    data = synthetic(args.images, args.image_size)
    config = resolve_config(flags={"head": "classifier", "backbone": "smallcnn", "epochs": args.epochs,
                                   "image_size": args.image_size, "batch_size": 64},
                            sets=["grad_clip=0", "channels_last=false"])
    work = Path(tempfile.mkdtemp(prefix="hier-bench-fit-"))
    bare, ours = [], []
    for r in range(args.rounds):
        bare.append(bare_loop(data, config, args.epochs))
        ours.append(hier_fit(data, config, work / f"run{r}"))
    print(f"fit overhead: classifier on smallcnn, {args.images} images at {args.image_size}px, batch 64, "
          f"{args.epochs} epochs, best of {args.rounds}; {machine()}")
    print(f"{'bare PyTorch loop':20} {max(bare):8.1f} images/s   (rounds: {', '.join(f'{b:.1f}' for b in bare)})")
    print(f"{'hier fit':20} {max(ours):8.1f} images/s   (rounds: {', '.join(f'{o:.1f}' for o in ours)})")
    print(f"hier fit / bare loop: {max(ours) / max(bare):.3f}")


if __name__ == "__main__":
    main()
