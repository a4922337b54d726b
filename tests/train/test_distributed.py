"""Without torchrun every distributed helper is the one-process case (tests/train/test_fit.py runs two)."""

import torch
import torch.distributed as td

from hier.train import distributed as dist


def test_one_process_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    dist.setup()
    assert not td.is_initialized()
    assert (dist.world_size(), dist.rank(), dist.local_rank(), dist.is_main()) == (1, 0, 0, True)
    dist.barrier()
    dist.teardown()
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist.setup()
    assert not td.is_initialized()


def test_local_rank_comes_from_torchrun(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dist.local_rank() == 3


def test_gather_and_all_reduce_keep_the_one_value():
    obj = {"loss": 1.5, "probs": torch.ones(2)}
    assert dist.gather(obj) == [obj] and dist.gather(obj)[0] is obj
    value = torch.tensor([1.0, 2.0])
    assert torch.equal(dist.all_reduce_sum(value), torch.tensor([1.0, 2.0]))


def test_wrap_returns_the_module_unchanged():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert dist.wrap(module, torch.device("cpu")) is module
    assert isinstance(module[1], torch.nn.BatchNorm1d)  # no SyncBatchNorm on one process
