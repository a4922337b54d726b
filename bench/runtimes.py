"""Where the backbone runs, side by side in one run: the bare eager forward, hier's feature pass and `hier predict`.

    python bench/runtimes.py [--images 1024] [--predict 1024 4096]

Real plankton JPEGs (../shared/data/phytoplankton, else the 1,200 vendored demo images), EfficientNet-Lite0
with its pip-installed ImageNet weights at 160 px, batch 64, this process's threads. Three tables:
1. hier's frozen-feature pass (`hier fit`'s, decoding included) on each runtime, each in a fresh process;
2. `hier predict` of a Lite0 run in fresh processes at two sizes: steady images/s (the difference of the
   two, which cancels start-up and the runtime's compile) and peak memory of each;
3. the network alone on letterboxed tensors: images/s, max |features - eager's|, and GFLOP/s against the
   cores' f32 peak;
4. where `hier predict`'s time goes per image: decoding and letterboxing on one core, the network on each
   runtime (table 3), and the rest of predict (head, answers, CSV, hand-over between processes) as what is
   left of table 2's steady time.
Ratios are against eager channels-last, what hier ran before the runtimes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, run_predict

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "phytoplankton" / "images"
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "images"
SIZE, BATCH = 160, 64


def chosen(paths: list[Path], count: int) -> list[Path]:
    """``count`` images spread over the classes (every k-th file)."""
    return paths[:: max(1, len(paths) // count)][:count]


def plankton() -> tuple[list[Path], str]:
    if SHARED.is_dir():
        return sorted(SHARED.glob("*/*.jpg")), f"{SHARED} (the shared sample)"
    return sorted(DEMO.glob("*/*.jpg")), f"{DEMO} (../shared is absent: the vendored demo images)"


def peak_gflops() -> tuple[float, str]:
    """The cores' f32 peak from /proc/cpuinfo: cores x clock x FLOP per cycle, 32 where AVX-512 runs on two
    256-bit FMA pipes (AMD Zen 4), 64 with two 512-bit ones (Intel); the note says which was assumed."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    amd, avx512 = "AuthenticAMD" in info, "avx512f" in info
    per_cycle = 64 if avx512 and not amd else 32 if avx512 or "avx2" in info else 16
    cores = len(os.sched_getaffinity(0))
    clock = (sum(mhz) / len(mhz) / 1000) if mhz else 2.5
    return cores * clock * per_cycle, f"{cores} cores x {clock:.2f} GHz x {per_cycle} f32 FLOP/cycle"


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def lite0_gflop() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from hier.backbones.lite import efficientnet_lite0

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        efficientnet_lite0("DEFAULT")[0].eval()(torch.zeros(1, 3, SIZE, SIZE))
    return counter.get_total_flops() / 1e9


def network_table(images: torch.Tensor, work: Path) -> dict[str, float]:
    from hier.backbones import runtime as rt
    from hier.backbones.lite import efficientnet_lite0

    backbone = efficientnet_lite0("DEFAULT")[0].eval()
    with torch.no_grad():
        reference = backbone(images)
    wide = efficientnet_lite0("DEFAULT")[0].eval().to(memory_format=torch.channels_last)
    runners = {"eager, contiguous": lambda x: backbone(x),
               "eager, channels_last (hier before)": lambda x: wide(x.contiguous(memory_format=torch.channels_last))}
    for runtime in rt.available_runtimes()[1:]:
        runners[runtime + " f32"] = rt.feature_runner(backbone, SIZE, runtime, work, "lite0")
    if "openvino" in rt.available_runtimes():
        runners["openvino bf16 (asked for)"] = rt.feature_runner(backbone, SIZE, "openvino", work, "lite0",
                                                                precision="bf16")
    batches = images.split(BATCH)
    rates, flop, (peak, how) = {}, lite0_gflop(), peak_gflops()
    print(f"\n3. the network alone: {len(images)} letterboxed images, batch {BATCH}, best of 3 rounds; "
          f"Lite0 at {SIZE} px is {flop:.3f} GFLOP/image; f32 peak {peak:.0f} GFLOP/s ({how})")
    print(f"{'runtime':36} {'images/s':>9} {'vs hier before':>15} {'GFLOP/s':>8} {'of peak':>8} {'max |diff|':>11}")
    for name, run in runners.items():
        with torch.no_grad():
            diff = (torch.cat([run(b) for b in batches]) - reference).abs().max().item()
            rates[name] = len(images) / min(_timed(lambda: [run(b) for b in batches]) for _ in range(3))
        base = rates.get("eager, channels_last (hier before)", rates[name])
        print(f"{name:36} {rates[name]:9.0f} {rates[name] / base:14.2f}x {rates[name] * flop:8.0f} "
              f"{rates[name] * flop / peak:8.0%} {diff:11.1e}")
    print("(of peak: of the f32 peak; bf16 dot products do twice an f32 FMA's work per cycle, so bf16 can pass it)")
    return rates


def stages_table(paths: list[Path], predict_rates: dict[str, float], network_rates: dict[str, float]) -> None:
    from hier.backbones.lite import PREPROCESS
    from hier.data.images import build_transform, load_image

    transform = build_transform(SIZE, train=False, mean=PREPROCESS["mean"], std=PREPROCESS["std"],
                                interpolation=PREPROCESS["interpolation"])
    sample = chosen(paths, 512)
    decode = min(_timed(lambda: [transform(load_image(p)) for p in sample]) for _ in range(2)) / len(sample) * 1e3
    print(f"\n4. where hier predict's time goes, ms per image: decoding and letterboxing {decode:.2f} ms on one core "
          f"({decode / 2:.2f} ms of wall time with both cores decoding)")
    print(f"{'runtime':14} {'predict':>8} {'network':>8} {'decode/2':>9} {'the rest':>9}")
    for runtime, rate in predict_rates.items():
        network = 1e3 / network_rates[runtime if runtime == "torch" else runtime + " f32"]
        total = 1e3 / rate
        print(f"{runtime:14} {total:8.2f} {network:8.2f} {decode / 2:9.2f} {total - network - decode / 2:9.2f}")
    print("(decoding overlaps the network in DataLoader workers, so the parts can sum to more than the total)")


