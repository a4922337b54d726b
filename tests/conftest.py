"""Shared fixtures: the project's CLI run in-process, real data paths."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# Tests see only the built-in plugins unless a test asks for more (entry points of installed
# third-party packages would otherwise change what the registries list).
os.environ.setdefault("HIER_LOAD_PLUGINS", "")


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def run_cli(capfd):
    """Run ``hier ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from hier.cli.main import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """A small synthetic benchmark (real PNG files), made once per test session."""
    from hier.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, seed=0, images=300, size=32, unseen=2)
    return out


@dataclass(frozen=True)
class Trained:
    data: Path  # a synthetic dataset (train/ val/ test/ unseen/)
    runs: dict[str, Path]  # head name -> run directory, one head per score space (leaf, node)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    """Small trained runs for the inference, calibration and evaluation tests, built once per session."""
    from hier.data.synth import synthesize
    from hier.runs.config import resolve_config
    from hier.train.fit import fit

    root = tmp_path_factory.mktemp("inference")
    data = root / "synth"
    synthesize(data, images=150, size=32, unseen=1, depth=3, workers=1)
    runs = {}
    for head in ("classifier", "spheremulti"):
        config = resolve_config(flags={"head": head, "backbone": "smallcnn", "epochs": 1, "image_size": 32,
                                       "batch_size": 32, "device": "cpu"},
                                sets=["backbone_options.width=8", "backbone_options.depth=3", "embedding_size=16"])
        runs[head] = fit(data, data / "taxonomy.json", config, root / "runs" / head)
    return Trained(data, runs)


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of a trained run that a test may write calibration or evaluation files into."""
    def copy(head: str = "classifier") -> Path:
        return Path(shutil.copytree(trained.runs[head], tmp_path / head))
    return copy


@pytest.fixture(scope="module")
def tree():
    """The small tree of the answer and metric tests:

        root ─┬─ A ─┬─ a1              node order: root A c a1 a2 x y
              │     └─ a2 ─┬─ x        leaves: c a1 x y (4); c is a leaf at depth 1
              │            └─ y        information I(v) = log2(4 / #leaves under v):
              └─ c                       root 0, A log2(4/3), c 2, a1 2, a2 1, x 2, y 2
                                       height: root 3, A 2, a2 1, leaves 0
    """
    from hier.taxo import Taxonomy
    from hier.tree import TreeTensors

    taxonomy = Taxonomy([{"id": "root", "parent": None}, {"id": "A", "parent": "root"},
                         {"id": "c", "parent": "root"}, {"id": "a1", "parent": "A"}, {"id": "a2", "parent": "A"},
                         {"id": "x", "parent": "a2"}, {"id": "y", "parent": "a2"}])
    return TreeTensors(taxonomy)


@pytest.fixture(scope="session")
def taxonomy():
    """r ─┬─ a ─┬─ a1 / a2, and b under r: the runs' and training tests' taxonomy."""
    from hier.taxo import Taxonomy

    return Taxonomy([{"id": i, "name": i, "parent": p}
                     for i, p in [("r", None), ("a", "r"), ("a1", "a"), ("a2", "a"), ("b", "r")]])


@pytest.fixture(scope="session")
def tiny_config():
    """A resolved config for a width-8 smallcnn at 32 px; keyword arguments are command-line flags."""
    from hier.runs.config import resolve_config

    def make(*sets: str, **flags) -> dict:
        return resolve_config(flags={"head": "classifier", "backbone": "smallcnn", "image_size": 32, "batch_size": 4, "epochs": 2,
                                     "device": "cpu", **flags},
                              sets=["backbone_options.width=8", "backbone_options.depth=2", "embedding_size=16",
                                    *sets])
    return make


TINY_TENSOR_TESTS = ("heads", "losses", "tree")


@pytest.fixture(autouse=True)
def one_thread(request):
    """The tree, head and loss tests' tensors are tiny: intra-op threads only add waiting, many times the work
    when cores are shared."""
    if request.path.parent.name not in TINY_TENSOR_TESTS:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tree_from_parents(parents):
    """Node 0 is the root; node i + 1 hangs under parents[i] (an index below i + 1)."""
    from hier.taxo import Taxonomy

    nodes = [{"id": "n0", "parent": None}]
    nodes += [{"id": f"n{i + 1}", "parent": f"n{p}"} for i, p in enumerate(parents)]
    return Taxonomy(nodes)


@pytest.fixture(scope="session")
def five():
    """The five-node tree, node order r a a1 a2 b (indices 0..4):
        r ─┬─ a ─┬─ a1      leaves a1 a2 b (leaf columns 0 1 2); b is one level short
           │     └─ a2      levels: depth 1 = (a, b), depth 2 = (a1, a2, b moved down)
           └─ b
    """
    from hier.taxo import Taxonomy

    return Taxonomy([{"id": i, "name": i, "parent": p}
                     for i, p in [("r", None), ("a", "r"), ("a1", "a"), ("a2", "a"), ("b", "r")]])


@pytest.fixture(scope="session")
def seven():
    """Leaves at depths 1, 2 and 3: r(a(c(c1, c2), d), b)."""
    return tree_from_parents([0, 1, 2, 2, 1, 0])


@pytest.fixture(scope="session")
def make_tree():
    """tree_from_parents, for tests that draw trees (hypothesis)."""
    return tree_from_parents


from hier.plugins.testing import hier_plugin  # noqa: E402, F401  (the fixture users get the same way)
