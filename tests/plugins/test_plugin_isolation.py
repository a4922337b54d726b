"""A conflicting or misbehaving plugin is isolated, never takes hier down (issue 28, class 7): real
distributions (dist-info with an entry point) on the path of a hier run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest


def install(root, dist: str, source: str) -> None:
    """A real installed distribution: a module plus its dist-info with an entry point of group hier."""
    module = dist.replace("-", "_")
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hier]\n{module} = {module}\n")


def hier(site, *args, timeout=180, **env):
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    environment.pop("HIER_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "hier.cli", *map(str, args)], check=False, capture_output=True,
                          text=True,
                          env=environment, timeout=timeout)


SHADOW = """
    from hier.plugins import hookimpl
    @hookimpl
    def register_heads(register):
        register("arcface", object)  # a name of hier's own
"""


def test_a_plugin_head_named_like_a_builtin_is_skipped_and_the_builtin_kept(tmp_path):
    install(tmp_path, "hier-shadow", SHADOW)
    heads = hier(tmp_path, "heads", "--json")
    assert heads.returncode == 0, heads.stderr
    arcface = next(h for h in json.loads(heads.stdout) if h["name"] == "arcface")
    assert arcface["plugin"] == "hier"
    listed = hier(tmp_path, "plugins", "--json")
    shadow = next(p for p in json.loads(listed.stdout) if p["distribution"] == "hier-shadow")
    assert shadow["status"] == "error" and "'arcface' is one of hier's own" in shadow["error"]
    assert "HIER_LOAD_PLUGINS" in shadow["error"]


def test_a_plugin_command_named_like_hiers_is_skipped(tmp_path):
    install(tmp_path, "hier-predict", """
        from hier.plugins import hookimpl
        @hookimpl
        def register_commands(app):
            @app.command("predict")
            def predict():
                print("the plugin's predict")
            @app.command("hello")
            def hello():
                print("hello")
    """)
    done = hier(tmp_path, "predict", "--help")
    assert done.returncode == 0 and "the plugin's predict" not in done.stdout and "--confidence" in done.stdout
    listed = hier(tmp_path, "plugins", "--json")
    info = next(p for p in json.loads(listed.stdout) if p["distribution"] == "hier-predict")
    assert info["status"] == "error" and "'predict' is one of hier's own" in info["error"]
    assert hier(tmp_path, "hello").returncode == 2  # the whole plugin is skipped, not half of it


def test_a_plugin_that_prints_at_import_leaves_stdout_clean(tmp_path):
    install(tmp_path, "hier-noisy", """
        print("hello from a noisy plugin")
        from hier.plugins import hookimpl
        @hookimpl
        def register_taxonomy_sources(register):
            print("registering, noisily")
            register("noisy", lambda path: None)
    """)
    taxonomy = tmp_path / "t.json"
    taxonomy.write_text('{"format": "hier-taxonomy", "version": 1, "nodes": [{"id": "r", "parent": null}]}')
    done = hier(tmp_path, "taxo", "show", taxonomy, "--format", "json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # nothing but the JSON
    assert "noisy plugin" in done.stderr
    listed = hier(tmp_path, "plugins", "--json")
    json.loads(listed.stdout)
    assert "registering, noisily" in listed.stderr


def test_a_plugin_whose_import_hangs_is_skipped_after_the_timeout(tmp_path):
    install(tmp_path, "hier-hang", """
        import time
        time.sleep(3600)
    """)
    started = time.monotonic()
    done = hier(tmp_path, "--help", HIER_PLUGIN_TIMEOUT="2")
    assert done.returncode == 0 and "fit" in done.stdout, done.stderr
    assert time.monotonic() - started < 60
    assert "hier-hang" in done.stderr and "HIER_PLUGIN_TIMEOUT" in done.stderr


@pytest.mark.parametrize("value", ["soon"])
def test_a_bad_plugin_timeout_is_one_line(tmp_path, value):
    install(tmp_path, "hier-quiet", "x = 1\n")
    done = hier(tmp_path, "plugins", HIER_PLUGIN_TIMEOUT=value)
    assert done.returncode == 2 and "HIER_PLUGIN_TIMEOUT must be a number" in done.stderr, done.stderr
