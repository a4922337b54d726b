"""docs/plugins.md followed literally: its file blocks, installed into a throw-away virtual environment,
pass their own tests and train an epoch through the CLI.

The environment sees the packages of the one running the tests (hier, torch, pip, setuptools) through a
.pth file, and the install is offline (--no-index, --no-build-isolation): nothing is downloaded and the
environment running the tests is left as it was.
"""

import importlib.util
import json
import os
import re
import site
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "hier-cosface"
# A fenced block whose first line is "# file: PATH" is a file of the guide's package.
FILE_BLOCK = re.compile(r"^```\w*\n(# file: (\S+)\n.*?)^```$", re.MULTILINE | re.DOTALL)


def guide_files() -> dict[str, str]:
    return {match[2]: match[1] for match in FILE_BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))}


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, timeout=300, **kwargs)


def test_the_guide_holds_a_whole_package_and_the_example_is_a_copy():
    files = guide_files()
    assert {"pyproject.toml", "hier_cosface/__init__.py", "tests/test_cosface.py"} <= set(files)
    example = {
        p.relative_to(EXAMPLE).as_posix(): p.read_text(encoding="utf-8")
        for p in EXAMPLE.rglob("*")
        if p.suffix in (".py", ".toml") and not {"build", "__pycache__"} & set(p.relative_to(EXAMPLE).parts)
    }
    assert example == files, "examples/hier-cosface/ differs from the file blocks of docs/plugins.md"


@dataclass(frozen=True)
class Venv:
    root: Path  # holds the package's sources (hier-cosface/) and the environment (venv/)
    python: Path
    env: dict  # every installed plugin loaded

    def hier(self, *args, **env) -> subprocess.CompletedProcess:
        return run(self.python, "-m", "hier.cli", *args, env={**self.env, **env})


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    """The guide's package installed in a fresh virtual environment."""
    root = tmp_path_factory.mktemp("guide")
    package = root / "hier-cosface"
    for name, text in guide_files().items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, encoding="utf-8")
    made = run(sys.executable, "-m", "venv", "--without-pip", root / "venv")
    assert made.returncode == 0, made.stderr
    python = root / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    assert purelib.is_relative_to(root)
    # addsitedir, not a bare path: the parent's own .pth files (an editable hier) must run too
    (purelib / "parent-environment.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages()), encoding="utf-8"
    )
    # offline: no index, no isolated build environment (setuptools comes from the parent), hier already there
    offline = ["--quiet", "--no-index", "--no-build-isolation", "--no-deps", "--no-cache-dir"]
    installed = run(python, "-m", "pip", "install", *offline, package)
    assert installed.returncode == 0, f"{installed.stderr}\n(building needs setuptools>=70.1: the dev extra)"
    assert (purelib / "hier_cosface" / "cosface.py").is_file()
    env = {k: v for k, v in os.environ.items() if k not in ("HIER_LOAD_PLUGINS", "PYTHONPATH")}
    return Venv(root, python, env)


def test_the_guides_own_tests_pass(venv):
    # run from outside the package, so that they import the installed copy
    env = {**venv.env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # they need no pytest plugin; starts faster
    result = run(
        venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hier-cosface/tests", cwd=venv.root, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_environment_running_the_tests_is_left_as_it_was(venv):
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("hier-cosface")
    assert importlib.util.find_spec("hier_cosface") is None


def test_listed_by_plugins_and_heads(venv):
    plugins = json.loads(venv.hier("plugins", "--json").stdout)
    cosface = next(p for p in plugins if p["distribution"] == "hier-cosface")
    assert cosface["status"] == "ok" and cosface["hooks"] == ["register_heads", "register_losses"]
    heads = json.loads(venv.hier("heads", "--json").stdout)
    help_line = "Large-margin cosine head: s * (cos(theta) - m) on the true class."  # the class docstring's
    assert {"name": "cosface", "plugin": "hier-cosface", "help": help_line} in heads


def test_fit_trains_an_epoch_from_the_heads_default_config(venv, synth_dataset, tmp_path):
    data, run_dir = synth_dataset, tmp_path / "run"
    tiny = "--backbone smallcnn --epochs 1 --image-size 32 --batch-size 32 --set backbone_options.width=8"
    tiny += " --set backbone_options.depth=3"
    result = venv.hier(
        "fit", data, "--taxonomy", data / "taxonomy.json", "--head", "cosface", *tiny.split(), "-o", run_dir
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    # no --loss, no options given: all of it from CosFace.default_config
    assert (config["head"], config["loss"]) == ("cosface", "label-smoothing")
    assert config["head_options"] == {"scale": 30.0, "margin": 0.35}
    assert config["loss_options"] == {"smoothing": 0.1}
    assert (run_dir / "model.safetensors").is_file()
