"""Taxonomy structures as tensors, computed once per taxonomy and device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hier.taxo import Taxonomy


@dataclass
class TreeTensors:
    ancestors: torch.Tensor  # bool [N, N]: [i, j] = j is i or an ancestor of i
    depth: torch.Tensor  # long [N], root 0
    leaves: torch.Tensor  # long [L], node index of each leaf column
    height: torch.Tensor  # long [N]: longest way down from the node to a leaf under it
    information: torch.Tensor  # float [N]: log2(#leaves / #leaves under the node), 0 at the root

    @classmethod
    def of(cls, taxonomy: Taxonomy, device: torch.device | str = "cpu") -> TreeTensors:
        ancestors = taxonomy.ancestor_matrix
        depth = taxonomy.depth
        leaf_depth = np.where(np.isin(np.arange(len(taxonomy)), taxonomy.leaves), depth, -1)
        # height(v) = max over leaves under v of depth(leaf) - depth(v)
        deepest = np.max(np.where(ancestors, leaf_depth[:, None], -1), axis=0)
        information = np.log2(len(taxonomy.leaves) / taxonomy.leaves_under)
        return cls(
            ancestors=torch.as_tensor(ancestors, device=device),
            depth=torch.as_tensor(depth, device=device),
            leaves=torch.as_tensor(taxonomy.leaves, device=device),
            height=torch.as_tensor(deepest - depth, device=device),
            information=torch.as_tensor(information, dtype=torch.float32, device=device),
        )

    def lca(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Lowest common ancestor of node pairs (a[k], b[k])."""
        common = self.ancestors[a] & self.ancestors[b]
        return torch.where(common, self.depth, -1).argmax(dim=1)
