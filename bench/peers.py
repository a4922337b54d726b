"""The heads against the peers a plankton ecologist would pick instead, on the same frozen features.

The frozen EfficientNet-Lite0 features (the default backbone, ImageNet weights, 160 px, the
library's own `compute_features` and `cache_key`) of the phytoplankton sample are extracted once
and kept in OUT/features-KEY.pt. Per seed, one stratified train/val/calibration/test split
(0.7/0.1/0.1/0.1) feeds every model:

- every built-in head with its default loss, plus `classifier + hxe` and `classifier + soft-labels`,
  through the library's `fit` (train, best epoch on val), `calibrate` (calibration split) and
  `evaluate` (test split, confidence 0.9). Their backbone pass is a lookup in the feature table
  (the features a frozen backbone gives are the same every time; `check_lookup` compares the lookup
  with the library's own image scoring on every first run);
- flat logistic regression (scikit-learn) on the standardised features, its class probabilities
  summed up the tree, calibrated and decoded by the library's calibration code like a head;
- HiClass LocalClassifierPerParentNode and LocalClassifierPerNode with logistic regression: hard
  predictions only, no stopping at an inner node.

Every model is scored by `hier.metrics` (leaf accuracy, balanced accuracy, hierarchical F1, mistake
severity); the probabilistic ones also by `hier.infer.evaluate.evaluate_probabilities`.

    python bench/peers.py [--seeds 0,1,2] [--epochs N] [--models a,b] [--set key=value]... [--quick]
        [--split val] [--threads 1] [--fresh] [--out DIR] [--figures DIR]

`--split val` scores on the validation split instead of test (for tuning; the test split is never
used to choose anything). Needs ../shared/data/phytoplankton and `pip install hiclass`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
from _common import machine
from _peers import PEERS, SCORED_KEYS, probabilistic_report, run_peer, tables, targets_of, write_figure

ROOT = Path(__file__).resolve().parent.parent
PHYTO = ROOT.parent / "shared" / "data" / "phytoplankton"
RANKS = "kingdom,phylum,class,order,family,genus,species"
SPLITS, FRACTIONS = ("train", "val", "calibration", "test"), (0.7, 0.1, 0.1, 0.1)
HEADS = {  # name -> (head, loss); None: the head's default loss
    "classifier": ("classifier", None),
    "classifier+hxe": ("classifier", "hxe"),
    "classifier+soft-labels": ("classifier", "soft-labels"),
    "arcface": ("arcface", None),
    "spheremulti": ("spheremulti", None),
    "spheremultihier": ("spheremultihier", None),
    "arcface-multihead": ("arcface-multihead", None),
}


@dataclass
class FeatureTable:
    """Backbone features of every image of the sample, by path."""

    row: dict[str, int]
    features: torch.Tensor

    def of(self, paths) -> torch.Tensor:
        return self.features[[self.row[str(p)] for p in paths]]


def feature_table(samples, taxonomy_path: Path, out: Path) -> tuple[FeatureTable, dict]:
    """The features of the sample, computed once by the library and stored as OUT/features-KEY.pt."""
    from hier.core.progress import Progress
    from hier.data.images import ImageDataset, image_transform
    from hier.runs.config import resolve_config
    from hier.runs.model import build_model, with_preprocessing
    from hier.taxo import Taxonomy
    from hier.train.features import cache_key, compute_features

    config = resolve_config(flags={"device": "cpu"})
    model, _ = build_model(config, Taxonomy.load(taxonomy_path))
    config = with_preprocessing(config, model.backbone)
    images = ImageDataset([s.path for s in samples], None, image_transform(config))
    path = out / f"features-{cache_key(images, config)}.pt"
    info_path = path.with_suffix(".json")
    if path.exists():
        features = torch.load(path, weights_only=True)
        info = json.loads(info_path.read_text())
    else:
        start = time.perf_counter()
        with Progress() as progress:
            features, _ = compute_features(model.backbone, images, config, torch.device("cpu"), progress, "sample")
        seconds = time.perf_counter() - start
        if len(features) != len(samples):
            sys.exit(f"{len(samples) - len(features)} images of the sample could not be read")
        torch.save(features, path)
        info = {
            "images": len(samples),
            "seconds": seconds,
            "images_per_s": len(samples) / seconds,
            "backbone": config["backbone"],
            "weights": config["weights"],
            "image_size": config["image_size"],
            "features": features.shape[1],
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
        }
        info_path.write_text(json.dumps(info, indent=1))
    return FeatureTable({str(s.path): i for i, s in enumerate(samples)}, features), info


@contextlib.contextmanager
def backbone_from(table: FeatureTable):
    """fit, calibrate and evaluate take the backbone's output from the table instead of running it."""
    from hier.data.labels import resolve_labels
    from hier.infer.scoring import Scored

    def cached_features(backbone, images, config, device, run_dir, progress, what):
        return table.of(images.paths), images.targets

    @torch.no_grad()
    def score_samples(model, samples, taxonomy, config, device, **_):
        nodes = resolve_labels(samples, taxonomy)
        scores = model.from_features(table.of([s.path for s in samples]).to(device)).float().cpu()
        return Scored(scores, torch.tensor([nodes[s.label] for s in samples]), [])

    with (
        mock.patch("hier.train.fit.cached_features", cached_features),
        mock.patch("hier.infer.calibration.score_samples", score_samples),
        mock.patch("hier.infer.evaluate.score_samples", score_samples),
    ):
        yield


