"""Plugin hooks, the plugin manager and the registries (timm-style ``list_*`` / ``create_*``).

Importing this package never imports torch; creating a head or a backbone does.
"""

from __future__ import annotations

from .hookspecs import hookimpl, hookspec
from .manager import PluginInfo, Plugins, get_plugins, reset_plugins
from .registry import Entry, Registry, RegistryConflict

__all__ = [
    "hookimpl", "hookspec", "get_plugins", "reset_plugins", "Plugins", "PluginInfo", "Entry", "Registry",
    "RegistryConflict", "list_heads", "create_head", "list_losses", "create_loss", "list_backbones",
    "create_backbone", "list_taxonomy_sources", "create_taxonomy",
]


def _registry(kind: str) -> Registry:
    return get_plugins().registry(kind)


def list_heads(pattern: str = "*") -> list[str]:
    """Registered head names matching an fnmatch pattern, sorted."""
    return _registry("heads").names(pattern)


def create_head(name: str, *, in_features: int, taxonomy, **options):
    """Build a registered head for ``taxonomy`` on embeddings of size ``in_features``."""
    return _registry("heads").create(name, in_features=in_features, taxonomy=taxonomy, **options)


def list_losses(pattern: str = "*") -> list[str]:
    """Registered loss names matching an fnmatch pattern, sorted."""
    return _registry("losses").names(pattern)


def create_loss(name: str, *, taxonomy, **options):
    """Build a registered loss for ``taxonomy``."""
    return _registry("losses").create(name, taxonomy=taxonomy, **options)


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching an fnmatch pattern, sorted."""
    return _registry("backbones").names(pattern)


def create_backbone(name: str, *, weights=None, **options):
    """Build a registered backbone; returns ``(module, num_features)``."""
    return _registry("backbones").create(name, weights=weights, **options)


def list_taxonomy_sources(pattern: str = "*") -> list[str]:
    """Registered taxonomy source names matching an fnmatch pattern, sorted."""
    return _registry("taxonomy_sources").names(pattern)


def create_taxonomy(source: str, path, **options):
    """Build a taxonomy with a registered source (``wordnet``, ``csv``, ``ecotaxa``, …)."""
    return _registry("taxonomy_sources").create(source, path=path, **options)
