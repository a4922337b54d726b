"""Head-by-head comparison: every built-in head, a flat softmax baseline and the hierarchical
cross-entropy baseline, trained with the same backbone, budget and seeds, then calibrated and
evaluated, on the synthetic benchmark and on the real phytoplankton sample.

For each dataset and seed, every variant is trained with `hier fit` (smallcnn from scratch,
`--weights none`), calibrated on its validation split with `hier calibrate`, and evaluated on its
test split with `hier evaluate` (synthetic: with the held-out species of `unseen/`). The figures
are read from each run's evaluation.json. Out come one table per dataset (mean ± sample standard
deviation over the seeds) as CSV and Markdown, one CSV of every run, and one plot per dataset:
the operating curves of the first seed, the metrics with their spread.

The synthetic data is generated once per seed (data seed = training seed), so the spread covers
the data as well as the initialisation. The phytoplankton sample has no splits: each run makes
the seeded stratified 0.8/0.1/0.1 split of `hier fit` (split.json), calibrates on its val part
and is evaluated on its test part.

    python bench/compare_heads.py [--quick] [--dataset synth|phyto|both] [--seeds 0,1,2]
        [--epochs N] [--images N] [--image-size PX] [--jobs 2] [--out DIR] [--figures DIR]

A finished run whose config is unchanged is reused, so an interrupted comparison resumes where it
stopped.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from _common import machine

from hier.core.files import atomic_write_bytes, atomic_write_text
from hier.core.tables import csv_text

ROOT = Path(__file__).resolve().parent.parent
PHYTO = ROOT.parent / "shared" / "data" / "phytoplankton"
PHYTO_RANKS = "kingdom,phylum,class,order,family,genus,species"

# name -> (head, loss); None is the head's own default loss (the head's default_config)
VARIANTS = {
    "classifier-ce": ("classifier", None),  # the flat softmax baseline: the classifier's default loss is ce
    "classifier-hxe": ("classifier", "hxe"),  # Bertinetto et al. 2020, the literature's hierarchy-aware loss
    "classifier-soft-labels": ("classifier", "soft-labels"),
    "arcface": ("arcface", None),
    "spheremulti": ("spheremulti", None),
    "spheremultihier": ("spheremultihier", None),
    "arcface-multihead": ("arcface-multihead", None),
}
DEFAULT_VARIANTS = ("classifier-ce", "classifier-hxe", "arcface", "spheremulti", "spheremultihier",
                    "arcface-multihead")
BASELINE = "classifier-ce"

# (evaluation key, header, better): better is +1 higher, -1 lower, 0 neither (a fraction held to C)
COLUMNS = (
    ("leaf_accuracy", "leaf acc", +1),
    ("hierarchical_f1", "hF1", +1),
    ("mistake_severity", "mistake severity", -1),
    ("correct_at_confidence", "correct @0.9", 0),
    ("mean_depth_at_confidence", "depth @0.9", +1),
    ("operating_curve_area", "curve area", +1),
    ("information_recall_at_correct_90", "info recall @90% correct", +1),
)
# where the images of held-out species land at confidence 0.9 (evaluation.json "unseen"); the root
# is an ancestor of everything, so "at a known ancestor" only means something beside the depth
UNSEEN_COLUMNS = (
    ("unseen_at_known_ancestor", "at a known ancestor", +1),
    ("unseen_at_deepest_known", "at the genus", +1),
    ("unseen_in_wrong_leaf", "forced into a wrong leaf", -1),
    ("unseen_mean_depth", "mean depth", 0),
)

# the budget of a full run, measured to fit about an hour on 2 shared CPU cores (docs/results.md)
FULL = {"seeds": [0, 1, 2], "synth_images": 4000, "synth_epochs": 5, "phyto_epochs": 4, "phyto_per_class": 0}
QUICK = {"seeds": [0], "synth_images": 600, "synth_epochs": 1, "phyto_epochs": 1, "phyto_per_class": 12}


@dataclass(frozen=True)
class Job:
    dataset: str  # synth | phyto
    variant: str
    seed: int
    data: str
    taxonomy: str
    run_dir: str
    config: dict
    unseen: str | None


def label(variant: str, config: dict) -> str:
    text = f"{config['head']} + {config['loss']}"
    return f"{text} (flat baseline)" if variant == BASELINE else text


# ---- data ---------------------------------------------------------------------------------------------


def synthetic_data(out: Path, seed: int, images: int, size: int) -> Path:
    """`hier data synth` for one seed, reused when it was made with the same parameters."""
    from hier.data.synth import synthesize

    folder = out / "data" / f"synth-seed{seed}"
    params = {"seed": seed, "images": images, "size": size, "unseen": 3}
    stamp = out / "data" / f"synth-seed{seed}.json"
    if folder.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == params:
        return folder
    stamp.parent.mkdir(parents=True, exist_ok=True)
    result = synthesize(folder, force=True, **params)
    print(f"synthetic data, seed {seed}: {result.split_counts} images, {result.num_classes} classes, "
          f"{result.unseen_images} images of {len(result.held_out)} held-out species")
    atomic_write_text(stamp, json.dumps(params))
    return folder


def phyto_data(out: Path, source: Path, per_class: int) -> tuple[Path, Path]:
    """The phytoplankton images (or links to the first ``per_class`` of each class) and their taxonomy,
    built with `hier taxo build --source csv`."""
    from hier.cli.main import main as hier

    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    taxonomy = folder / "phyto-taxonomy.json"
    code = hier(["taxo", "build", "--source", "csv", str(source / "taxonomy.csv"), "--rank-columns", PHYTO_RANKS,
                 "--label-column", "folder", "-o", str(taxonomy)])
    if code:
        raise SystemExit(code)
    images = source / "images"
    if not per_class:
        return images, taxonomy
    subset = folder / f"phyto-{per_class}-per-class"
    for class_dir in sorted(p for p in images.iterdir() if p.is_dir()):
        (subset / class_dir.name).mkdir(parents=True, exist_ok=True)
        for image in sorted(class_dir.iterdir())[:per_class]:
            link = subset / class_dir.name / image.name
            if not link.exists():
                link.symlink_to(image)
    return subset, taxonomy


# ---- one run: fit, calibrate, evaluate --------------------------------------------------------------------


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_job(job: Job) -> dict:
    """Fit, calibrate and evaluate one variant (or reuse a finished run of the same config); one CSV row."""
    from rich.console import Console

    from hier import runs
    from hier.infer.calibration import calibrate
    from hier.infer.evaluate import EVALUATION, evaluate
    from hier.train.fit import fit

    run_dir = Path(job.run_dir)
    evaluation = run_dir / EVALUATION
    reused = (evaluation.is_file() and (run_dir / runs.CONFIG).is_file()
              and runs.read_config(run_dir) == {**job.config, "dataset": str(Path(job.data).resolve())})
    started = time.perf_counter()
    if reused:
        result = json.loads(evaluation.read_text())
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
            fit(job.data, job.taxonomy, job.config, run_dir, force=True, console=Console(file=log, width=120))
        calibrate(run_dir, split="val", progress=False)
        result = evaluate(run_dir, split="test", confidence=0.9, unseen=job.unseen, progress=False)
    history = runs.read_metrics(run_dir)
    train_s = sum(float(row["seconds"]) for row in history)
    unseen = result.get("unseen") or {}
    return {"dataset": job.dataset, "variant": job.variant, "label": label(job.variant, job.config),
            "seed": job.seed, "split": result["split"], "test_images": result["images"],
            "calibrated": result["calibrated"], "threshold": result["threshold"],
            **{key: result.get(key) for key, _, _ in COLUMNS},
            **{key: unseen.get(key.removeprefix("unseen_")) for key, _, _ in UNSEEN_COLUMNS},
            "unseen_images": unseen.get("images"),
            "epochs": len(history), "train_seconds": round(train_s, 1),
            "train_images_per_s": round(sum(float(r["images_per_s"]) * float(r["seconds"]) for r in history)
                                        / max(train_s, 1e-9), 1),
            "wall_seconds": round(time.perf_counter() - started, 1), "reused": reused, "run_dir": str(run_dir)}


# ---- tables and plots ----------------------------------------------------------------------------------------


def summarise(rows: list[dict], variants: list[str]) -> list[dict]:
    """Per variant, in the given order: mean and sample standard deviation of every column over the seeds."""
    out = []
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        summary = {"variant": variant, "label": mine[0]["label"], "seeds": len(mine)}
        for key, _, _ in COLUMNS + UNSEEN_COLUMNS:
            values = [r[key] for r in mine if r[key] is not None]
            summary[f"{key}_mean"] = statistics.fmean(values) if values else None
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(summary)
    return out


def present_columns(summary: list[dict], columns) -> list[tuple[str, str, int]]:
    return [c for c in columns if any(s[f"{c[0]}_mean"] is not None for s in summary)]


def markdown_tables(summary: list[dict]) -> str:
    """The test-split table, then (when held-out species were evaluated) where they land."""
    tables = [markdown_table(summary, present_columns(summary, COLUMNS))]
    unseen = present_columns(summary, UNSEEN_COLUMNS)
    if unseen:
        tables.append(markdown_table(summary, unseen))
    return "\n".join(tables)


def markdown_table(summary: list[dict], columns) -> str:
    """Mean ± std per cell; the best mean of each column (where higher or lower is better) in bold."""
    best = {}
    for key, _, better in columns:
        means = [s[f"{key}_mean"] for s in summary if s[f"{key}_mean"] is not None]
        if better and means:
            best[key] = max(means) if better > 0 else min(means)
    arrows = {1: " ↑", -1: " ↓", 0: ""}
    lines = ["| head + loss | " + " | ".join(h + arrows[b] for _, h, b in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for s in summary:
        cells = []
        for key, _, _ in columns:
            mean, std = s[f"{key}_mean"], s[f"{key}_std"]
            text = "–" if mean is None else f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")
            cells.append(f"**{text}**" if key in best and mean == best[key] else text)
        lines.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(title: str, rows: list[dict], summary: list[dict], path: Path) -> None:
    """Left: the operating curve of each variant's first seed, its operating point at 0.9 marked.
    Right: the metrics that reward answering deep and right, mean with the spread over the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first_seed = min(r["seed"] for r in rows)
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=110, gridspec_kw={"width_ratios": [1, 1.15]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, s in enumerate(summary):
        run = next(r for r in rows if r["variant"] == s["variant"] and r["seed"] == first_seed)
        result = json.loads((Path(run["run_dir"]) / "evaluation.json").read_text())
        curve = result["operating_curve"]
        style = "--" if s["variant"] == BASELINE else "-"
        curves.plot(curve["information_recall"], curve["correct"], style, color=colours[i % len(colours)],
                    label=f"{s['label']} (mean area {s['operating_curve_area_mean']:.3f})")
        curves.plot(result["information_recall_at_confidence"], result["correct_at_confidence"], "o",
                    color=colours[i % len(colours)])
    curves.axhline(0.9, color="grey", lw=0.8, ls=":")
    curves.set(xlabel="information recall  I(lca) / I(true)", ylabel="fraction correct", xlim=(0, 1),
               ylim=(0, 1.02), title=f"operating curves, seed {first_seed} (dot: calibrated confidence 0.9)")
    curves.grid(alpha=0.3)
    curves.legend(loc="best", fontsize="small")

    shown = [(k, h) for k, h, b in present_columns(summary, COLUMNS) if b > 0 and k != "mean_depth_at_confidence"]
    width = 0.8 / len(summary)
    x = np.arange(len(shown))
    for i, s in enumerate(summary):
        means = [s[f"{k}_mean"] or 0 for k, _ in shown]
        stds = [s[f"{k}_std"] or 0 for k, _ in shown]
        bars.bar(x + (i - (len(summary) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
                 color=colours[i % len(colours)], hatch="//" if s["variant"] == BASELINE else None,
                 label=s["label"])
    bars.set_xticks(x, [textwrap.fill(h, 16) for _, h in shown], fontsize="small")
    seeds = max(s["seeds"] for s in summary)
    bars.set(ylim=(0, 1), ylabel="mean over seeds", title=f"higher is better (error bars: std over {seeds} seeds)")
    bars.grid(alpha=0.3, axis="y")
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


# ---- main ----------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0, 1 epoch, few images (minutes)")
    parser.add_argument("--dataset", choices=("synth", "phyto", "both"), default="both")
    parser.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--epochs", type=int, help="epochs for every run (default: synth 5, phyto 4)")
    parser.add_argument("--images", type=int, help="synthetic train/val/test images (default 4000)")
    parser.add_argument("--phyto-per-class", type=int, help="phytoplankton images per class (default: all 60)")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16, help="smallcnn width (channels of its first block)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, each on cores/jobs threads")
    parser.add_argument("--phyto", type=Path, default=PHYTO, help="the phytoplankton sample")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "compare_heads")
    parser.add_argument("--figures", type=Path, help="where the plots go (default: --out)")
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    return args


def main() -> None:
    args = parse_args()
    budget = QUICK if args.quick else FULL
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else budget["seeds"]
    variants = args.variants.split(",")
    out = args.out.resolve()
    figures = (args.figures or args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    from hier.runs.config import resolve_config

    datasets = ["synth", "phyto"] if args.dataset == "both" else [args.dataset]
    if "phyto" in datasets and not (args.phyto / "taxonomy.csv").is_file():
        print(f"the phytoplankton sample is not at {args.phyto}: that comparison is skipped")
        datasets.remove("phyto")

    jobs = []
    for dataset in datasets:
        epochs = args.epochs or budget[f"{dataset}_epochs"]
        if dataset == "phyto":
            phyto_images, phyto_taxonomy = phyto_data(out, args.phyto, args.phyto_per_class
                                                      if args.phyto_per_class is not None else budget["phyto_per_class"])
        for seed in seeds:
            if dataset == "synth":
                data = synthetic_data(out, seed, args.images or budget["synth_images"], args.image_size)
                taxonomy, unseen = data / "taxonomy.json", str(data / "unseen")
            else:
                data, taxonomy, unseen = phyto_images, phyto_taxonomy, None
            for variant in variants:
                head, loss = VARIANTS[variant]
                config = resolve_config(flags={"head": head, "loss": loss, "backbone": "smallcnn", "weights": "none",
                                               "epochs": epochs, "batch_size": args.batch_size,
                                               "image_size": args.image_size, "seed": seed, "device": "cpu"},
                                        sets=[f"backbone_options.width={args.width}"])
                jobs.append(Job(dataset, variant, seed, str(data), str(taxonomy),
                                str(out / "runs" / dataset / f"{variant}-seed{seed}"), config, unseen))

    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"{len(jobs)} runs, {args.jobs} at a time on {threads} thread(s) each; {machine()}", flush=True)
    started = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        pending = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(pending):
            row = future.result()
            rows.append(row)
            print(f"[{len(rows)}/{len(jobs)} {time.perf_counter() - started:5.0f} s] {row['dataset']} {row['variant']} "
                  f"seed {row['seed']}: leaf acc {row['leaf_accuracy']:.3f}, hF1 {row['hierarchical_f1']:.3f}, "
                  f"curve area {row['operating_curve_area']:.3f}, {row['train_images_per_s']:.0f} img/s"
                  f"{' (reused)' if row['reused'] else ''}", flush=True)

    titles = {"synth": "synthetic plankton benchmark", "phyto": "phytoplankton sample"}
    for dataset in datasets:
        mine = sorted((r for r in rows if r["dataset"] == dataset),
                      key=lambda r: (variants.index(r["variant"]), r["seed"]))
        summary = summarise(mine, variants)
        table = markdown_tables(summary)
        atomic_write_text(out / f"runs_{dataset}.csv", csv_text(mine))
        atomic_write_text(out / f"compare_heads_{dataset}.csv", csv_text(summary))
        atomic_write_text(out / f"compare_heads_{dataset}.md", table)
        plot(f"{titles[dataset]}: smallcnn (width {args.width}) from scratch, {mine[0]['epochs']} epochs, "
                      f"{args.image_size} px, CPU", mine, summary, figures / f"compare_heads_{dataset}.png")
        print(f"\n{titles[dataset]} ({len(seeds)} seed(s), mean ± std; test images per run: "
              f"{mine[0]['test_images']}):\n{table}")
    print(f"{time.perf_counter() - started:.0f} s in all; tables and runs in {out}, plots in {figures}")


if __name__ == "__main__":
    main()
