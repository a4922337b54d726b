"""The preset examples/configs/spheremultihier-notes.yaml gives the method notes' loss (../shared/seed/thesis-notes.md,
``hbce_loss``) at hard, tree-consistent predictions; the notes' loop is written out below as the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from hier.losses.hbce import _level_weights
from hier.plugins import create_loss

HARD = 30.0  # |logit| of a hard 0/1 prediction: sigmoid within 1e-13 of it


def preset() -> dict:
    return yaml.safe_load((Path(__file__).parents[2] / "examples/configs/spheremultihier-notes.yaml").read_text())


class Node:
    def __init__(self, index, name, level, is_root):
        self.index, self.name, self.level, self.is_root = index, name, level, is_root


class Graph:
    """What the notes' loop uses of their rustworkx graph: nodes by column index with a level, successors,
    undirected distances. Columns are the non-root nodes (the notes drop the always-true root)."""

    def __init__(self, taxonomy):
        self.parent = [int(p) for p in taxonomy.parent]
        self.columns = [i for i in range(len(taxonomy)) if self.parent[i] >= 0]
        self.column_of = {node: k for k, node in enumerate(self.columns)}
        depth = [0] * len(self.parent)
        for i in range(len(self.parent)):
            j = i
            while self.parent[j] >= 0:
                j, depth[i] = self.parent[j], depth[i] + 1
        self.depth = depth
        self.rxG = self
        self.root = Node(-1, "root", 0, True)
        self.node = {k: Node(k, taxonomy.ids[n], depth[n], False) for k, n in enumerate(self.columns)}

    def nodes(self):
        return [self.root, *self.node.values()]

    def successors(self, k):
        return [self.node[self.column_of[c]] for c, p in enumerate(self.parent) if p >= 0 and self.columns[k] == p]

    def __getitem__(self, k):
        return self.node[k]

    def distance(self, a, b):
        a, b = self.columns[int(a)], self.columns[int(b)]
        up = {a: 0}
        while self.parent[a] >= 0:
            up[self.parent[a]] = up[a] + 1
            a = self.parent[a]
        steps = 0
        while b not in up:
            b, steps = self.parent[b], steps + 1
        return up[b] + steps


class NotesHBCE(nn.Module):
    """The notes' ``hbce_loss``, line for line (config lookups replaced by arguments)."""

    def __init__(self, graph, lineage_labels, level_weights, hier_penalty, threshold=0.5):
        super().__init__()
        self.graph, self.lineage_labels = graph, lineage_labels
        self.hier_penalty, self.threshold = hier_penalty, threshold
        self.bce = nn.BCEWithLogitsLoss(reduction="mean", weight=level_weights)

    def forward(self, logits, y_true):
        bce = self.bce(logits, y_true.float())
        probas = torch.sigmoid(logits)
        y_pred = torch.where(probas > self.threshold, 1, 0)
        G = self.graph.rxG
        penalties = 0.0
        for parent_node in G.nodes():
            if parent_node.is_root:
                continue
            children = G.successors(parent_node.index)
            parent_idx = self.lineage_labels.index(parent_node.name)
            parent_pred = y_pred[:, parent_idx]
            children_idxs = [self.lineage_labels.index(child.name) for child in children]
            for child_idx in children_idxs:
                child_pred = y_pred[:, child_idx]
                penalty = torch.where((parent_pred == 0) & (child_pred == 1),
                                      self.hier_penalty * torch.ones_like(child_pred), torch.zeros_like(child_pred))
                penalties += penalty
        penalties += self.get_distance_penalty(y_pred, y_true)
        return (bce + penalties).mean()

    def get_distance_penalty(self, y_pred, y_true):
        pred_idxs = torch.nonzero(y_pred, as_tuple=True)
        pred_level = torch.zeros(y_pred.shape, dtype=torch.float)
        pred_level[pred_idxs] = torch.tensor([self.graph.rxG[i].level for i in pred_idxs[1].tolist()],
                                             dtype=torch.float)
        _, lowest_pred_idxs = torch.max(pred_level, dim=1)
        true_idxs = torch.nonzero(y_true, as_tuple=True)
        true_level = torch.zeros(y_true.shape, dtype=torch.float)
        true_level[true_idxs] = torch.tensor([self.graph.rxG[i].level for i in true_idxs[1].tolist()],
                                             dtype=torch.float)
        _, lowest_true_idxs = torch.max(true_level, dim=1)
        distance = torch.tensor([self.graph.distance(lowest_pred_idxs[i], lowest_true_idxs[i])
                                 for i in range(len(lowest_pred_idxs))])
        return distance.float().mean()


