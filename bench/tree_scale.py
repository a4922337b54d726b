"""Tree size: time and memory of every loss, head and the decoder on 1k, 10k and 30k-node trees.

Each tree runs in a fresh process of its own, batch 256, CPU:

- every loss: forward + backward on random scores in the first space it takes; targets are 80 % leaves
  and 20 % any node (labels that stop at an inner node);
- every head: ``node_probabilities`` of random scores (the inference path), and a training step
  (the head's forward with targets from embeddings [256, 128], its default loss, backward);
- the decoder at one threshold, the exact operating curve of the batch, and the per-epoch metrics
  (leaf accuracy, balanced accuracy, hierarchical F1 with its LCAs, mistake severity from heights);
- peak memory: the process's peak resident memory above what it held after importing torch, and the
  size of one ``TreeTensors`` against a single dense N x N bool mask.

Trees: WordNet-like random trees (preferential attachment mixed with uniform choice of the parent,
depth at most 18: fan-outs from 1 to a few dozen, leaves at every depth, as in WordNet's noun
hierarchy) of 1,000, 10,000 and 30,000 nodes, and WordNet's own noun tree over the ImageNet-21k wnids
(timm's list of them) where timm and WordNet are on the machine; with that tree, the time of
``hier taxo build --source wordnet --folders DIR`` on empty class folders named by those wnids. The last columns are the growth
ratios 10k/1k and 30k/10k against the node ratios (10x and 3x): linear growth gives about those.
Times are CPU time of the process (one thread), best of several runs: other jobs on a shared
machine barely change them, where wall time would measure who else was running.

    python bench/tree_scale.py [--sizes 1000,10000,30000] [--batch 256] [--repeats 5] [--threads 1] [--no-wordnet]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from _common import seconds

EMBEDDING = 128
IMAGENET21K = "imagenet22k_synsets.txt"  # timm's name for the 21,841 wnids of ImageNet-21k (fall 2011)


def wordnet_like(num_nodes: int, seed: int = 0, max_depth: int = 18):
    """A random tree shaped like WordNet's noun hierarchy: each new node hangs under a node drawn either
    uniformly (deep chains) or in proportion to its children + 1 (hubs with many children)."""
    from hier.taxo import Taxonomy

    rng = np.random.default_rng(seed)
    parent, depth, pool = [-1], [0], [0]  # a node sits in the pool once, plus once per child
    for i in range(1, num_nodes):
        while True:
            p = int(rng.integers(i)) if rng.random() < 0.5 else pool[int(rng.integers(len(pool)))]
            if depth[p] < max_depth:
                break
        parent.append(p)
        depth.append(depth[p] + 1)
        pool += [p, i]
    return Taxonomy([{"id": f"n{i}", "parent": None if p < 0 else f"n{p}"} for i, p in enumerate(parent)])


def imagenet21k_wordnet():
    """WordNet's noun tree over the ImageNet-21k wnids, or None where timm's list or WordNet is missing."""
    try:
        import timm

        from hier.taxo.wordnet import build_wordnet, read_wnids

        path = Path(timm.__file__).parent / "data" / "_info" / IMAGENET21K
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # wnids that are ancestors of others: reported by hier taxo build
            return build_wordnet(read_wnids(path))
    except Exception as e:  # noqa: BLE001 - any missing piece skips this tree, with its reason
        print(f"(no WordNet tree: {e})", file=sys.stderr)
        return None


def taxo_build_times(repeats: int) -> dict | None:
    """`hier taxo build --source wordnet --folders DIR` on empty class folders named by the ImageNet-21k wnids:
    seconds of the whole command, cold (a fresh cache: nltk loads WordNet, the noun index is built) and warm
    (best of ``repeats``: the cached index only), with the taxonomy's size."""
    import tempfile

    try:
        import timm
    except ImportError:
        return None
    wnids = (Path(timm.__file__).parent / "data" / "_info" / IMAGENET21K).read_text().split()
    with tempfile.TemporaryDirectory(prefix="hier-bench-") as tmp:
        for wnid in wnids:
            (Path(tmp) / "data" / wnid).mkdir(parents=True)
        out = Path(tmp) / "taxonomy.json"
        command = [
            sys.executable,
            "-c",
            "from hier.cli.main import run; run()",
            "taxo",
            "build",
            "--source",
            "wordnet",
            "--folders",
            str(Path(tmp) / "data"),
            "-o",
            str(out),
        ]
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}

        def build():
            out.unlink(missing_ok=True)
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(done.stderr)

        cold = seconds(build, 1, warmup=0)
        warm = seconds(build, repeats, warmup=0)
        nodes = json.loads(out.read_text())["nodes"]
    return {"classes": len(wnids), "nodes": len(nodes), "cold_s": cold, "warm_s": warm}


