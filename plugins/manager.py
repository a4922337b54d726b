"""The plugin manager: built-ins first, then entry points of group ``hier``, each isolated.

A plugin that fails to import, misspells a hook or raises while registering is recorded
(``hier plugins`` shows it) and skipped; everything else keeps working.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .registry import Registry, RegistryConflict

# Built-in modules register through the same hooks as third-party ones. Their top level stays
# torch-free; the hook bodies import what they register.
BUILTIN_PLUGINS = ("hier.taxo.sources", "hier.heads.plugin", "hier.losses.plugin", "hier.backbones.plugin")
KINDS = ("heads", "losses", "backbones", "taxonomy_sources")


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        return "error" if self.error else "ok"

    def to_dict(self) -> dict:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "builtin": self.builtin, "hooks": self.hooks, "status": self.status, "error": self.error}


class PluginWarning(UserWarning):
    """A plugin was skipped."""


class Plugins:
    """Owns the pluggy manager, what was loaded, and the registries built from it."""

    def __init__(self, *, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("hier")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}
        version = _version("hier")
        for module_name in BUILTIN_PLUGINS:
            self._add(module_name, "hier", version, True, lambda m=module_name: importlib.import_module(m))
        if load_entry_points:
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        wanted = os.environ.get("HIER_LOAD_PLUGINS")
        allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
        for ep in metadata.entry_points(group="hier"):
            dist = ep.dist.name if ep.dist else ep.name
            if allowed is not None and dist not in allowed and ep.name not in allowed:
                continue
            self._add(ep.name, dist, ep.dist.version if ep.dist else "", False, ep.load)

    def _add(self, name: str, dist: str, version: str, builtin: bool, load) -> None:
        info = self.info[name] = PluginInfo(name, dist, version, builtin)
        try:
            plugin = load()
            self.pm.register(plugin, name=name)
        except Exception as e:  # a broken plugin must not break the others
            self._fail(info, f"failed to load: {type(e).__name__}: {e}")
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:
            self.pm.unregister(name=name)
            self._fail(info, str(e))
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.error = message
        warnings.warn(f"plugin {info.name!r} ({info.distribution}) skipped: {message}", PluginWarning, stacklevel=3)

    def register(self, plugin, name: str | None = None) -> str:
        """Add a plugin object at run time (tests, notebooks); registries are rebuilt on next use."""
        name = self.pm.register(plugin, name=name)
        self.pm.check_pending()
        self.info[name] = PluginInfo(name, "(runtime)", "", False,
                                     sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
        self._registries.clear()
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.info.pop(name, None)
        self._registries.clear()

    def registry(self, kind: str) -> Registry:
        if kind not in self._registries:
            registry = Registry(kind)
            hook = getattr(self.pm.hook, f"register_{kind}")
            for impl in reversed(hook.get_hookimpls()):  # registration order
                def register(name, factory, *, help="", _plugin=impl.plugin_name):
                    registry.register(name, factory, help=help, plugin=self.info[_plugin].distribution
                                      if _plugin in self.info else _plugin)
                try:
                    impl.function(register)
                except RegistryConflict:
                    raise
                except Exception as e:
                    info = self.info.get(impl.plugin_name)
                    if info is not None:
                        self._fail(info, f"register_{kind} raised {type(e).__name__}: {e}")
            self._registries[kind] = registry
        return self._registries[kind]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _plugins
    if _plugins is None:
        with warnings.catch_warnings():
            warnings.simplefilter("default", PluginWarning)
            _plugins = Plugins()
    return _plugins


def reset_plugins() -> None:
    """Forget loaded plugins (the next use loads them again, honouring HIER_LOAD_PLUGINS)."""
    global _plugins
    _plugins = None
