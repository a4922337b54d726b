"""Name -> factory registries filled by the ``register_*`` hooks, with timm-style list/create."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass
from typing import Callable

from hier.core.errors import HierError, InputError


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable
    help: str
    plugin: str  # the distribution (or built-in module) that registered it


class Registry:
    """One kind of registered thing (heads, losses, backbones, taxonomy sources)."""

    def __init__(self, kind: str):
        self.kind = kind  # plural, as in "heads"
        self.label = {"losses": "loss"}.get(kind, kind[:-1]).replace("_", " ")  # "head", "taxonomy source"
        self.entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable, *, help: str = "", plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{plugin}: a {self.label} name must be a non-empty string")
        if not callable(factory):
            raise TypeError(f"{plugin}: the {self.label} {name!r} factory is not callable")
        if name in self.entries:
            other = self.entries[name].plugin
            raise RegistryConflict(f"{self.label} {name!r} is registered by both {other!r} and {plugin!r}")
        first_line = (help or inspect.getdoc(factory) or "").strip().splitlines()
        self.entries[name] = Entry(name, factory, first_line[0] if first_line else "", plugin)

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.entries if fnmatch.fnmatchcase(n, pattern))

    def get(self, name: str) -> Entry:
        """The entry of ``name``; a name ending in ':' registers a family (``timm:`` builds ``timm:NAME``)."""
        family = name.split(":", 1)[0] + ":" if ":" in name.rstrip(":") else None
        if name.endswith(":") and name in self.entries:  # a family's prefix alone names nothing to build
            raise InputError(f"{self.label} {name!r} needs a name after the ':' (e.g. {name}NAME)")
        if name not in self.entries and family in self.entries:
            return self.entries[family]
        try:
            return self.entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.entries, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"available: {', '.join(self.names())}"
            raise InputError(f"unknown {self.label} {name!r}; {hint}") from None

    def create(self, name: str, /, **kwargs):
        entry = self.get(name)
        check_options(entry, kwargs, self.label)
        if entry.name != name:  # a family member: the factory takes the part after the prefix
            return entry.factory(name[len(entry.name):], **kwargs)
        return entry.factory(**kwargs)


class RegistryConflict(HierError):
    """Two plugins registered the same name."""


def check_options(entry: Entry, options: dict, kind: str) -> None:
    """Name the options a factory does not accept, before calling it."""
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in options if k not in params]
    if unknown:
        accepted = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise InputError(f"{kind} {entry.name!r} does not accept option(s) {', '.join(map(repr, unknown))}; "
                         f"it accepts {', '.join(accepted)}")