def measure(taxonomy, batch: int, repeats: int) -> dict:
    """ms per item, and memory, for one tree in this process."""
    import resource

    import torch

    from hier.infer.answer import decode
    from hier.infer.curve import operating_curve
    from hier.metrics.hierarchical import summary
    from hier.plugins import create_head, create_loss, list_heads, list_losses
    from hier.tree import TreeTensors

    list_heads(), list_losses()  # the hooks import what they register: not counted below
    start_kib = _rss_kib()
    generator = torch.Generator().manual_seed(0)
    tree = TreeTensors(taxonomy)
    leaf_targets = tree.leaves[torch.randint(tree.num_leaves, (batch,), generator=generator)]
    any_targets = torch.randint(tree.num_nodes, (batch,), generator=generator)
    targets = torch.where(torch.rand(batch, generator=generator) < 0.8, leaf_targets, any_targets)
    times = {}

    def timed(name, step, reset=None):
        def run():
            if reset is not None:
                reset()  # gradients set to None, not accumulated
            step()

        times[name] = 1000 * seconds(run, repeats, clock=time.process_time)

    for name in sorted(list_losses()):
        loss = create_loss(name, taxonomy=taxonomy)
        scores = torch.randn(batch, tree.width(loss.spaces[0]), generator=generator, requires_grad=True)
        timed(
            f"loss {name} ({loss.spaces[0]})",
            partial(_backward, loss, scores, targets),
            partial(setattr, scores, "grad", None),
        )
    embeddings = torch.randn(batch, EMBEDDING, generator=generator)
    for name in sorted(list_heads()):
        head = create_head(name, in_features=EMBEDDING, taxonomy=taxonomy)
        loss = create_loss(head.default_loss, taxonomy=taxonomy)
        scores = torch.randn(batch, tree.width(head.score_space), generator=generator)
        with torch.no_grad():
            timed(f"head {name}: node_probabilities", partial(head.node_probabilities, scores))
        timed(
            f"head {name}: step with {head.default_loss}",
            partial(_backward, loss, embeddings, targets, head),
            head.zero_grad,
        )
    probs = tree.sum_up(torch.randn(batch, tree.num_leaves, generator=generator).mul(3).softmax(-1))
    timed("decode", lambda: decode(probs, 0.5, tree.depth))
    timed("operating curve", lambda: operating_curve(probs, targets, tree))
    timed("metrics (summary)", lambda: summary(probs, targets, tree))
    tree_mib = sum(b.numel() * b.element_size() for b in tree.buffers()) / 2**20
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kib) / 1024
    return {
        "nodes": len(taxonomy),
        "leaves": len(taxonomy.leaves),
        "depth": taxonomy.max_depth,
        "ms": times,
        "tree_mib": tree_mib,
        "dense_mask_mib": len(taxonomy) ** 2 / 2**20,
        "peak_mib": peak_mib,
    }


def _backward(loss, inputs, targets, head=None) -> None:
    """One loss, forward and backward; through the head first when there is one."""
    loss(inputs if head is None else head(inputs, targets), targets).backward()


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def run_one(tree: str, args) -> dict:
    """One tree in a fresh process, so that its peak memory is its own."""
    command = [
        sys.executable,
        __file__,
        "--one",
        tree,
        "--batch",
        str(args.batch),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    sizes = [n for n in names if n != "wordnet"]
    ratio_pairs = list(itertools.pairwise(sizes))
    header = f"{'':46}" + "".join(f"{n:>10}" for n in names)
    header += "".join(f"{f'{b}/{a}':>14}" for a, b in ratio_pairs)
    print(header)

    def row(label, values, fmt):
        line = f"{label:46}" + "".join(f"{fmt(values[n]):>10}" for n in names)
        line += "".join(f"{values[b] / values[a]:>13.1f}x" for a, b in ratio_pairs)
        print(line)

    row("nodes", {n: r["nodes"] for n, r in results.items()}, str)
    shapes = [f"{r['leaves']}/{r['depth']}" for r in results.values()]
    print(f"{'leaves / depth':46}" + "".join(f"{shape:>10}" for shape in shapes))
    for item in results[names[0]]["ms"]:
        row(f"{item} [ms]", {n: r["ms"][item] for n, r in results.items()}, lambda v: f"{v:.2f}")
    row("TreeTensors [MiB]", {n: r["tree_mib"] for n, r in results.items()}, lambda v: f"{v:.2f}")
    row("one dense N x N bool mask [MiB]", {n: r["dense_mask_mib"] for n, r in results.items()}, lambda v: f"{v:.0f}")
    row("peak memory above start [MiB]", {n: r["peak_mib"] for n, r in results.items()}, lambda v: f"{v:.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (1 by default: intra-op threads stall when the cores are shared)",
    )
    parser.add_argument("--no-wordnet", action="store_true", help="skip WordNet's ImageNet-21k tree")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one tree, in this process: a size or 'wordnet'
    args = parser.parse_args(argv)

    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        taxonomy = imagenet21k_wordnet() if args.one == "wordnet" else wordnet_like(int(args.one))
        print(json.dumps(measure(taxonomy, args.batch, args.repeats)))
        return 0

    import torch
    from _common import machine

    torch.set_num_threads(args.threads)
    trees = args.sizes.split(",") + ([] if args.no_wordnet or imagenet21k_wordnet() is None else ["wordnet"])
    results = {}
    for tree in trees:
        results[tree] = run_one(tree, args)
        print(f"  {tree}: done", file=sys.stderr)
    print(f"tree scaling, batch {args.batch}, CPU time, best of {args.repeats}; {machine()}")
    print_table(results)
    build = None if args.no_wordnet else taxo_build_times(args.repeats)
    if build:
        print(
            f"\nhier taxo build --source wordnet --folders DIR: {build['classes']:,} empty class folders "
            f"(ImageNet-21k wnids) -> {build['nodes']:,} nodes; whole command, cold (fresh cache) "
            f"{build['cold_s']:.2f} s, warm (cached index, best of {args.repeats}) {build['warm_s']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
