"""Backbone -> embedding block -> head: shapes, the frozen backbone, every built-in head end to end."""

import pytest
import torch

from hier.plugins import create_backbone, list_heads
from hier.runs.model import Embedding, backbone_is_frozen, build_model
from hier.taxo import InputError


def test_embedding_block_shapes():
    block = Embedding(12, 5, dropout=0.5).eval()
    out = block(torch.randn(3, 12, 1, 1))  # pooled backbone maps are flattened
    assert out.shape == (3, 5) and (out >= 0).all()  # ends in ReLU; dropout is off in eval
    assert [type(m).__name__ for m in block] == ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Dropout"]
    assert block[-1].p == 0.5


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "smallcnn.pth"
    torch.save(create_backbone("smallcnn", width=8, depth=2)[0].state_dict(), path)
    return str(path)


def test_backbone_is_frozen_with_pretrained_weights_only(tiny_config, weights_file):
    assert not backbone_is_frozen(tiny_config())
    assert backbone_is_frozen(tiny_config(weights=weights_file))
    assert not backbone_is_frozen(tiny_config(weights=weights_file, freeze_backbone=False))
    with pytest.raises(InputError, match="would train on random features"):
        backbone_is_frozen(tiny_config(freeze_backbone=True))


def test_frozen_backbone_has_no_gradient(tiny_config, taxonomy, weights_file):
    model, loss_fn = build_model(tiny_config(weights=weights_file), taxonomy)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in [*model.embedding.parameters(), *model.head.parameters()])
    loss_fn(model(torch.randn(2, 3, 32, 32), torch.tensor([2, 4])), torch.tensor([2, 4])).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.embedding[1].weight.grad is not None
    reference = torch.load(weights_file, weights_only=True)
    assert torch.equal(model.backbone.state_dict()["0.weight"], reference["0.weight"])


@pytest.mark.parametrize("head", list_heads())
def test_every_builtin_head_gives_consistent_node_probabilities(head, tiny_config, taxonomy):
    torch.manual_seed(0)
    model, loss_fn = build_model(tiny_config(head=head), taxonomy)
    x, t = torch.randn(4, 3, 32, 32), torch.tensor([2, 3, 4, 1])  # leaves, and an inner node (a)
    model.train()
    loss = loss_fn(model(x, t), t)
    assert loss.ndim == 0 and torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        p = model.node_probabilities(model(x))
    assert p.shape == (4, len(taxonomy))
    assert ((p >= 0) & (p <= 1 + 1e-6)).all()
    assert torch.allclose(p[:, taxonomy.root], torch.ones(4), atol=1e-5)
    parent = torch.as_tensor(taxonomy.parent)
    child = parent >= 0
    assert (p[:, child] <= p[:, parent[child]] + 1e-5).all()