def check_lookup(run_dir: Path, samples, table: FeatureTable) -> float:
    """Largest difference between scores from the table and from the library scoring the images."""
    from hier.infer.scoring import score_samples
    from hier.runs import load_trained

    model, taxonomy, config = load_trained(run_dir)
    real = score_samples(model, samples, taxonomy, config, torch.device("cpu"), workers=0).scores
    with torch.no_grad():
        looked_up = model.from_features(table.of([s.path for s in samples]))
    difference = (real - looked_up).abs().max().item()
    if difference > 1e-3 * max(1.0, real.abs().max().item()):
        sys.exit(f"the feature table does not reproduce the model's scores (difference {difference:.2g})")
    return difference


def write_split(samples, seed: int, out: Path) -> dict[str, Path]:
    """The seed's split as tables: fit.csv (train, val, calib), calibration.csv, test.csv; and its samples."""
    from hier.core.files import atomic_write_text
    from hier.core.tables import csv_text
    from hier.data.splits import stratified_split

    parts = stratified_split(samples, FRACTIONS, seed=seed, names=SPLITS)
    out.mkdir(parents=True, exist_ok=True)
    tables_ = {
        # the calibration rows as fit's own calib part: the heads train on all of train, as the peers do
        "fit": [("train", s) for s in parts["train"]]
        + [("val", s) for s in parts["val"]]
        + [("calib", s) for s in parts["calibration"]],
        "calibration": [(None, s) for s in parts["calibration"]],
        "test": [(None, s) for s in parts["test"]],
        "val": [(None, s) for s in parts["val"]],
    }
    paths = {}
    for name, rows in tables_.items():
        paths[name] = out / f"{name}.csv"
        atomic_write_text(
            paths[name],
            csv_text(
                [{"path": str(s.path), "label": s.label} | ({"split": split} if split else {}) for split, s in rows]
            ),
        )
    return {"files": paths, **parts}


