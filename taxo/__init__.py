"""Taxonomy model, sources, pruning, stats and rendering. Never imports torch."""

from hier.core.errors import HierError, InputError

from .taxonomy import Taxonomy

__all__ = ["HierError", "InputError", "Taxonomy"]
