"""A test set scored as if it had another mix of classes (``hier evaluate --reweight uniform|FILE``).

Each image weighs w = q_y / p_y by its true class y (its label's node): p the test set's own class shares, q
the asked mix (importance weights for a label shift: the class-conditional images stay what they are). The
weights average 1 over the images, so a weighted metric is the metric of a test set with mix q. ``uniform``
gives every class of the test set the same share: what balanced accuracy does for the top-1 leaf, for every
metric. Classes the mix names but the test set has no images of cannot be weighed: they are listed.
"""

from __future__ import annotations

import torch

from hier.core.errors import InputError
from hier.runs.proportions import read_proportions
from hier.taxo import Taxonomy


def class_mix_weights(targets: torch.Tensor, mix: str, taxonomy: Taxonomy) -> tuple[torch.Tensor, dict]:
    """Per-image weights [N] (float64) for the mix ``uniform`` or a proportions file, and what the evaluation
    records of it: the mix, the classes weighed, those of the file without test images, the effective number
    of images (Kish: (sum w)^2 / sum w^2, what the weighted figures are worth)."""
    classes, index, counts = targets.unique(return_inverse=True, return_counts=True)
    ids = [taxonomy.ids[c] for c in classes.tolist()]
    absent: list[str] = []
    if mix == "uniform":
        q = torch.ones(len(classes), dtype=torch.float64)
    else:
        given = read_proportions(mix, taxonomy)
        missing = [node for node in classes.tolist() if node not in given]
        if missing:
            raise InputError(f"{len(missing)} classes of the test set have no proportion (first: "
                             f"{taxonomy.ids[missing[0]]!r}); give every class of the test set one", path=mix)
        q = torch.tensor([given[node] for node in classes.tolist()], dtype=torch.float64)
        if q.sum() == 0:
            raise InputError("no class of the test set has a proportion above zero", path=mix)
        present = set(classes.tolist())
        absent = [taxonomy.ids[node] for node, v in given.items() if v > 0 and node not in present]
    share = counts.double() / len(targets)
    weights = (q / q.sum() / share)[index]
    return weights, {"mix": mix, "classes": len(ids), "absent_classes": absent,
                     "effective_images": (weights.sum() ** 2 / weights.square().sum()).item()}