def run_head(name: str, split: dict, seed: int, args, taxonomy_path: Path, table: FeatureTable, out: Path) -> dict:
    """fit, calibrate, evaluate one head; its figures and its answers per rank at 0.9."""
    from hier.infer.calibration import calibrate
    from hier.infer.evaluate import evaluate
    from hier.runs import load_trained
    from hier.runs.calibration import Calibration
    from hier.runs.config import resolve_config
    from hier.train.fit import fit

    head, loss = HEADS[name]
    flags = {"head": head, "loss": loss, "epochs": args.epochs, "seed": seed, "device": "cpu"}
    config = resolve_config(flags=flags, sets=["feature_cache=memory", *args.set])
    run_dir = out / f"seed{seed}" / name
    scored = split["files"][args.split]
    start = time.perf_counter()
    with backbone_from(table):
        fit(split["files"]["fit"], taxonomy_path, config, run_dir, force=True, console=None)
        calibrate(run_dir, progress=False)  # thresholds on the calib part, the temperature on val
        result = evaluate(run_dir, scored, confidence=0.9, progress=False)
    seconds = time.perf_counter() - start
    model, taxonomy, _ = load_trained(run_dir)
    calibration = Calibration.load(run_dir)
    with torch.no_grad():

        def scores(part):
            return model.from_features(table.of([s.path for s in split[part]]))

        report = probabilistic_report(
            scores("calibration"),
            targets_of(split["calibration"], taxonomy),
            scores(args.split),
            targets_of(split[args.split], taxonomy),
            model.node_probabilities,
            taxonomy,
            calibration=calibration,
        )
    for key in ("leaf_accuracy", "hierarchical_f1", "correct_at_confidence"):  # one computation, two routes
        assert abs(report[key] - result[key]) < 1e-6, (name, key, report[key], result[key])
    report["seconds"] = seconds
    if not args.skip_check and seed == args.seeds[0]:
        report["lookup_difference"] = check_lookup(run_dir, split[args.split][:16], table)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="head epochs (default: the config's)")
    parser.add_argument("--models", default=",".join([*HEADS, *PEERS]))
    parser.add_argument("--set", action="append", default=[], help="config key=value for every head")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="the split scored")
    parser.add_argument("--quick", action="store_true", help="seed 0, 2 epochs, classifier and logreg only")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no contention on a shared CPU)")
    parser.add_argument("--fresh", action="store_true", help="run everything again (else finished runs are kept)")
    parser.add_argument("--skip-check", action="store_true", help="skip the lookup-against-images check")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "peers")
    parser.add_argument("--figures", type=Path, default=None, help="write peers_phyto.png here")
    args = parser.parse_args()
    if not (PHYTO / "images").is_dir() or not (PHYTO / "taxonomy.csv").is_file():
        sys.exit(
            f"bench/peers.py needs the phytoplankton sample at {PHYTO} (images/ and taxonomy.csv); it is not there"
        )
    if args.quick:
        args.seeds, args.epochs, args.models = "0", 2, "classifier,logreg"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    unknown = [m for m in models if m not in HEADS and m not in PEERS]
    if unknown:
        sys.exit(f"unknown model {unknown[0]!r}; choose from {', '.join([*HEADS, *PEERS])}")
    args.out.mkdir(parents=True, exist_ok=True)
    from hier.data.readers import read_dataset

    taxonomy_path = args.out / "taxonomy.json"
    taxonomy_path.unlink(missing_ok=True)  # the bench's own output, rebuilt every time
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "hier.cli",
            "taxo",
            "build",
            "--source",
            "csv",
            str(PHYTO / "taxonomy.csv"),
            "--rank-columns",
            RANKS,
            "--label-column",
            "folder",
            "-o",
            str(taxonomy_path),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        sys.exit(built.stderr)
    samples = read_dataset(PHYTO / "images").samples
    table, feature_info = feature_table(samples, taxonomy_path, args.out)
    print(
        f"features: {feature_info['images']} images in {feature_info['seconds']:.0f} s "
        f"({feature_info['images_per_s']:.1f} images/s, measured when first extracted); {machine()}"
    )
    torch.set_num_threads(args.threads)
    rows = run_all(samples, models, args, taxonomy_path, table)
    (args.out / "runs.json").write_text(
        json.dumps({"features": feature_info, "split": args.split, "machine": machine(), "rows": rows}, indent=1)
    )
    markdown = tables(rows, models)
    (args.out / "peers.md").write_text(markdown)
    print(markdown)
    if args.figures:
        write_figure(rows, models, args.figures / "peers_phyto.png")


def run_all(samples, models: list[str], args, taxonomy_path: Path, table: FeatureTable) -> list[dict]:
    """Every (seed, model) run; each finished one is appended to OUT/rows-SPLIT.jsonl and not run again
    (an interrupted bench resumes; --fresh starts over)."""
    done_path = args.out / f"rows-{args.split}.jsonl"
    if args.fresh:
        done_path.unlink(missing_ok=True)
    done = [json.loads(line) for line in done_path.read_text().splitlines()] if done_path.exists() else []
    rows = []
    for seed in args.seeds:
        split = write_split(samples, seed, args.out / f"seed{seed}")
        for name in models:
            report = next((r for r in done if r["model"] == name and r["seed"] == seed), None)
            if report is None:
                if name in HEADS:
                    report = run_head(name, split, seed, args, taxonomy_path, table, args.out)
                else:
                    report = run_peer(name, split, seed, table, taxonomy_path, args.split)
                report = {"model": name, "seed": seed, **report}
                with done_path.open("a") as f:
                    f.write(json.dumps(report) + "\n")
            rows.append(report)
            figures = "  ".join(f"{k} {report[k]:.3f}" for k in SCORED_KEYS if report.get(k) is not None)
            print(f"seed {seed} {name:24} {figures}  {report['seconds']:.1f} s", flush=True)
    return rows


if __name__ == "__main__":
    main()
