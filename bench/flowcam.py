"""More real data must not make hier worse: the full FlowCam set, long-tailed, scored under three class mixes.

    python bench/flowcam.py --images FLOWCAM/data/images [--out runs/flowcam] [--runs NAME...]

FLOWCAM is the repository ai4os-hub/phyto-plankton-classification at commit de0bf0b9 (337,567 images, 95 classes,
107 to 8,800 per class; ../shared/data/flowcam-README.md says how to fetch it). The 3,800 reserved files listed in
../shared/data/flowcam-reserved.txt (images 61 to 100 of each class in file-name order) are the project's
independent check: this benchmark drops them before anything else and uses them for nothing.

The split, seeded, per class, in file-name order (the folders are hard links under OUT/data: ``sample`` and
``tail``, each with train, val, calib and test, and ``balanced/test``):
- images 1 to 60: the shared sample (../shared/data/phytoplankton), always in training;
- images 61 to 100: reserved, dropped;
- from the rest, shuffled with seed 0: ``balanced``, 20 per class (half the rest where fewer than 40 remain),
  then, from what is left, 10 % more training images (the long tail), 2 % ``val`` (the temperature and the
  best epoch), 3 % ``calib`` (the thresholds) and 3 % ``test``: the last three with the training mix.
Three scores on images none of the runs saw: (a) ``test``, the training mix; (b) ``balanced``, every class alike;
(c) ``balanced`` weighed as a mix where each class's share is inverse to its training images (the rare classes
upweighted: ``hier evaluate --reweight``).

Runs (every setting the defaults but the ones named; views 1 to keep the feature pass at one per image):
- ``sample``: the shared sample alone (60 per class), what hier's real-data figures come from;
- ``tail``: the sample and the long tail, plain cross-entropy, probabilities for the training mix;
- ``tail-uniform``: the same, probabilities for the uniform mix (``--prior uniform``: the post-hoc correction);
- ``tail-la``: trained with logit adjustment (``--long-tail logit_adjust``), probabilities for the uniform mix;
each calibrated on ``calib`` twice, the marginal promise and ``--per-class``.

    python bench/flowcam.py --images FLOWCAM/data/images --full [--out runs/flowcam]

``--full``: the whole set less the reserved files (OUT/data/full, hard links), split by ``hier fit`` itself (seeded,
stratified 80/10/10, a tenth of the training part held out for calibration: OUT/full-classifier/split.json), then
hier's default head (views 1, features kept: ``feature_cache=file``), ``hier calibrate`` and ``hier evaluate``; and
on the same frozen features, the peers: scikit-learn logistic regression (standardised features) and EcoTaxa's
recipe (PCA to 50, RandomForest of 300 trees, at least 5 images a leaf, balanced class weights; each tree on a
bootstrap of 50,000 images, since 300 full-size trees of 95 classes do not fit in 24 GiB), their class
probabilities summed up the tree, calibrated and answered by hier's own code. Wall time and peak memory of every
stage; table in OUT/full-table.md, plot in OUT/full.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import link

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESERVED = SHARED / "flowcam-reserved.txt"
TAXONOMY_CSV = SHARED / "phytoplankton" / "taxonomy.csv"
SAMPLE, RESERVED_END, BALANCED = 60, 100, 20
FRACTIONS = {"train": 0.10, "val": 0.02, "calib": 0.03, "test": 0.03}
RUNS = {
    "sample": ("sample", []),
    "tail": ("tail", []),
    "tail-uniform": ("tail", ["--prior", "uniform"]),
    "tail-la": ("tail", ["--long-tail", "logit_adjust", "--prior", "uniform"]),
}
COMMON = ["--set", "views=1", "--set", "calibration_fraction=0.0"]


def hier(*args: str, out: Path | None = None) -> dict:
    """Runs one hier command; its wall time and peak memory (the process's own, from wait4)."""
    command = [sys.executable, "-m", "hier.cli", *map(str, args)]
    print("$ hier " + " ".join(map(str, args)), flush=True)
    start = time.perf_counter()
    with (out.open("w") if out else open(os.devnull, "w")) as sink, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=sink, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            sys.exit(f"failed ({code}): {err.read()[-3000:]}")
    figures = {"seconds": time.perf_counter() - start, "peak_gib": usage.ru_maxrss / 2**20}
    print(f"  {figures['seconds']:.0f} s, peak {figures['peak_gib']:.2f} GiB", flush=True)
    return figures


def reserved_names() -> set[str]:
    """The reserved files as CLASS/FILE.jpg."""
    return {line.strip().split("data/images/", 1)[-1] for line in RESERVED.read_text().splitlines() if line.strip()}


def taxonomy_file(out: Path) -> Path:
    taxonomy = out / "taxonomy.json"
    if not taxonomy.is_file():
        out.mkdir(parents=True, exist_ok=True)
        hier("taxo", "build", "--source", "csv", TAXONOMY_CSV, "--rank-columns",
             "kingdom,phylum,class,order,family,genus,species", "--label-column", "folder", "-o", taxonomy)
    return taxonomy


def build_split(images: Path, data: Path) -> dict[str, Counter]:
    """The folders of the split (see the module's docstring); returns the images per class of each part."""
    reserved = reserved_names()
    parts: dict[str, dict[str, list[Path]]] = {p: {} for p in ("sample", "tail", "balanced", "val", "calib", "test")}
    dropped = 0
    rng = random.Random(0)
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        kept = [f for f in files if f"{folder.name}/{f.name}" not in reserved]
        dropped += len(files) - len(kept)
        assert [f.name for f in files[SAMPLE:RESERVED_END]] == sorted(
            f.name for f in files if f"{folder.name}/{f.name}" in reserved), f"{folder.name}: reserved files differ"
        rest = files[RESERVED_END:]
        rng.shuffle(rest)
        balanced = BALANCED if len(rest) >= 2 * BALANCED else len(rest) // 2
        parts["sample"][folder.name] = files[:SAMPLE]
        parts["balanced"][folder.name] = rest[:balanced]
        left, start = rest[balanced:], 0
        for name, fraction in FRACTIONS.items():
            count = round(fraction * len(left))
            parts["tail" if name == "train" else name][folder.name] = left[start:start + count]
            start += count
    print(f"reserved files dropped: {dropped} (of {len(reserved)} listed); none is used")
    layout = {"sample": {"train": ["sample"], "val": ["val"], "calib": ["calib"], "test": ["test"]},
              "tail": {"train": ["sample", "tail"], "val": ["val"], "calib": ["calib"], "test": ["test"]},
              "balanced": {"test": ["balanced"]}}
    counts = {}
    for dataset, splits in layout.items():
        for split, sources in splits.items():
            files = [f for s in sources for per_class in parts[s].values() for f in per_class]
            if not (data / dataset / split).is_dir():
                link(files, data / dataset / split)
            counts[f"{dataset}/{split}"] = Counter(f.parent.name for f in files)
    return counts


def rare_mix(train: Counter, path: Path) -> None:
    """Each class's share inverse to its training images: the rare classes upweighted."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "proportion"])
        for name, n in sorted(train.items()):
            writer.writerow([name, 1 / n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="FLOWCAM/data/images")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "flowcam")
    parser.add_argument("--runs", nargs="*", default=list(RUNS))
    parser.add_argument("--full", action="store_true", help="the whole set, hier's default head and the peers")
    args = parser.parse_args()
    if not RESERVED.is_file():
        sys.exit(f"{RESERVED} is absent: without the list of reserved files the split cannot leave them out")
    out = args.out
    if args.full:
        from _flowcam_full import full

        return full(args.images, out, reserved_names(), taxonomy_file(out), hier)
    counts = build_split(args.images, out / "data")
    for part, per_class in counts.items():
        print(f"{part:16} {sum(per_class.values()):7d} images, {min(per_class.values())} to "
              f"{max(per_class.values())} per class")
    taxonomy = taxonomy_file(out)
    rare = out / "rare-mix.csv"
    rare_mix(counts["tail/train"], rare)
    for name in args.runs:
        dataset, options = RUNS[name]
        run, data = out / name, out / "data" / dataset
        if not (run / "model.safetensors").is_file():
            hier("fit", data, "--taxonomy", taxonomy, *COMMON, *options, "--out", run, "--force")
        for promise in ("marginal", "per-class"):
            hier("calibrate", run, data, "--split", "calib", *(["--per-class"] if promise == "per-class" else []))
            balanced = out / "data" / "balanced"
            for mix, extra in (("test", [data]), ("balanced", [balanced]), ("rare", [balanced, "--reweight", rare])):
                hier("evaluate", run, *extra, "--split", "test", "--confidence", "0.9", "--json",
                     out=out / f"{name}-{promise}-{mix}.json")
    table(out, args.runs)


def table(out: Path, names: list[str]) -> None:
    """The figures of every evaluation, as a Markdown table (docs/results.md); the worst class is the one most
    surely short of 0.9 (lowest Clopper-Pearson upper bound of its fraction correct), as hier evaluate names it."""
    from hier.metrics.bounds import most_surely_short

    print("\n| run | promise | mix | leaf acc | balanced acc | correct @0.9 | depth @0.9 | genus or deeper @0.9 "
          "| worst class @0.9 |\n|---|---|---|---:|---:|---:|---:|---:|---|")
    for name in names:
        for promise in ("marginal", "per-class"):
            for mix in ("test", "balanced", "rare"):
                r = json.loads((out / f"{name}-{promise}-{mix}.json").read_text())
                per_class = r["per_class_at_confidence"]
                correct = {c: round(f["correct"] * f["images"]) for c, f in per_class.items()}
                worst = most_surely_short(list(per_class), correct.get, lambda c: per_class[c]["images"])
                w = per_class[worst]
                print(f"| {name} | {promise} | {mix} | {r['leaf_accuracy']:.3f} | {r['balanced_accuracy']:.3f} | "
                      f"{r['correct_at_confidence']:.3f} | {r['mean_depth_at_confidence']:.2f} | "
                      f"{r['genus_or_deeper_at_confidence']:.1%} | {worst.split('>')[-1]} "
                      f"{round(w['correct'] * w['images'])}/{w['images']} |")

if __name__ == "__main__":
    main()
