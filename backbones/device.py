"""The device a command runs on, and mixed precision where it pays."""

from __future__ import annotations

import os

import torch

from hier.core.errors import InputError


def local_rank() -> int:
    """This process's device index on its machine under torchrun (0 alone)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def pick_device(name: str) -> torch.device:
    """``auto`` takes the GPU when there is one; under torchrun each process takes its local GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda, but no CUDA device is available here")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        return torch.device("cuda", local_rank())
    return torch.device(name)


def autocast(device: torch.device, config: dict):
    """bf16 autocast on CUDA (``amp: auto|bf16``); a no-op context on the CPU."""
    enabled = device.type == "cuda" and config["amp"] in ("auto", "bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def as_input(images: torch.Tensor, device: torch.device, config: dict) -> torch.Tensor:
    """A batch of images on ``device``, channels-last when the run's backbone is."""
    images = images.to(device, non_blocking=True)
    if config.get("channels_last") and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images
