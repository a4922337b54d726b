"""bench/flowcam.py --full: the whole FlowCam set less the reserved files, hier's default head, and the peers on the
same frozen features (see flowcam.py's docstring)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from _common import link, machine
from _peers import probabilistic_report, summed_up, write_figure

# Published on this data set (or its FlowCam source), cited as theirs and not re-measured here.
PUBLISHED = (
    ("planktonclass (VLIZ), fine-tuned EfficientNetV2 on a GPU, their own split of this data set",
     "0.863 top-1, 0.971 top-3"),
    ("Panaiotis et al. 2026 (ESSD 18:945), FlowCam, 93 classes, fine-tuned EfficientNetV2-S",
     "0.906 accuracy, 0.825 balanced accuracy"),
    ("Panaiotis et al. 2026, EcoTaxa's recipe (CNN features, PCA 50, RandomForest 300)",
     "0.900 accuracy, 0.694 balanced accuracy"),
)
COLUMNS = (("leaf_accuracy", "leaf acc"), ("balanced_accuracy", "balanced acc"), ("hierarchical_f1", "hF1"),
           ("mistake_severity", "mistake severity"), ("correct_at_confidence", "correct @0.9"),
           ("genus_or_deeper_at_confidence", "genus or deeper @0.9"))
RF_BOOTSTRAP = 50_000  # images per tree: 300 trees grown on all 240k images need about 23 GB of node tables


def link_all(images: Path, data: Path, reserved: set[str]) -> tuple[int, int]:
    """Hard links of every image but the reserved ones under ``data``; (kept, dropped)."""
    kept = dropped = 0
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        (data / folder.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(folder.glob("*.jpg")):
            if f"{folder.name}/{f.name}" in reserved:
                dropped += 1
                continue
            kept += 1
            if not (data / folder.name / f.name).exists():
                os.link(f, data / folder.name / f.name)
    return kept, dropped


def stage_times(out: Path) -> dict:
    path = out / "full-times.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record(out: Path, stage: str, figures: dict) -> None:
    times = {**stage_times(out), stage: figures}
    (out / "full-times.json").write_text(json.dumps(times, indent=1))


def split_features(run: Path, out: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(features, node targets) of the run's train, calib and test parts: train from the run's kept feature
    chunks, the others computed once by the library's pass and kept in OUT/full-features-PART.pt."""
    from hier.backbones.device import pick_device
    from hier.core.progress import Progress
    from hier.data.images import ImageDataset, image_transform
    from hier.data.labels import resolve_labels, targets
    from hier.data.readers import read_dataset
    from hier.runs import load_trained, read_split
    from hier.train.features import compute_features

    model, taxonomy, config = load_trained(run)
    (folder,) = (run / "cache").glob("features-train-v1-*")
    chunks = [torch.load(p, weights_only=True) for p in sorted(folder.glob("*.pt"))]
    parts = {"train": (torch.cat([c["features"] for c in chunks]).float(), torch.cat([c["targets"] for c in chunks]))}
    split, dataset = read_split(run), read_dataset(config["dataset"])
    nodes = resolve_labels(dataset, taxonomy)
    by_path = {str(s.path): s for s in dataset.samples}
    for part in ("calib", "test"):
        path = out / f"full-features-{part}.pt"
        if not path.is_file():
            start = time.perf_counter()
            samples = [by_path[p] for p in split[part]]
            images = ImageDataset([s.path for s in samples], torch.as_tensor(targets(samples, nodes)),
                                  image_transform(config))
            with Progress() as progress:
                features = compute_features(model.backbone, images, config, pick_device("cpu"), progress, part,
                                            run / "cache")
            torch.save(features, path)
            record(out, f"features {part}", {"seconds": time.perf_counter() - start, "images": len(samples)})
        parts[part] = torch.load(path, weights_only=True)
    return parts


