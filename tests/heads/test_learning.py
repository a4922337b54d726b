"""Each head, with its default loss, learns separable embeddings; some labels stop at an inner node."""

from __future__ import annotations

import pytest
import torch

from hier.plugins import create_head, create_loss

HEADS = ["arcface", "arcface-multihead", "classifier", "spheremulti", "spheremultihier"]
# 22 nodes: three genera of two or three species each under three orders, leaves at depths 2 and 3
PARENTS = [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def embeddings(taxonomy, count: int, generator):
    """Every node has a random direction; a sample sums the directions along its leaf's path, plus noise."""
    directions = torch.nn.functional.normalize(torch.randn(len(taxonomy), 16, generator=generator), dim=-1)
    on_path = torch.from_numpy(taxonomy.ancestor_matrix).float()
    leaves = torch.from_numpy(taxonomy.leaves)
    leaf = leaves[torch.randint(len(leaves), (count,), generator=generator)]
    x = on_path[leaf] @ directions + 0.2 * torch.randn(count, 16, generator=generator)
    # a quarter of the labels stop at the leaf's parent, as EcoTaxa labels that stop at genus
    stops_early = torch.rand(count, generator=generator) < 0.25
    label = torch.where(stops_early, torch.from_numpy(taxonomy.parent)[leaf], leaf)
    return x, leaf, label


@pytest.mark.parametrize("name", HEADS)
def test_head_learns_with_its_default_loss(name, make_tree):
    taxonomy = make_tree(PARENTS)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, leaf, label = embeddings(taxonomy, 256, generator)
    head = create_head(name, in_features=16, taxonomy=taxonomy)
    loss_fn = create_loss(head.default_loss, taxonomy=taxonomy)
    optimiser = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        loss = loss_fn(head(x, label), label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    with torch.no_grad():
        p = head.node_probabilities(head(x))
    leaves = torch.from_numpy(taxonomy.leaves)
    accuracy = (leaves[p[:, leaves].argmax(-1)] == leaf).float().mean()
    assert accuracy > 0.95
    # an inner-node label is learnt as its node, not forced onto one of its leaves
    assert p[torch.arange(len(label)), label].mean() > 0.9
