"""The taxonomy a dataset comes with, for ``hier fit DATASET`` without ``--taxonomy``.

In order: ``DATASET/taxonomy.json`` (what ``hier data synth`` writes, or a user put there); the
lineage of an EcoTaxa export; the WordNet tree of class folders named by wnids (ImageNet's layout).
Anything else needs a taxonomy built by the user, and the error names the command that builds one.
"""

from __future__ import annotations

import os
from pathlib import Path

from hier.core.errors import InputError
from hier.data.readers import read_dataset
from hier.taxo import Taxonomy

TAXONOMY_FILE = "taxonomy.json"


def dataset_taxonomy(dataset: str | os.PathLike) -> tuple[Path | Taxonomy, str]:
    """The dataset's own taxonomy (a file, or one built from the data) and a line saying where it came from."""
    from hier.taxo.sources import ecotaxa_source
    from hier.taxo.wordnet import WNID, build_wordnet

    dataset = Path(dataset)
    if (dataset / TAXONOMY_FILE).is_file():
        return dataset / TAXONOMY_FILE, f"the dataset's {dataset / TAXONOMY_FILE}"
    data = read_dataset(dataset)
    if data.kind == "ecotaxa":
        return ecotaxa_source(dataset), "built from the EcoTaxa export's lineages (as hier taxo build --source ecotaxa)"
    labels = data.labels
    if labels and all(WNID.fullmatch(label) for label in labels):
        return build_wordnet(labels), (
            f"WordNet's tree of the {len(labels)} wnid class folders (as hier taxo build --source wordnet --folders)")
    raise InputError("no taxonomy: give --taxonomy FILE, or build one into the dataset with hier taxo build -o "
                     f"{dataset / TAXONOMY_FILE} (--source csv for a lineage table, --source wordnet --folders for "
                     "wnid folders)", path=dataset)
