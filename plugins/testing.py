"""Register a plugin object for the length of one test (or a ``with`` block), then remove it.

    from hier.plugins.testing import registered_plugin

    class MyPlugin:
        @hookimpl
        def register_heads(register):
            register("mine", MyHead)

    with registered_plugin(MyPlugin()):
        create_head("mine", in_features=8, taxonomy=t)

In pytest, ``hier_plugin`` is a fixture with the same effect: ``hier_plugin(MyPlugin())``.
"""

from __future__ import annotations

from contextlib import contextmanager

from .manager import get_plugins


@contextmanager
def registered_plugin(plugin, name: str | None = None):
    """A plugin already loaded (its package installed, its entry point found) is used as it is."""
    plugins = get_plugins()
    if plugins.pm.is_registered(plugin):
        yield plugins
        return
    registered = plugins.register(plugin, name=name)
    try:
        yield plugins
    finally:
        plugins.unregister(registered)


def _fixture():
    import pytest

    @pytest.fixture
    def hier_plugin():
        """Call with a plugin object; it is registered until the test ends."""
        plugins, names = get_plugins(), []

        def register(plugin, name=None):
            if not plugins.pm.is_registered(plugin):  # installed and loaded already: nothing to add
                names.append(plugins.register(plugin, name=name))
            return plugins

        yield register
        for name in names:
            plugins.unregister(name)

    return hier_plugin


try:
    hier_plugin = _fixture()
except ImportError:  # pytest is only needed by those who test
    pass
