"""Speed of the confidence decoder (``hier.infer.answer.decode``) against a per-sample Python loop.

One process, one tree (1,000 nodes), 100,000 samples of consistent node probabilities (random leaf
distributions summed up the tree, as the leaf-space heads make them), decoded at one threshold and
at per-sample thresholds. The reference, written out below, walks every node of every sample in
Python: the deepest node whose probability is >= the threshold, ties in depth to the more
probable. It runs on a subset and its time is scaled to all samples; the two must agree on it.
Target: the decoder well under a second for 100,000 samples on CPU.

    python bench/decoder_speed.py [--nodes 1000] [--samples 100000] [--subset 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _common import machine, seconds
from loss_speed import random_tree

from hier.infer.answer import decode
from hier.tree import TreeTensors


def loop_decode(probs: list[list[float]], thresholds: list[float], depth: list[int]) -> list[int]:
    """The decoder as a per-sample loop over the nodes."""
    out = []
    for row, threshold in zip(probs, thresholds):
        best, best_depth, best_p = -1, -1, -1.0
        for node, p in enumerate(row):
            if p >= threshold and (depth[node] > best_depth or (depth[node] == best_depth and p > best_p)):
                best, best_depth, best_p = node, depth[node], p
        out.append(best)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=2000, help="samples the Python loop decodes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (1 by default: intra-op threads stall when the cores are shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)

    taxonomy = random_tree(args.nodes, seed=0)
    tree = TreeTensors(taxonomy)
    leaf_logits = 3 * torch.randn(args.samples, tree.num_leaves, generator=generator)
    probs = torch.cat([tree.sum_up(chunk.softmax(-1)) for chunk in leaf_logits.split(10_000)])
    del leaf_logits
    per_sample = torch.rand(args.samples, generator=generator) * 0.5 + 0.5
    depth = tree.depth

    one_s = seconds(lambda: decode(probs, 0.9, depth), args.repeats, reduce=statistics.median)
    each_s = seconds(lambda: decode(probs, per_sample, depth), args.repeats, reduce=statistics.median)

    subset = probs[:args.subset].tolist()
    depth_list = depth.tolist()
    start = time.perf_counter()
    reference = loop_decode(subset, per_sample[:args.subset].tolist(), depth_list)
    loop_s = (time.perf_counter() - start) * args.samples / args.subset
    agree = reference == decode(probs[:args.subset], per_sample[:args.subset], depth).tolist()
    agree_one = loop_decode(subset, [0.9] * args.subset, depth_list) == decode(probs[:args.subset], 0.9,
                                                                                depth).tolist()

    print(f"decode {args.samples:,} samples over a {len(taxonomy)}-node tree ({tree.num_leaves} leaves, "
          f"depth {taxonomy.max_depth}), median of {args.repeats}; {machine()}")
    print(f"  per-sample Python loop (reference, {args.subset:,} samples scaled)  {loop_s:9.3f} s")
    print(f"  decode, one threshold                                     {one_s:9.3f} s   "
          f"{loop_s / one_s:7.0f}x faster (target < 1 s)")
    print(f"  decode, per-sample thresholds                             {each_s:9.3f} s   "
          f"{loop_s / each_s:7.0f}x faster (target < 1 s)")
    print(f"  agreement with the loop on {args.subset:,} samples: {'yes' if agree and agree_one else 'NO'}")
    return 0 if agree and agree_one else 1


if __name__ == "__main__":
    sys.exit(main())
