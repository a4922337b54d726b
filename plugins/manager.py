"""The plugin manager: built-ins first, then entry points of group ``hier``, each isolated.

A plugin that fails to import, misspells a hook, raises while registering, takes a name of hier's own
or hangs in its import (over HIER_PLUGIN_TIMEOUT seconds) is recorded (``hier plugins`` shows it, with why)
and skipped; everything else keeps working. What a plugin prints goes to stderr: stdout is the output.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from hier.core.errors import InputError

from . import hookspecs
from .registry import Registry, RegistryConflict

# Built-in modules register through the same hooks as third-party ones. Their top level stays
# torch-free; the hook bodies import what they register.
BUILTIN_PLUGINS = ("hier.taxo.sources", "hier.heads.plugin", "hier.losses.plugin", "hier.backbones.plugin")
KINDS = ("heads", "losses", "backbones", "taxonomy_sources")
IMPORT_TIMEOUT_S = 10.0  # a third-party plugin's import; HIER_PLUGIN_TIMEOUT overrides it


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
        timeout = _import_timeout()
        for ep in metadata.entry_points(group="hier"):
            dist = ep.dist.name if ep.dist else ep.name
            if allowed is not None and dist not in allowed and ep.name not in allowed:
                continue
            self._add(ep.name, dist, ep.dist.version if ep.dist else "", False,
                      lambda ep=ep: _import_bounded(ep.load, timeout))

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

    def skip(self, name: str, why: str) -> None:
        """Take a loaded plugin out (a conflict found once it registered), saying why."""
        info = self.info.get(name)
        if info is not None:
            self._fail(info, f"{why}; skipped (rename it, or leave the plugin out with HIER_LOAD_PLUGINS)")
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self._registries.clear()

    def check_registries(self) -> None:
        """Build every registry, so conflicts show in ``hier plugins``; only with third-party plugins loaded
        (building imports torch, which ``hier plugins`` alone never needs)."""
        if any(not i.builtin and not i.error for i in self.info.values()):
            for kind in KINDS:
                self.registry(kind)

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
            self._registries[kind] = self._build(kind)
        return self._registries[kind]

    def _build(self, kind: str) -> Registry:
        """The registry of ``kind``, built-ins first; a third-party name that is a built-in's is skipped with
        its plugin, which never takes the built-in down."""
        registry, builtin_names = Registry(kind), set()
        impls = reversed(getattr(self.pm.hook, f"register_{kind}").get_hookimpls())
        for impl in sorted(impls, key=lambda i: not self._builtin(i.plugin_name)):  # built-ins first
            info, builtin = self.info.get(impl.plugin_name), self._builtin(impl.plugin_name)

            def register(name, factory, *, help="", _plugin=impl.plugin_name, _builtin=builtin):
                if name in builtin_names and not _builtin:
                    raise _Shadowing(f"its {registry.label} {name!r} is one of hier's own")
                registry.register(name, factory, help=help, plugin=self.info[_plugin].distribution
                                  if _plugin in self.info else _plugin)
                if _builtin:
                    builtin_names.add(name)

            before = dict(registry.entries)
            try:
                with contextlib.redirect_stdout(sys.stderr):  # stdout is the command's output
                    impl.function(register)
            except RegistryConflict:
                raise
            except _Shadowing as e:
                registry.entries = before
                self.skip(impl.plugin_name, str(e))
            except Exception as e:
                if info is not None:
                    self._fail(info, f"register_{kind} raised {type(e).__name__}: {e}")
        return registry


    def _builtin(self, name: str) -> bool:
        return name in self.info and self.info[name].builtin


class _Shadowing(Exception):
    """A plugin registered a name that a built-in has."""


def _import_timeout() -> float:
    value = os.environ.get("HIER_PLUGIN_TIMEOUT", "")
    try:
        return float(value) if value.strip() else IMPORT_TIMEOUT_S
    except ValueError:
        raise InputError(f"HIER_PLUGIN_TIMEOUT must be a number of seconds, got {value!r}") from None


def _import_bounded(load, timeout: float):
    """``load()`` (a plugin's import) with its prints sent to stderr, given ``timeout`` seconds: one that
    hangs is skipped, its thread left behind (a daemon, so the command still ends)."""
    result = {}

    def run():
        try:
            result["plugin"] = load()
        except Exception as e:
            result["error"] = e

    with contextlib.redirect_stdout(sys.stderr):
        thread = threading.Thread(target=run, name="hier-plugin-import", daemon=True)
        thread.start()
        thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"its import took over {timeout:g} s (HIER_PLUGIN_TIMEOUT)")
    if "error" in result:
        raise result["error"]
    if "plugin" not in result:
        raise RuntimeError("its import stopped the interpreter (sys.exit)")
    return result["plugin"]


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
