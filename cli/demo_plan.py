"""``hier demo``: the whole pipeline as the commands a user would type, on real plankton or synthetic shapes.

The real demo runs on a subset of the phytoplankton sample that ships with hier (``hier/data/demo``:
30 classes x 40 EcoTaxa images, Apache-2.0, see its SOURCE.md), so it works from a pip install with
nothing to download. The library plans the steps and does the work between commands (copying the
data, picking images to predict, reading predictions side by side); ``hier.cli.demo`` prints them and
runs each command.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hier.core.errors import InputError

RANKS = "kingdom,phylum,class,order,family,genus,species"  # the WoRMS rank columns of the sample's taxonomy.csv
# What a demo writes into its folder: what --force may replace.
DEMO_FILES = frozenset({"data", "taxonomy.json", "run", "sample", "sure.csv", "bold.csv", "curve.png",
                        "report.html"})
CONFIDENCES = (0.9, 0.5)


@dataclass
class Step:
    title: str
    args: list[str]  # the hier command: hier ARGS
    before: Callable[[], None] | None = None  # library work the command needs first
    shows_answers: bool = False  # after it: the answers at both confidences, side by side


@dataclass
class Demo:
    steps: list[Step]
    run: Path
    dataset: Path
    sure: Path  # predictions at CONFIDENCES[0]
    bold: Path  # and at CONFIDENCES[1]
    curve: Path
    report: Path  # the page to look through: galleries per answer, mistakes, the tree


def vendored_sample() -> Path:
    """The phytoplankton subset shipped in the package: images/<class>/*.jpg, taxonomy.csv, LICENSE."""
    return Path(str(resources.files("hier.data").joinpath("demo")))


def sample_classes() -> list[str]:
    return sorted(p.name for p in (vendored_sample() / "images").iterdir() if p.is_dir())


def chosen_classes(classes: int | None) -> list[str]:
    """The first ``classes`` class folders of the vendored sample (all of them when None)."""
    names = sample_classes()
    if classes is not None and not 2 <= classes <= len(names):
        raise InputError(f"--classes must be between 2 and {len(names)}, got {classes}")
    return names[:classes]


def copy_sample(dest: Path, names: list[str]) -> None:
    """The vendored images of these classes, the matching taxonomy rows, and the LICENSE."""
    source = vendored_sample()
    for name in names:
        shutil.copytree(source / "images" / name, dest / "images" / name)
    with (source / "taxonomy.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (dest / "taxonomy.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["folder"] in names)
    shutil.copy(source / "LICENSE", dest / "LICENSE")


def copy_held_out(run: Path, dest: Path) -> None:
    """The images of the run's test split (never trained or calibrated on), named ``<true class>__<file>``."""
    test = json.loads((run / "split.json").read_text())["test"]
    dest.mkdir(parents=True)
    for path in map(Path, test):
        shutil.copy(path, dest / f"{path.parent.name}__{path.name}")


def real_demo(out: Path, *, head: str, epochs: int, classes: int | None = None, image_size: int | None = None) -> Demo:
    """Real plankton: the WoRMS taxonomy, a head on frozen pretrained features, calibration, two confidences.

    ``classes`` and ``image_size`` (default: fit's) make a smaller, faster demo."""
    data, taxonomy, run, sample = out / "data", out / "taxonomy.json", out / "run", out / "sample"
    names = chosen_classes(classes)
    demo = Demo([], run, data / "images", out / "sure.csv", out / "bold.csv", out / "curve.png", out / "report.html")
    demo.steps = [
        Step(
            "1. real plankton (EcoTaxa crops, Apache-2.0): its taxonomy from the WoRMS lineage CSV",
            [
                "taxo",
                "build",
                "--source",
                "csv",
                data / "taxonomy.csv",
                "--rank-columns",
                RANKS,
                "--label-column",
                "folder",
                "-o",
                taxonomy,
            ],
            before=lambda: copy_sample(data, names),
        ),
        Step(
            "2. the tree: some labels stop at a genus or a class, beside species under them", ["taxo", "show", taxonomy]
        ),
        Step(
            "3. train a head on ImageNet features of EfficientNet-Lite0 (from pip; its last 2 stages train too, CPU)",
            ["fit", demo.dataset, "--taxonomy", taxonomy, "--head", head, "--epochs", epochs, "--out", run]
            + (["--image-size", image_size] if image_size else []),
        ),
        Step("4. calibrate on the validation split: a confidence becomes a promise", ["calibrate", run]),
        *_predict_steps(demo, sample, before=lambda: copy_held_out(run, sample)),
        Step(
            "6. evaluate on the test split, with the operating curve",
            ["evaluate", run, "--confidence", CONFIDENCES[0], "--plot", demo.curve],
        ),
        Step("7. look through the answers: one page with galleries, mistakes and the tree (open it in a browser)",
             ["report", run, "--confidence", CONFIDENCES[0], "-o", demo.report]),
    ]
    return demo


def synthetic_demo(out: Path, *, head: str, epochs: int, images: int) -> Demo:
    """The synthetic benchmark: shapes whose look follows the taxonomy, 3 species held out of it."""
    data, run, sample = out / "data", out / "run", out / "sample"
    demo = Demo([], run, data, out / "sure.csv", out / "bold.csv", out / "curve.png", out / "report.html")
    demo.steps = [
        Step(
            "1. a synthetic plankton benchmark whose images carry the taxonomy in their pixels",
            ["data", "synth", data, "--images", images, "--size", 48, "--unseen", 3],
        ),
        Step("2. its taxonomy", ["taxo", "show", data / "taxonomy.json", "--depth", 3]),
        Step(
            "3. train a head on ImageNet features of EfficientNet-Lite0 (from pip; its last 2 stages train too, CPU)",
            [
                "fit",
                data,
                "--taxonomy",
                data / "taxonomy.json",
                "--head",
                head,
                "--epochs",
                epochs,
                "--image-size",
                48,
                "--batch-size",
                64,
                "--out",
                run,
            ],
        ),
        Step("4. calibrate: the confidence becomes a promise on held-out images", ["calibrate", run]),
        *_predict_steps(demo, sample, before=lambda: copy_one_per_class(data / "test", sample, classes=10)),
        Step(
            "6. evaluate on the test split, with unseen species and the operating curve",
            ["evaluate", run, data, "--confidence", CONFIDENCES[0], "--plot", demo.curve],
        ),
        Step("7. look through the answers: one page with galleries, mistakes and the tree (open it in a browser)",
             ["report", run, data, "--confidence", CONFIDENCES[0], "-o", demo.report]),
    ]
    return demo


def _predict_steps(demo: Demo, sample: Path, before: Callable[[], None]) -> list[Step]:
    sure, bold = CONFIDENCES
    return [
        Step(
            f"5a. predict held-out images at confidence {sure}",
            ["predict", demo.run, sample, "--confidence", sure, "-o", demo.sure],
            before=before,
        ),
        Step(
            f"5b. the same images at confidence {bold}",
            ["predict", demo.run, sample, "--confidence", bold, "-o", demo.bold],
            shows_answers=True,
        ),
    ]


def copy_one_per_class(split: Path, dest: Path, *, classes: int) -> None:
    """The first image of each of the first ``classes`` class folders, named ``<true class>__<file>``."""
    dest.mkdir(parents=True)
    for folder in sorted(p for p in split.iterdir() if p.is_dir())[:classes]:
        image = min(folder.iterdir())
        shutil.copy(image, dest / f"{folder.name}__{image.name}")


@dataclass
class Answer:
    true_class: str
    node: str
    rank: str
    confidence: float


def read_answers(predictions: Path, taxonomy: Path) -> dict[str, Answer]:
    """Each image's answer in a predictions CSV, by file name, with the answer's rank in the taxonomy."""
    from hier.taxo import Taxonomy

    tree = Taxonomy.load(taxonomy)
    out = {}
    with predictions.open(newline="") as f:
        for row in csv.DictReader(f):
            name = Path(row["path"]).name
            node = tree.index(row["node_id"]) if row["node_id"] else tree.root
            rank = "root" if node == tree.root else tree.ranks[node] or "label"
            out[name] = Answer(name.split("__")[0], row["node_name"], rank, float(row["confidence"] or 0))
    return out


def side_by_side(demo: Demo, *, per_class: int = 1) -> tuple[list[tuple[Answer, Answer]], dict[str, Counter]]:
    """The answers at both confidences for ``per_class`` images of each class, and the ranks answered
    over all predicted images at each confidence."""
    taxonomy = demo.run / "taxonomy.json"
    sure, bold = read_answers(demo.sure, taxonomy), read_answers(demo.bold, taxonomy)
    shown, rows = Counter(), []
    for name in sorted(sure):
        if shown[sure[name].true_class] < per_class:
            shown[sure[name].true_class] += 1
            rows.append((sure[name], bold[name]))
    ranks = {f"{c:g}": Counter(a.rank for a in answers.values()) for c, answers in zip(CONFIDENCES, (sure, bold))}
    return rows, ranks
