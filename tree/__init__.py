"""The taxonomy as tensors (:class:`TreeTensors`): what heads, losses, metrics and the answer rule all read.

It sits below them all, so none of them imports another for the tree.
"""

from .tensors import TreeTensors

__all__ = ["TreeTensors"]
