"""Cold vs warm WordNet tree build for the 1,000 ImageNet-1k wnids, and the tree it gives.

Cold: a fresh cache folder, so nltk loads WordNet (laying out the system database first when
nltk has no corpus of its own) and the noun hypernym index is built and cached. Warm: a new
process on that cache, which reads only the index. Every run is a process of its own, so
nothing carries over in memory; "build" is the time inside it from importing the module to
the pruned taxonomy, "process" adds the interpreter's start.

    python bench/taxo_build.py [--wnids FILE] [--warm-runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hier.taxo.sources import wnid_list

DEFAULT_WNIDS = wnid_list("imagenet1k")  # the list that ships with hier

RUN = """\
import json, sys, time
start = time.perf_counter()
from hier.taxo.wordnet import build_wordnet, read_wnids
taxonomy = build_wordnet(read_wnids(sys.argv[1]))
print(json.dumps({"build_s": time.perf_counter() - start, "nodes": len(taxonomy), "nltk": "nltk" in sys.modules}))
"""


def timed_run(wnids: Path, cache: str) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN, str(wnids)], env={**os.environ, "XDG_CACHE_HOME": cache},
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr.strip().splitlines()[-1])
    return {**json.loads(done.stdout), "process_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wnids", type=Path, default=DEFAULT_WNIDS)
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hier-bench-cache-") as cache:
        cold = timed_run(args.wnids, cache)
        warm = min((timed_run(args.wnids, cache) for _ in range(args.warm_runs)), key=lambda r: r["build_s"])
        assert not warm["nltk"], "the warm build imported nltk: the cached index was not used"

        os.environ["XDG_CACHE_HOME"] = cache
        from hier.taxo.wordnet import TREES, build_wordnet, read_wnids

        wnids = read_wnids(args.wnids)
        rows = [(tree, prune, build_wordnet(wnids, tree=tree, prune=prune))
                for tree in TREES for prune in (False, True)]

    print(f"WordNet tree for {len(wnids)} wnids ({args.wnids.name}), {sys.platform}, {os.cpu_count()} CPUs")
    print(f"{'':40} {'build':>8} {'process':>8}")
    print(f"{'cold: nltk load + index build, fresh cache':40} {cold['build_s']:7.2f}s {cold['process_s']:7.2f}s")
    print(f"{f'warm: cached index, best of {args.warm_runs}':40} {warm['build_s']:7.2f}s {warm['process_s']:7.2f}s")
    print(f"{'cold / warm':40} {cold['build_s'] / warm['build_s']:7.1f}x {cold['process_s'] / warm['process_s']:7.1f}x")
    print()
    print(f"{'tree':9} {'pruned':6} {'nodes':>6} {'leaves':>6} {'depth':>5}")
    for tree, prune, taxonomy in rows:
        print(f"{tree:9} {'yes' if prune else 'no':6} {len(taxonomy):6d} {len(taxonomy.leaves):6d} "
              f"{taxonomy.max_depth:5d}")


if __name__ == "__main__":
    main()
