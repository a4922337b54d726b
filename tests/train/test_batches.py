"""Global batches: seeded by (seed, epoch), every sample once per epoch, balanced draws when asked."""

import torch

from hier.train.batches import Batches, balanced_weights, epoch_batches, local_part, val_batches

CONFIG = {"seed": 3, "batch_size": 4, "balanced_sampler": False}


def test_epoch_batches_are_a_seeded_permutation():
    batches = epoch_batches(10, CONFIG, 0, None)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert all(torch.equal(a, b) for a, b in zip(batches, epoch_batches(10, CONFIG, 0, None)))
    assert not torch.equal(torch.cat(batches), torch.cat(epoch_batches(10, CONFIG, 1, None)))


def test_balanced_weights_draw_classes_equally_often():
    targets = torch.tensor([0] * 90 + [1] * 10)
    assert balanced_weights(targets, CONFIG, 2) is None
    weights = balanced_weights(targets, {**CONFIG, "balanced_sampler": True}, 2)
    drawn = targets[torch.cat(epoch_batches(100, CONFIG, 0, weights))]
    assert 30 < int((drawn == 1).sum()) < 70  # about 50, where the plain order gives 10


def test_one_process_takes_whole_batches():
    batches = epoch_batches(10, CONFIG, 0, None)
    assert torch.equal(local_part(batches[0]), batches[0])
    assert list(Batches(batches)) == [b.tolist() for b in batches] and len(Batches(batches)) == 3
    features, targets = torch.randn(6, 2), torch.arange(6)
    shares = val_batches((features, targets), CONFIG, from_features=True)
    assert [t.tolist() for _, t in shares] == [[0, 1, 2, 3], [4, 5]]
    assert torch.equal(shares[1][0], features[4:])
