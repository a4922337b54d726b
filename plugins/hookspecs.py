"""The hooks a plugin may implement. Each receives a callable and registers through it."""

import pluggy

hookspec = pluggy.HookspecMarker("hier")
hookimpl = pluggy.HookimplMarker("hier")


@hookspec
def register_heads(register):
    """Register heads: ``register(name, factory, *, help="")``; factory(in_features=, taxonomy=, **options)."""


@hookspec
def register_losses(register):
    """Register losses: ``register(name, factory, *, help="")``; factory(taxonomy=, **options)."""


@hookspec
def register_backbones(register):
    """Register backbones: ``register(name, factory, *, help="")``; factory(weights=, **options) -> (module, features)."""


@hookspec
def register_taxonomy_sources(register):
    """Register taxonomy sources: ``register(name, builder, *, help="")``; builder(path, **options) -> Taxonomy."""


@hookspec
def register_commands(app):
    """Add commands to the ``hier`` typer app."""
