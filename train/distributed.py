"""torchrun support: one process per device, DistributedDataParallel, gloo on CPU and NCCL on GPU.

Without torchrun's environment (WORLD_SIZE unset or 1) every function is a no-op for one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as td

from hier.backbones.device import local_rank


def world_size() -> int:
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup() -> None:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not td.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        td.init_process_group(backend)


def teardown() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        td.barrier()


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if world_size() == 1:
        return module
    # Batch-norm statistics are shared across GPUs; on CPU (gloo) each process keeps its own, as
    # SyncBatchNorm needs CUDA. Frozen backbones stay in eval mode and are not affected.
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        value = value.clone()
        td.all_reduce(value)
    return value


def gather(obj):
    """Every rank's ``obj`` as a list on rank 0; None on the other ranks."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if is_main() else None
    td.gather_object(obj, out, dst=0)
    return out
