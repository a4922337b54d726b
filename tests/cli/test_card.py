"""The three lines of the project's card, typed as a new user types them, in fresh folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hier.taxo import Taxonomy

HIER = Path(sys.executable).with_name("hier")  # the console script


def hier(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HIER), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HIER_OFFLINE": "1"})


def test_taxo_build_wordnet_with_no_list_writes_imagenet_tree_here(tmp_path):
    done = hier("taxo", "build", "--source", "wordnet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    taxonomy = Taxonomy.load(tmp_path / "taxonomy.json")
    assert len(taxonomy.leaves) == 1000 and taxonomy.names[taxonomy.root] == "entity"
    assert "wrote taxonomy.json" in done.stdout
    again = hier("taxo", "build", "--source", "wordnet", cwd=tmp_path)  # never over an existing file
    assert again.returncode == 2 and "--force" in again.stderr


def test_fit_then_predict_in_the_dataset_folder(tmp_path):
    from hier.data.synth import synthesize

    data = tmp_path / "synth"
    synthesize(data, seed=1, images=150, size=32, unseen=0, depth=3, workers=1)
    fitted = hier("fit", "--head", "arcface-multihead", cwd=data)
    assert fitted.returncode == 0, fitted.stderr
    assert f"taxonomy: the dataset's {Path('.') / 'taxonomy.json'}" in fitted.stderr
    (run,) = (data / "runs").iterdir()
    images = data / "img"
    images.mkdir()
    for source in sorted((data / "test").rglob("*.png"))[:3]:
        shutil.copy(source, images / source.name)
    predicted = hier("predict", "--confidence", "0.9", "img/", cwd=data)
    assert predicted.returncode == 0, predicted.stderr
    assert f"newest run under runs/: runs/{run.name}" in predicted.stderr
    rows = predicted.stdout.splitlines()
    assert rows[0].startswith("path,node_id") and len(rows) == 4