def feature_pass(runtime: str, count: int) -> None:
    """One runtime's feature pass in this (fresh) process: a warm-up pass (the export, the compile), then the
    timed one; prints images/s and how many images gave features."""
    from hier.backbones.lite import efficientnet_lite0
    from hier.core.progress import Progress
    from hier.data.images import ImageDataset, image_transform
    from hier.runs.config import resolve_config
    from hier.train.features import compute_features

    paths = chosen(plankton()[0], count)
    config = resolve_config(flags={"runtime": runtime})
    backbone = efficientnet_lite0("DEFAULT")[0].eval()
    if runtime == "torch":
        backbone.to(memory_format=torch.channels_last)
    data = ImageDataset(paths, [0] * len(paths), image_transform(config))
    work = Path(tempfile.mkdtemp(prefix="hier-bench-features-"))
    compute_features(backbone, data, config, torch.device("cpu"), Progress(enabled=False), "warm", work)
    start = time.perf_counter()
    features, _ = compute_features(backbone, data, config, torch.device("cpu"), Progress(enabled=False), "bench", work)
    print(f"RESULT {len(paths) / (time.perf_counter() - start):.1f} {len(features)}")
    shutil.rmtree(work, ignore_errors=True)


def feature_pass_table(count: int) -> None:
    from hier.backbones import runtime as rt

    print(f"\n1. hier's frozen-feature pass (decode, letterbox, network; DataLoader workers as hier chooses), "
          f"{count} images, each runtime in a fresh process (warm: its export made)")
    print(f"{'runtime':36} {'images/s':>9} {'vs torch':>9}")
    base = None
    for runtime in rt.available_runtimes():
        done = subprocess.run([sys.executable, __file__, "--feature-pass", runtime, "--images", str(count)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr)
        rate, read = done.stdout.rsplit("RESULT", 1)[1].split()
        assert int(read) == count, f"{runtime}: {read} of {count} images gave features"
        base = base or float(rate)
        print(f"{runtime:36} {float(rate):9.0f} {float(rate) / base:8.2f}x")


def predict_table(paths: list[Path], sizes: list[int], work: Path) -> dict[str, float]:
    from hier.backbones import runtime as rt
    from hier.runs.config import resolve_config
    from hier.train.fit import fit

    train = work / "train"
    for path in paths[::max(1, len(paths) // 120)][:120]:  # a small run: predict's cost is the network's
        (train / path.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(path, train / path.parent.name / path.name)
    taxonomy = work / "taxonomy.json"
    from hier.taxo import Taxonomy

    Taxonomy([{"id": "root", "parent": None}] + [{"id": d.name, "parent": "root"} for d in sorted(train.iterdir())]
             ).save(taxonomy)
    fit(train, taxonomy, resolve_config(flags={"epochs": 1, "runtime": "torch"}, sets=["split_fractions=[0.6,0.2,0.2]",
                                                                                      "calibration_fraction=0.0"]),
        work / "run")
    print(f"\n2. hier predict (a Lite0 run at {SIZE} px, CSV output), fresh processes; steady = "
          f"({sizes[1]} - {sizes[0]}) images over the difference of the two times")
    print(f"{'runtime':14} {'s @' + str(sizes[0]):>9} {'s @' + str(sizes[1]):>9} {'steady img/s':>13} "
          f"{'vs torch':>9} {'peak MiB':>14}")
    folders = {}
    for n in sizes:
        folders[n] = work / f"images{n}"
        folders[n].mkdir()
        for i in range(n):
            os.link(paths[i % len(paths)], folders[n] / f"{i:06d}.jpg")
    base, rates = None, {}
    for runtime in rt.available_runtimes():
        timed = [run_predict(work / "run", folders[n], work / "p.csv", "--runtime", runtime) for n in sizes]
        steady = (sizes[1] - sizes[0]) / (timed[1][0] - timed[0][0])
        base, rates[runtime] = base or steady, steady
        print(f"{runtime:14} {timed[0][0]:9.1f} {timed[1][0]:9.1f} {steady:13.0f} {steady / base:8.2f}x "
              f"{timed[0][1]:6.0f} / {timed[1][1]:.0f}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--predict", type=int, nargs=2, default=[1024, 4096])
    parser.add_argument("--feature-pass", help=argparse.SUPPRESS)  # one runtime, in a fresh process
    args = parser.parse_args()
    if args.feature_pass:
        return feature_pass(args.feature_pass, args.images)
    from hier.backbones.lite import PREPROCESS
    from hier.data.images import build_transform, load_image

    paths, where = plankton()
    print(f"runtimes of the backbone; {machine()}; images: {where}")
    transform = build_transform(SIZE, train=False, mean=PREPROCESS["mean"], std=PREPROCESS["std"],
                                interpolation=PREPROCESS["interpolation"])
    images = torch.stack([transform(load_image(p)) for p in chosen(paths, args.images)[:256]])
    work = Path(tempfile.mkdtemp(prefix="hier-bench-runtimes-"))
    try:
        feature_pass_table(args.images)
        predict_rates = predict_table(paths, args.predict, work)
        network_rates = network_table(images, work)
        network_rates["torch"] = network_rates["eager, channels_last (hier before)"]
        stages_table(paths, predict_rates, network_rates)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
