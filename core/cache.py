"""The user cache folder: WordNet's layout and noun index, extracted EcoTaxa zips."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def cache_dir() -> Path:
    """``$HIER_CACHE``, else ``$XDG_CACHE_HOME/hier``, else ``~/.cache/hier``; one that is a file is an input
    error naming the variable."""
    if os.environ.get("HIER_CACHE"):
        folder, origin = Path(os.environ["HIER_CACHE"]), "HIER_CACHE"
    else:
        folder, origin = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hier", "the cache folder"
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                raise InputError(f"{origin} is {folder}, but {above} is a file, not a folder; point {origin} at a "
                                 "folder")
            break
    return folder
