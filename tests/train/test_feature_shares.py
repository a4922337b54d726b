"""Under torchrun the feature pass is shared: each process computes and writes its own chunks (here 2 gloo
processes, chunks of one batch), and the chunks equal those of one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

# Run by each process: the pass with chunks of one batch, and which chunks this process computed.
SCRIPT = """
import json, sys, torch
from pathlib import Path
from hier.core.progress import Progress
from hier.data.images import ImageDataset, image_transform
from hier.runs.config import resolve_config
from hier.runs.model import build_model
from hier.taxo import Taxonomy
from hier.train import distributed as dist, features as cache

images, taxonomy, run_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
dist.setup()
cache.CHUNK_BATCHES = 1
computed = []
stream = cache._stream
cache._stream = lambda *a, **k: computed.extend(n.name for n in a[9]) or stream(*a, **k)
config = resolve_config(flags={"backbone": "smallcnn", "image_size": 32, "batch_size": 2}, sets=[
    "weights=none", "backbone_options.width=4", "backbone_options.depth=2", "feature_cache=file", "runtime=torch"])
torch.manual_seed(0)
model, _ = build_model(config, Taxonomy.load(taxonomy))
paths = sorted(Path(images).rglob("*.jpg"))[:10]
data = ImageDataset(paths, [0] * len(paths), image_transform(config))
features, _ = cache.cached_features(model.backbone.eval(), data, config, torch.device("cpu"), run_dir,
                                    Progress(enabled=False), "train")
(run_dir / f"computed-{dist.rank()}.json").write_text(json.dumps(computed))
dist.teardown()
"""


def test_two_processes_share_the_chunks_and_write_the_same_features(taxonomy, tmp_path):
    taxonomy.save(tmp_path / "taxonomy.json")
    args = [str(Path(__file__).parents[1] / "data" / "phytoplankton" / "images"), str(tmp_path / "taxonomy.json")]
    script = tmp_path / "share.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), *args, str(tmp_path / "one")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), *args,
                          str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    alone = json.loads((tmp_path / "one" / "computed-0.json").read_text())
    shares = [json.loads((tmp_path / "two" / f"computed-{r}.json").read_text()) for r in (0, 1)]
    assert len(alone) == 5 and sorted(shares[0] + shares[1]) == sorted(alone)  # every chunk once
    assert len(shares[0]) == 3 and len(shares[1]) == 2
    for name in alone:
        a, b = (torch.load(next((tmp_path / run).glob(f"cache/features-*/{name}")), weights_only=True)
                for run in ("one", "two"))
        assert torch.equal(a["features"], b["features"]) and torch.equal(a["targets"], b["targets"])
