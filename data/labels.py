"""Dataset labels to taxonomy nodes: matching by id, lineage or folder-style name; the validation report."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hier.core.errors import InputError
from hier.taxo.csv_source import folder_style

from .readers import SHOWN, Dataset, Sample


@dataclass
class LabelMatch:
    """Labels matched to nodes; ``unmatched`` and ``ambiguous`` (label -> candidate nodes) are what failed."""

    nodes: dict[str, int]
    unmatched: list[str]
    ambiguous: dict[str, list[int]]

    @property
    def ok(self) -> bool:
        return not self.unmatched and not self.ambiguous


def match_labels(labels: Iterable[str], taxonomy) -> LabelMatch:
    """Match each distinct label to a node, trying in turn:

    1. the whole label as a node id;
    2. a '>'-joined path of ids, then of names, ending at the node (from the root, or any
       trailing part of its lineage: a single name is the shortest such path);
    3. the same with names compared folder-style ('_' for ' ', case ignored).

    The first rule with any match decides; two or more matching nodes make the label ambiguous.
    """
    ids, names = taxonomy.ids, taxonomy.names
    folder_names = [folder_style(n) for n in names]
    index: dict[str, dict[str, list[int]]] = {"id": defaultdict(list), "name": defaultdict(list),
                                              "folder": defaultdict(list)}
    for i in range(len(taxonomy)):
        index["id"][ids[i]].append(i)
        index["name"][names[i]].append(i)
        index["folder"][folder_names[i]].append(i)
    keys = {"id": ids, "name": names, "folder": folder_names}
    parent = taxonomy.parent

    def along_lineage(parts: list[str], rule: str) -> list[int]:
        found = []
        for node in index[rule].get(parts[-1], ()):
            j, ok = node, True
            for part in reversed(parts[:-1]):
                j = int(parent[j])
                if j < 0 or keys[rule][j] != part:
                    ok = False
                    break
            if ok:
                found.append(node)
        return found

    nodes, unmatched, ambiguous = {}, [], {}
    for label in dict.fromkeys(labels):
        if label in taxonomy:
            nodes[label] = taxonomy.index(label)
            continue
        parts = [p.strip() for p in label.strip().split(">") if p.strip()]
        found = []
        if parts:
            for rule in ("id", "name", "folder"):
                wanted = [folder_style(p) for p in parts] if rule == "folder" else parts
                found = along_lineage(wanted, rule)
                if found:
                    break
        if len(found) == 1:
            nodes[label] = found[0]
        elif found:
            ambiguous[label] = found
        else:
            unmatched.append(label)
    return LabelMatch(nodes, unmatched, ambiguous)


def resolve_labels(data: Dataset | Iterable[Sample] | Iterable[str], taxonomy) -> dict[str, int]:
    """Map every label of a dataset (or of samples, or label strings) to its node index.

    A label that matches no node, or several, is an InputError naming the first few.
    """
    if isinstance(data, Dataset):
        labels = (s.label for s in data.samples)
    else:
        labels = (item.label if isinstance(item, Sample) else item for item in data)
    match = match_labels(labels, taxonomy)
    problems = [f"{label!r} (no node)" for label in match.unmatched[:SHOWN]]
    problems += [f"{label!r} ({len(c)} nodes: {', '.join(repr(taxonomy.ids[i]) for i in c[:3])})"
                 for label, c in list(match.ambiguous.items())[:SHOWN]]
    if problems:
        count = len(match.unmatched) + len(match.ambiguous)
        raise InputError(f"{count} labels match no single taxonomy node: {'; '.join(problems[:SHOWN])}")
    return match.nodes


def targets(samples: Sequence[Sample], nodes: Mapping[str, int]) -> np.ndarray:
    """Node index of each sample (int64), from the mapping :func:`resolve_labels` returned."""
    return np.fromiter((nodes[s.label] for s in samples), dtype=np.int64, count=len(samples))


def validation_report(dataset: Dataset, taxonomy) -> dict:
    """Labels the taxonomy lacks, images per node (own and under it), and the long tail of the classes."""
    counts = Counter(s.label for s in dataset.samples)
    match = match_labels(counts, taxonomy)
    own = np.zeros(len(taxonomy), dtype=np.int64)
    for label, node in match.nodes.items():
        own[node] += counts[label]
    under = taxonomy.sum_under(own)  # images at or below each node
    sizes = sorted((int(n) for n in own if n), reverse=True)
    return {
        "images": sum(counts.values()),
        "labels": len(counts),
        "splits": {name: len(samples) for name, samples in dataset.splits.items()},
        "unmatched": {label: counts[label] for label in match.unmatched},
        "ambiguous": {label: [taxonomy.ids[i] for i in nodes] for label, nodes in match.ambiguous.items()},
        "images_per_node": {taxonomy.ids[i]: {"own": int(own[i]), "under": int(under[i])}
                            for i in range(len(taxonomy)) if under[i]},
        "leaves_without_images": [taxonomy.ids[i] for i in taxonomy.leaves if not under[i]],
        "largest_class": sizes[0] if sizes else 0,
        "smallest_class": sizes[-1] if sizes else 0,
        "imbalance": round(sizes[0] / sizes[-1], 2) if sizes else None,
        "classes_under_10_images": sum(1 for n in sizes if n < 10),
    }
