"""What every folder of hier shares: errors, atomic files and folders, tables, caches, progress. No torch."""

from .errors import HierError, InputError

__all__ = ["HierError", "InputError"]
