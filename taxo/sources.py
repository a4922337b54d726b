"""The built-in taxonomy sources, registered through the same hook as third-party ones."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from hier.plugins.hookspecs import hookimpl

# The wnid lists that ship with hier, by the name --wnids takes (package data, taxo/wnids/NAME.txt).
WNID_LISTS = {"imagenet1k": "the 1,000 ImageNet-1k (ILSVRC2012) classes, in class-index (sorted) order"}
DEFAULT_WNIDS = "imagenet1k"


def wnid_list(name_or_path: str | os.PathLike) -> Path:
    """The file of a built-in wnid list by name (``imagenet1k``), or the path given; a file of that name wins."""
    if str(name_or_path) in WNID_LISTS and not Path(name_or_path).exists():
        return Path(str(resources.files("hier.taxo").joinpath("wnids", f"{name_or_path}.txt")))
    return Path(name_or_path)


def wordnet_source(path=None, *, wnids=None, folders=None, tree: str = "longest", prune: bool = True):
    """WordNet 3.0 hypernym tree over ImageNet wnids (a wnid list, class folders named by wnid, or ImageNet-1k)."""
    from hier.core.errors import InputError

    from .wordnet import build_wordnet, read_wnids, wnids_from_folders

    wnids = wnids if wnids is not None else path
    if wnids is not None and folders is not None:
        raise InputError("the wordnet source takes one of --wnids and --folders, not both")
    if folders is not None:
        return build_wordnet(wnids_from_folders(folders), tree=tree, prune=prune)
    return build_wordnet(read_wnids(wnid_list(wnids or DEFAULT_WNIDS)), tree=tree, prune=prune)


def csv_source(path, *, lineage_column=None, sep=">", rank_columns=None, parent_column=None, child_column=None,
               label_column=None, prune: bool = True):
    """Plankton table: a lineage column, WoRMS rank columns, or a parent/child edge list."""
    from .csv_source import build_from_table
    from .prune import prune_dead_nodes

    taxonomy = build_from_table(path, lineage_column=lineage_column, sep=sep, rank_columns=rank_columns,
                                parent_column=parent_column, child_column=child_column, label_column=label_column)
    return prune_dead_nodes(taxonomy) if prune else taxonomy


def ecotaxa_source(path, *, status=("validated",), prune: bool = True):
    """EcoTaxa export (.tsv or .zip): the lineage of each annotation in object_annotation_hierarchy."""
    from .ecotaxa import build_from_ecotaxa
    from .prune import prune_dead_nodes

    taxonomy = build_from_ecotaxa(path, status=status)
    return prune_dead_nodes(taxonomy) if prune else taxonomy


@hookimpl
def register_taxonomy_sources(register):
    register("wordnet", wordnet_source)
    register("csv", csv_source)
    register("ecotaxa", ecotaxa_source)
