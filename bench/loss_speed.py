"""Speed of the vectorised hierarchical BCE against the method notes' loop and against plain BCE.

One process, one tree (1,000 nodes), one batch (256), the same tensors for all three:

- the notes' loop-style HBCE, written out below as the reference: BCE, then a Python loop over the
  edges on thresholded predictions, then the distance between the deepest predicted and the
  deepest true node (levels looked up per predicted entry, a graph distance per sample), as the
  notes do; where the notes look node names up with list.index the reference uses a dict, which
  only makes it faster;
- ``hbce`` as registered (``hier.losses.hbce``);
- plain BCE on the prebuilt multi-hot targets: the floor any BCE-based loss pays.

The scores are those of a model in training (a confident root path per sample plus noise): the
loop's distance step costs more the more nodes are predicted, the other two do not depend on the
values. Each is timed forward + backward (one training step's loss cost), best of several runs. The
values agree where both versions are defined: at hard 0/1 predictions, for the violation term
always and for the distance when the predictions respect the tree. Exits 1 if they do not agree.

    python bench/loss_speed.py [--nodes 1000] [--batch 256] [--repeats 100] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from _common import seconds

from hier.plugins import create_loss
from hier.taxo import Taxonomy

HARD = 40.0  # a logit whose sigmoid is 0 or 1 in float32
PENALTY = 0.1  # the notes' hier_penalty; they add the distance unweighted


class NotesHBCE:
    """The method notes' ``hbce_loss``: loops over nodes and samples on thresholded predictions.

    Columns are the non-root nodes (the notes drop the always-true root from the predictions).
    """

    def __init__(self, taxonomy: Taxonomy, hier_penalty: float, threshold: float = 0.5):
        self.taxonomy = taxonomy
        self.hier_penalty = hier_penalty
        self.threshold = threshold
        self.columns = [i for i in range(len(taxonomy)) if i != taxonomy.root]
        self.column_of = {node: c for c, node in enumerate(self.columns)}
        self.level = [int(taxonomy.depth[node]) for node in self.columns]
        self.bce = torch.nn.BCEWithLogitsLoss(reduction="mean")

    def terms(self, logits: torch.Tensor, y_true: torch.Tensor) -> dict[str, torch.Tensor]:
        bce = self.bce(logits, y_true.float())
        y_pred = torch.where(torch.sigmoid(logits) > self.threshold, 1, 0)
        penalties = torch.zeros(logits.shape[0])
        for parent in range(len(self.taxonomy)):
            if parent == self.taxonomy.root:
                continue
            parent_pred = y_pred[:, self.column_of[parent]]
            for child in self.taxonomy.children[parent]:
                child_pred = y_pred[:, self.column_of[child]]
                penalties += torch.where((parent_pred == 0) & (child_pred == 1),
                                         self.hier_penalty * torch.ones_like(child_pred),
                                         torch.zeros_like(child_pred))
        return {"bce": bce, "violation": penalties.mean(), "distance": self.distance(y_pred, y_true).mean()}

    def distance(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        deepest_pred = self.deepest(y_pred)
        deepest_true = self.deepest(y_true)
        paths = self.taxonomy.ancestor_matrix
        out = []
        for p, t in zip(deepest_pred.tolist(), deepest_true.tolist()):
            # The edges between two nodes: those on one root path and not on the other.
            out.append(float((paths[self.columns[p]] ^ paths[self.columns[t]]).sum()))
        return torch.tensor(out)

    def deepest(self, predicted: torch.Tensor) -> torch.Tensor:
        rows, cols = torch.nonzero(predicted, as_tuple=True)
        level = torch.zeros(predicted.shape, dtype=torch.float)
        level[rows, cols] = torch.tensor([self.level[c] for c in cols.tolist()], dtype=torch.float)
        return torch.max(level, dim=1).indices

    def __call__(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y_true = torch.from_numpy(self.taxonomy.ancestor_matrix[targets.numpy()][:, self.columns])
        terms = self.terms(scores[:, self.columns], y_true)
        return terms["bce"] + terms["violation"] + terms["distance"]


def random_tree(num_nodes: int, seed: int) -> Taxonomy:
    """A taxonomy-like tree: breadth-first, 2 to 6 children per inner node."""
    rng = np.random.default_rng(seed)
    nodes = [{"id": "n0", "parent": None}]
    frontier = 0
    while len(nodes) < num_nodes:
        for _ in range(min(int(rng.integers(2, 7)), num_nodes - len(nodes))):
            nodes.append({"id": f"n{len(nodes)}", "parent": f"n{frontier}"})
        frontier += 1
    return Taxonomy(nodes)


def training_like_scores(taxonomy: Taxonomy, batch: int, rng) -> torch.Tensor:
    """Logits +2 along the root path of a random node per sample, -2 elsewhere, plus unit noise."""
    on_path = taxonomy.ancestor_matrix[rng.integers(0, len(taxonomy), size=batch)]
    return torch.from_numpy(np.where(on_path, 2.0, -2.0) + rng.standard_normal(on_path.shape)).float()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (1 by default: intra-op threads stall when the cores are shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    taxonomy = random_tree(args.nodes, seed=0)
    leaves = taxonomy.leaves
    targets = torch.from_numpy(rng.choice(leaves, size=args.batch))
    # hbce averages its penalties over edges and nodes; these weights make it the notes' sums.
    penalised_edges = int((taxonomy.depth >= 2).sum())
    hbce = create_loss("hbce", taxonomy=taxonomy, hierarchy_penalty=PENALTY * penalised_edges,
                       distance_weight=len(taxonomy) - 1)
    notes = NotesHBCE(taxonomy, hier_penalty=PENALTY)
    multi_hot = torch.from_numpy(taxonomy.ancestor_matrix[targets.numpy()]).float()

    device = torch.device(args.device)
    hbce.to(device)
    scores = training_like_scores(taxonomy, args.batch, rng).to(device).requires_grad_()
    targets_dev, multi_hot_dev = targets.to(device), multi_hot.to(device)

    def timed(loss_fn, on_device=True):
        def step():
            scores.grad = None
            if on_device:
                loss_fn(scores, targets_dev).backward()
            else:
                loss_fn(scores.cpu(), targets).backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return step

    loop_ms = 1000 * seconds(timed(notes, on_device=False), args.repeats, warmup=3)
    hbce_ms = 1000 * seconds(timed(hbce), args.repeats, warmup=3)
    bce_ms = 1000 * seconds(timed(lambda s, _: F.binary_cross_entropy_with_logits(s, multi_hot_dev)),
                            args.repeats, warmup=3)

    depth = taxonomy.max_depth
    print(f"hbce on a {len(taxonomy)}-node tree ({len(leaves)} leaves, depth {depth}), batch {args.batch}, "
          f"{device}, {torch.get_num_threads()} thread(s); forward + backward, best of {args.repeats}")
    print(f"  notes' loop (reference)  {loop_ms:9.3f} ms")
    print(f"  hbce (vectorised)        {hbce_ms:9.3f} ms   {loop_ms / hbce_ms:7.1f}x faster than the loop "
          "(target >= 15x)")
    print(f"  plain BCE (floor)        {bce_ms:9.3f} ms   hbce costs {hbce_ms / bce_ms:5.2f}x BCE (target <= 3x)")

    agreement = check_agreement(taxonomy, hbce.cpu(), notes, targets, rng)
    print("agreement at hard predictions (largest difference relative to max(1, |loop value|)):")
    for case, differences in agreement.items():
        print(f"  {case:40s} " + ", ".join(f"{k} {v:.2e}" for k, v in differences.items()))
    worst = max(v for differences in agreement.values() for v in differences.values())
    return 0 if worst < 1e-5 else 1


def check_agreement(taxonomy, hbce, notes, targets, rng) -> dict[str, dict[str, float]]:
    """Differences of the terms on hard predictions (logits +-HARD), relative to max(1, |loop value|)."""
    batch, n = len(targets), len(taxonomy)
    # Predictions that respect the tree: the root path of a random node per sample.
    predicted = torch.from_numpy(rng.integers(0, n, size=batch))
    on_path = torch.from_numpy(taxonomy.ancestor_matrix[predicted.numpy()])
    consistent = torch.where(on_path, HARD, -HARD)
    arbitrary = torch.where(torch.rand(batch, n) < 0.3, HARD, -HARD)
    y_true = torch.from_numpy(taxonomy.ancestor_matrix[targets.numpy()][:, notes.columns])
    out = {}
    for case, scores, names in (("predictions that respect the tree", consistent, ("bce", "violation", "distance")),
                                ("arbitrary predictions", arbitrary, ("bce", "violation"))):
        loop = notes.terms(scores[:, notes.columns], y_true)
        vectorised = hbce.terms(scores, targets)
        out[case] = {k: abs(float(loop[k]) - float(vectorised[k])) / max(1.0, abs(float(loop[k]))) for k in names}
    return out


if __name__ == "__main__":
    sys.exit(main())
