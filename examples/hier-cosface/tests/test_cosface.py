# file: tests/test_cosface.py
import pytest
import torch

import hier_cosface
from hier.core.errors import InputError
from hier.plugins import create_head, create_loss
from hier.plugins.testing import registered_plugin
from hier.taxo import Taxonomy


@pytest.fixture
def taxonomy():
    # root -> animal -> cat, dog; root -> plant: three leaves, at depths 2, 2 and 1
    nodes = [("root", None), ("animal", "root"), ("cat", "animal"), ("dog", "animal"), ("plant", "root")]
    return Taxonomy([{"id": node, "parent": parent} for node, parent in nodes])


def test_head_and_loss_train_and_give_consistent_probabilities(taxonomy):
    with registered_plugin(hier_cosface):
        head = create_head("cosface", in_features=16, taxonomy=taxonomy)
        loss = create_loss("label-smoothing", taxonomy=taxonomy)
    targets = torch.tensor([taxonomy.index(node) for node in ("cat", "animal", "plant")])  # any depth
    scores = head(torch.randn(3, 16), targets)
    assert scores.shape == (3, len(taxonomy.leaves))
    loss(scores, targets).backward()
    assert head.centres.grad.abs().sum() > 0

    p = head.node_probabilities(scores.detach())
    parent = torch.as_tensor(taxonomy.parent)
    below_root = parent >= 0
    assert p.shape == (3, len(taxonomy)) and torch.all(p[:, taxonomy.root] == 1)
    assert torch.all(p[:, below_root] <= p[:, parent[below_root]] + 1e-6)


def test_bad_options_are_input_errors(taxonomy):
    with registered_plugin(hier_cosface):
        with pytest.raises(InputError, match="smoothing must be in"):
            create_loss("label-smoothing", taxonomy=taxonomy, smoothing=1.5)
        with pytest.raises(InputError, match="does not accept option"):
            create_head("cosface", in_features=16, taxonomy=taxonomy, temperature=2.0)
