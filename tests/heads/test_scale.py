"""A 20,000-node tree through every head, loss and the decoder, in less memory than one dense N x N mask
of floats: the tree tensors grow with nodes x depth, not with nodes squared."""

from __future__ import annotations

import json
import subprocess
import sys

NODES = 20_000
CAP_MIB = 1024  # a float N x N mask alone is 1,526 MiB at 20,000 nodes; the bool ancestor matrix 381 MiB

STEP = f"""
import json, os, resource
import numpy as np, torch
from hier.infer.answer import decode
from hier.infer.curve import operating_curve
from hier.metrics.hierarchical import summary
from hier.plugins import create_head, create_loss, list_heads, list_losses
from hier.taxo import Taxonomy

torch.set_num_threads(1)

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

rng = np.random.default_rng(0)
parent = (rng.random({NODES} - 1) * np.arange(1, {NODES})).astype(int)  # a random recursive tree, depth ~ 25
taxonomy = Taxonomy([{{"id": "n0", "parent": None}}] + [{{"id": f"n{{i + 1}}", "parent": f"n{{p}}"}}
                                                       for i, p in enumerate(parent)])
start = rss_kib()
generator = torch.Generator().manual_seed(0)
targets = torch.randint(len(taxonomy), (8,), generator=generator)  # any depth: inner-node labels too
embeddings = torch.randn(8, 16, generator=generator)
done = []
for name in list_heads():
    head = create_head(name, in_features=16, taxonomy=taxonomy)
    scores = head(embeddings, targets)
    create_loss(head.default_loss, taxonomy=taxonomy)(scores, targets).backward()
    probs = head.node_probabilities(scores.detach())
    assert torch.equal(probs[:, taxonomy.root], torch.ones(8))
    assert (decode(probs, 0.5, head.tree.depth) >= 0).all()
    operating_curve(probs, targets, head.tree)
    summary(probs, targets, head.tree)
    done.append(name)
for name in list_losses():
    loss = create_loss(name, taxonomy=taxonomy)
    for space in loss.spaces:
        scores = torch.randn(8, loss.tree.width(space), generator=generator, requires_grad=True)
        value = loss(scores, targets)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(scores.grad).all()
    done.append(name)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"done": done, "growth_mib": (peak - start) / 1024, "depth": taxonomy.max_depth}}))
"""


def test_every_head_loss_and_the_decoder_run_on_20000_nodes_within_a_memory_cap():
    done = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"classifier", "arcface", "spheremulti", "spheremultihier", "arcface-multihead"} <= set(result["done"])
    assert {"ce", "bce", "focal", "asl", "hbce", "hxe", "soft-labels"} <= set(result["done"])
    assert result["growth_mib"] < CAP_MIB, result
