"""The plugin manager with real distributions on sys.path (dist-info + entry points), in subprocesses."""

import json
import subprocess
import sys
import textwrap

import pytest

from hier.plugins import create_backbone, create_taxonomy, get_plugins, hookimpl, list_taxonomy_sources
from hier.plugins.testing import registered_plugin
from hier.taxo import InputError, Taxonomy


def make_distribution(root, dist, module, source):
    """A real installed distribution: a module plus its dist-info with an entry point of group hier."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[hier]\n{module} = {module}\n")


def hier_in_subprocess(path, *args, env_plugins=None):
    env = {**__import__("os").environ, "PYTHONPATH": str(path)}
    env.pop("HIER_LOAD_PLUGINS", None)
    if env_plugins is not None:
        env["HIER_LOAD_PLUGINS"] = env_plugins
    return subprocess.run([sys.executable, "-m", "hier.cli", *args], check=False, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def site(tmp_path):
    make_distribution(tmp_path, "hier-good", "hier_good", """
        from hier.plugins import hookimpl
        def tsv_source(path, **options):
            '''Good plugin source: a single-node taxonomy.'''
            from hier.taxo import Taxonomy
            return Taxonomy([{"id": "only", "parent": None}], source="good")
        @hookimpl
        def register_taxonomy_sources(register):
            register("good", tsv_source)
    """)
    make_distribution(tmp_path, "hier-broken", "hier_broken", """
        raise ImportError("this plugin needs a library that is missing")
    """)
    make_distribution(tmp_path, "hier-typo", "hier_typo", """
        from hier.plugins import hookimpl
        @hookimpl
        def register_haeds(register):
            pass
    """)
    return tmp_path


def test_plugins_json_reports_good_broken_and_misspelled(site):
    result = hier_in_subprocess(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    info = {p["distribution"]: p for p in json.loads(result.stdout)}
    assert info["hier-good"]["status"] == "ok" and info["hier-good"]["version"] == "0.3"
    assert info["hier-good"]["hooks"] == ["register_taxonomy_sources"]
    assert info["hier-broken"]["status"] == "error" and "library that is missing" in info["hier-broken"]["error"]
    assert info["hier-typo"]["status"] == "error" and "register_haeds" in info["hier-typo"]["error"]
    assert all(p["status"] == "ok" for p in info.values() if p["builtin"])
    assert "skipped" in result.stderr  # the user is told, once per broken plugin


def test_broken_plugin_does_not_break_other_commands(site, tmp_path):
    result = hier_in_subprocess(site, "taxo", "build", "--source", "good", "-o", tmp_path / "g.json")
    assert result.returncode == 0, result.stderr
    assert Taxonomy.load(tmp_path / "g.json").source == "good"


def test_hier_load_plugins_restricts_loading(site):
    only = json.loads(hier_in_subprocess(site, "plugins", "--json", env_plugins="hier-good").stdout)
    assert {p["distribution"] for p in only if not p["builtin"]} == {"hier-good"}
    none = json.loads(hier_in_subprocess(site, "plugins", "--json", env_plugins="").stdout)
    assert all(p["builtin"] for p in none)


def test_two_plugins_with_the_same_name_is_an_error_naming_both(tmp_path):
    for dist in ("hier-one", "hier-two"):
        module = dist.replace("-", "_")
        make_distribution(tmp_path, dist, module, """
            from hier.plugins import hookimpl
            @hookimpl
            def register_taxonomy_sources(register):
                register("same", lambda path: None)
        """)
    result = hier_in_subprocess(tmp_path, "taxo", "build", "--source", "same", "-o", tmp_path / "x.json")
    assert result.returncode == 1
    assert "hier: error: taxonomy source 'same' is registered by both" in result.stderr
    assert "'hier-one'" in result.stderr and "'hier-two'" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_builtins_register_through_the_hooks():
    plugins = get_plugins()
    impls = plugins.pm.hook.register_taxonomy_sources.get_hookimpls()
    assert "hier.taxo.sources" in [i.plugin_name for i in impls]
    assert {"wordnet", "csv", "ecotaxa"} <= set(list_taxonomy_sources())
    assert list_taxonomy_sources("e*") == ["ecotaxa"]
    entry = plugins.registry("taxonomy_sources").get("csv")
    assert entry.plugin == "hier" and entry.help.startswith("Plankton table")


def test_unknown_name_suggests_close_matches_and_bad_options_are_named():
    with pytest.raises(InputError, match=r"unknown backbone 'resnet19'; did you mean 'resnet18'"):
        create_backbone("resnet19")
    with pytest.raises(InputError, match=r"backbone 'smallcnn' does not accept option\(s\) 'colour'"):
        create_backbone("smallcnn", colour=3)
    with pytest.raises(InputError, match="does not accept option"):
        create_taxonomy("ecotaxa", "x.tsv", tree="longest")


class TinySource:
    @hookimpl
    def register_taxonomy_sources(self, register):
        register("tiny", lambda path: Taxonomy([{"id": str(path), "parent": None}]), help="one node")


def test_registered_plugin_context_and_fixture(hier_plugin):
    with registered_plugin(TinySource()):
        assert create_taxonomy("tiny", "x").ids == ["x"]
    assert "tiny" not in list_taxonomy_sources()
    hier_plugin(TinySource())
    assert get_plugins().registry("taxonomy_sources").get("tiny").help == "one node"


def test_registered_plugin_uses_a_plugin_already_loaded_and_leaves_it_loaded(hier_plugin):
    plugin = TinySource()
    hier_plugin(plugin)  # as if its package were installed and its entry point loaded
    with registered_plugin(plugin):
        assert create_taxonomy("tiny", "x").ids == ["x"]
    hier_plugin(plugin)
    assert "tiny" in list_taxonomy_sources()