def run_peer(name: str, parts: dict, taxonomy, out: Path) -> dict:
    """Train one peer on the train part's features; its probabilities calibrated on calib, scored on test."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = parts["train"][0].numpy(), parts["train"][1].numpy()
    start = time.perf_counter()
    if name == "logistic regression":
        # 200 L-BFGS steps: each is about 2 s on 240k x 1,280 features and 95 classes on 2 cores
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200, random_state=0)).fit(x, y)

        def scores(part):
            return torch.as_tensor(model.decision_function(parts[part][0].numpy()), dtype=torch.float32)
    else:  # EcoTaxa's classifier (ecotaxa_back's OurRandomForestClassifier) on PCA-50 of the CNN features
        model = make_pipeline(PCA(50, random_state=0), RandomForestClassifier(
            n_estimators=300, min_samples_leaf=5, class_weight="balanced", max_samples=min(RF_BOOTSTRAP, len(y)),
            n_jobs=os.cpu_count(), random_state=0)).fit(x, y)

        def scores(part):  # log-probabilities as logits, so that the temperature tempers them as a head's
            return torch.as_tensor(np.log(model.predict_proba(parts[part][0].numpy()) + 1e-6), dtype=torch.float32)
    fitted = time.perf_counter() - start
    classes = model.classes_
    report = probabilistic_report(scores("calib"), parts["calib"][1], scores("test"), parts["test"][1],
                                  summed_up(classes, taxonomy), taxonomy)
    record(out, name, {"seconds": fitted, "scored_seconds": time.perf_counter() - start - fitted})
    return report


def full(images: Path, out: Path, reserved: set[str], taxonomy_path: Path, hier) -> None:
    from hier.runs import read_split
    from hier.taxo import Taxonomy

    data, run = out / "data" / "full", out / "full-classifier"
    kept, dropped = link_all(images, data, reserved)
    print(f"{kept} images kept, {dropped} reserved files dropped (of {len(reserved)} listed); none is used")
    if not (run / "model.safetensors").is_file():
        # train_stages=0 is what the default gives at this size; said, so that a smaller trial keeps the features
        record(out, "fit", hier("fit", data, "--taxonomy", taxonomy_path, "--set", "views=1", "--set",
                                "feature_cache=file", "--set", "train_stages=0", "--out", run, "--force"))
    record(out, "calibrate", hier("calibrate", run))
    record(out, "evaluate", hier("evaluate", run, "--confidence", "0.9", "--json", out=out / "full-classifier.json"))
    cruise = out / "data" / "full-test"  # the test part as a folder of images, answered as a cruise would be
    test = [Path(p) for p in read_split(run)["test"]]
    link(test, cruise)
    predicted = hier("predict", run, cruise, "--confidence", "0.9", "-o", out / "full-predict.csv", "--force")
    record(out, "predict", {**predicted, "images_per_s": len(test) / predicted["seconds"]})
    taxonomy = Taxonomy.load(taxonomy_path)
    rows = [{"model": "hier classifier", "seed": 0, **json.loads((out / "full-classifier.json").read_text())}]
    parts = split_features(run, out)
    for name in ("logistic regression", "EcoTaxa PCA-50 + RF-300"):
        rows.append({"model": name, "seed": 0, **run_peer(name, parts, taxonomy, out)})
    (out / "full-results.json").write_text(json.dumps(rows, indent=1))
    table = full_table(rows, stage_times(out), {k: len(v[1]) for k, v in parts.items()})
    (out / "full-table.md").write_text(table)
    print(table)
    write_figure(rows, [r["model"] for r in rows], out / "full.png")


def full_table(rows: list[dict], times: dict, sizes: dict) -> str:
    lines = [f"{machine()}; images: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), "",
             "| model | " + " | ".join(h for _, h in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for r in rows:
        lines.append(f"| {r['model']} | " + " | ".join("-" if r.get(k) is None else f"{r[k]:.3f}"
                                                       for k, _ in COLUMNS) + " |")
    for source, figures in PUBLISHED:
        lines.append(f"| {source} (published) | {figures} |" + " |" * (len(COLUMNS) - 1))
    lines += ["", "| stage | wall | peak memory |", "|---|---:|---:|"]
    for stage, t in times.items():
        peak = f"{t['peak_gib']:.2f} GiB" if "peak_gib" in t else "-"
        rate = f" ({t['images_per_s']:.0f} images/s)" if "images_per_s" in t else ""
        lines.append(f"| {stage} | {t['seconds'] / 60:.1f} min{rate} | {peak} |")
    return "\n".join(lines) + "\n"