def hard_inputs(taxonomy, graph, batch, generator, consistent=True):
    """Leaf targets and hard logits over all nodes: each sample predicts one node's root path (depth >= 1:
    with nothing predicted the notes' argmax picks column 0, not the root) or, inconsistent, random nodes."""
    leaves = torch.as_tensor(taxonomy.leaves)
    targets = leaves[torch.randint(len(leaves), (batch,), generator=generator)]
    nodes = torch.tensor(graph.columns)
    if consistent:
        chosen = nodes[torch.randint(len(nodes), (batch,), generator=generator)]
        predicted = torch.as_tensor(taxonomy.ancestor_matrix)[chosen]
    else:
        predicted = torch.rand(batch, len(taxonomy), generator=generator) < 0.4
    predicted[:, taxonomy.root] = True
    return torch.where(predicted, HARD, -HARD).double(), targets


@pytest.mark.parametrize("seed", range(4))
def test_the_preset_is_the_notes_loss_at_hard_tree_consistent_predictions(seed, make_tree):
    g = torch.Generator().manual_seed(seed)
    taxonomy = make_tree([int(torch.randint(k + 1, (1,), generator=g)) for k in range(24)])
    graph = Graph(taxonomy)
    options = preset()
    assert options["head"] == "spheremultihier" and options["loss"] == "hbce"
    hbce = create_loss("hbce", taxonomy=taxonomy, **options["loss_options"]).double()
    weights = _level_weights(taxonomy, options["loss_options"]["level_weights"])[graph.columns].double()
    notes = NotesHBCE(graph, [taxonomy.ids[n] for n in graph.columns], weights,
                      options["loss_options"]["hierarchy_penalty"])
    scores, targets = hard_inputs(taxonomy, graph, 16, g)
    y_true = torch.as_tensor(taxonomy.ancestor_matrix)[targets][:, graph.columns]
    expected = notes(scores[:, graph.columns], y_true)
    # the notes' penalties are float32 tensors, which round their total to float32
    assert expected.dtype == torch.float32
    assert hbce(scores, targets).item() == pytest.approx(expected.item(), rel=2e-7)
    distance = hbce.terms(scores, targets)["distance"].item()
    assert distance == pytest.approx(notes.get_distance_penalty((scores[:, graph.columns] > 0).long(), y_true).item())
    assert distance > 0  # the inputs are not all right: the comparison has something to compare


def test_the_violation_term_counts_the_notes_violated_edges_at_any_hard_prediction(make_tree):
    g = torch.Generator().manual_seed(7)
    taxonomy = make_tree([int(torch.randint(k + 1, (1,), generator=g)) for k in range(30)])
    graph = Graph(taxonomy)
    hbce = create_loss("hbce", taxonomy=taxonomy, **{**preset()["loss_options"], "hierarchy_penalty": 0.7}).double()
    notes = NotesHBCE(graph, [taxonomy.ids[n] for n in graph.columns], None, 0.7)
    scores, targets = hard_inputs(taxonomy, graph, 32, g, consistent=False)
    y_pred = (scores[:, graph.columns] > 0).long()
    loop = notes(scores[:, graph.columns], torch.zeros_like(y_pred)) - notes.bce(
        scores[:, graph.columns], torch.zeros_like(y_pred).float()) - notes.get_distance_penalty(
        y_pred, torch.zeros_like(y_pred))
    violation = hbce.terms(scores, targets)["violation"].item()
    assert violation == pytest.approx(loop.item(), rel=2e-7) and violation > 0
