"""The user cache folder: WordNet's layout and noun index, extracted EcoTaxa zips."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HIER_CACHE``, else ``$XDG_CACHE_HOME/hier``, else ``~/.cache/hier``."""
    if os.environ.get("HIER_CACHE"):
        return Path(os.environ["HIER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hier"
