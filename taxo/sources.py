"""The built-in taxonomy sources, registered through the same hook as third-party ones."""

from __future__ import annotations

from hier.plugins.hookspecs import hookimpl


def wordnet_source(path=None, *, wnids=None, folders=None, tree: str = "longest", prune: bool = True):
    """WordNet 3.0 hypernym tree over ImageNet wnids (a wnid file or class folders named by wnid)."""
    from hier.core.errors import InputError

    from .wordnet import build_wordnet, read_wnids, wnids_from_folders

    wnids = wnids if wnids is not None else path
    if (wnids is None) == (folders is None):
        raise InputError("the wordnet source needs one of --wnids FILE or --folders DIR")
    ids = read_wnids(wnids) if wnids is not None else wnids_from_folders(folders)
    return build_wordnet(ids, tree=tree, prune=prune)


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
