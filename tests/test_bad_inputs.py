"""The bad-input catalogue: every case is one clear line on stderr, exit 2 (input) or 1 (runtime),
no traceback, and nothing half-written left behind."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from hier.runs.config import resolve_config
from hier.train.fit import fit

TINY = ["--backbone", "smallcnn", "--epochs", "1", "--image-size", "32", "--batch-size", "32", "--set", "backbone_options.width=8",
        "--set", "backbone_options.depth=3"]


@pytest.fixture(scope="module")
def world(synth_dataset, tmp_path_factory):
    """A trained run and a folder of bad files, made once; each case copies what it may damage."""
    root = tmp_path_factory.mktemp("bad")
    run = root / "run"
    config = resolve_config(flags={"head": "classifier", "backbone": "smallcnn", "epochs": 1, "image_size": 32,
                                   "batch_size": 32},
                            sets=["backbone_options.width=8", "backbone_options.depth=3"])
    fit(synth_dataset, synth_dataset / "taxonomy.json", config, run)
    other = root / "other_run"
    fit(synth_dataset, synth_dataset / "taxonomy.json", {**config, "head": "spheremulti", "loss": "bce",
                                                         "head_options": {}}, other)
    files = root / "files"
    files.mkdir()
    (files / "empty.json").write_text("")
    (files / "binary.json").write_bytes(bytes(range(256)) * 4)
    (files / "latin1.json").write_bytes('{"format": "hier-taxonomy", "nodes": [{"id": "caf\xe9"}]}'.encode("latin-1"))
    nodes = lambda *n: json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": list(n)})  # noqa: E731
    (files / "cycle.json").write_text(nodes({"id": "r", "parent": None}, {"id": "a", "parent": "b"},
                                            {"id": "b", "parent": "a"}))
    (files / "roots.json").write_text(nodes({"id": "r", "parent": None}, {"id": "s", "parent": None}))
    (files / "dangling.json").write_text(nodes({"id": "r", "parent": None}, {"id": "a", "parent": "ghost"}))
    (files / "dupes.json").write_text(nodes({"id": "r", "parent": None}, {"id": "a", "parent": "r"},
                                            {"id": "a", "parent": "r"}))
    (files / "other.json").write_text(nodes({"id": "r", "parent": None}, {"id": "x", "parent": "r"},
                                            {"id": "y", "parent": "r"}))
    (files / "no_lineage.tsv").write_text("object_id\tobject_area\n1\t30\n")
    (files / "ragged.tsv").write_text("object_id\tobject_annotation_hierarchy\n1\tliving>a\n2\tliving>b\textra\n")
    (files / "decimal_commas.tsv").write_text("object_id;object_area;object_annotation_hierarchy\n1;12,5;living>a\n")
    (files / "wrong_type.yaml").write_text("epochs: many\n")
    (files / "unknown_key.yaml").write_text("lrr: 0.1\n")
    (files / "wnids.txt").write_text("n01443537\nn99999999\n")
    (files / "edges.csv").write_text("parent,child\nanimal,cat\nplant,cat\n")
    (files / "empty_dataset").mkdir()
    (files / "no_images" / "Copepoda").mkdir(parents=True)
    (files / "no_images" / "Copepoda" / "notes.txt").write_text("no image here")
    shutil.copytree(synth_dataset / "train", files / "unknown_labels" / "Not_A_Taxon", dirs_exist_ok=True,
                    ignore=lambda d, names: names[4:])
    (files / "not_a_file.png").mkdir()
    (files / "a_file").write_text("x")
    (files / "tree.png").write_bytes(b"a picture the user keeps")
    (files / "deep.json").write_text('{"format": "hier-taxonomy", "version": 1, "nodes": ' + "[" * 100_000
                                     + "]" * 100_000 + "}")
    (files / "deep.yaml").write_text("epochs: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (files / "nan_name.json").write_text('{"format": "hier-taxonomy", "version": 1, "nodes": '
                                         '[{"id": "r", "parent": null}, {"id": "a", "name": NaN, "parent": "r"}]}')
    (files / "negative_lr.yaml").write_text("lr: -0.1\n")
    (files / "header_only.csv").write_text("path\n")
    (files / "fake.zip").write_text("object_id\tobject_annotation_hierarchy\n1\tliving>a\n")
    (files / "dup_header.csv").write_text("phylum,genus,genus\nArthropoda,Calanus,Oithona\n")
    (files / "zwsp.csv").write_text("lineage\nliving>Calanus\nliving>Calanus\u200b\n")
    return {"run": run, "other": other, "files": files, "data": synth_dataset}


def case(*args, code=2, message):
    return pytest.param(args, code, message, id=message[:40])


CASES = [
    # files that cannot be read
    case("taxo", "show", "{f}/missing.json", message="missing.json: no such file"),
    case("taxo", "show", "{f}/empty.json", message="empty.json: the file is empty"),
    case("taxo", "show", "{f}/binary.json", message="binary.json: binary file, expected text"),
    case("taxo", "show", "{f}/latin1.json", message="latin1.json: line 1: not UTF-8"),
    case("taxo", "stats", "{f}/empty_dataset", message="empty_dataset: is a folder, expected a file"),
    # broken taxonomies
    case("taxo", "show", "{f}/cycle.json", message="cycle.json: node 'a': the parents form a cycle"),
    case("taxo", "stats", "{f}/roots.json", message="roots.json: 2 roots ('r', 's')"),
    case("taxo", "render", "{f}/dangling.json", "-o", "{tmp}/tree.png",
         message="dangling.json: node 'a': parent 'ghost' is not a node"),
    case("taxo", "prune", "{f}/dupes.json", "-o", "{tmp}/out.json", message="dupes.json: node 'a': duplicate node id"),
    case("taxo", "build", "--source", "csv", "{f}/edges.csv", "--parent-column", "parent", "--child-column", "child",
         "-o", "{tmp}/out.json", message="edges.csv: line 3: 'cat' has two parents"),
    case("taxo", "build", "--source", "wordnet", "--wnids", "{f}/wnids.txt", "-o", "{tmp}/out.json",
         message="wnids.txt: line 2: n99999999 is not a noun synset of WordNet 3.0"),
    # EcoTaxa exports
    case("taxo", "build", "--source", "ecotaxa", "{f}/no_lineage.tsv", "-o", "{tmp}/out.json",
         message="no_lineage.tsv: not an EcoTaxa export"),
    case("taxo", "build", "--source", "ecotaxa", "{f}/ragged.tsv", "-o", "{tmp}/out.json",
         message="ragged.tsv: line 3: 3 fields where the header has 2"),
    case("taxo", "build", "--source", "ecotaxa", "{f}/decimal_commas.tsv", "-o", "{tmp}/out.json",
         message="separated by ';', as a spreadsheet in a decimal-comma locale"),
    # datasets
    case("taxo", "validate", "{data}/taxonomy.json", "{f}/unknown_labels",
         message="1 label(s) do not name exactly one node: 'Not_A_Taxon'"),
    case("fit", "{f}/unknown_labels", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY,
         message="Not_A_Taxon"),
    case("fit", "{f}/empty_dataset", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY,
         message="empty_dataset"),
    case("fit", "{f}/no_images", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, message="no_images"),
    case("fit", "{f}/missing_dataset", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY,
         message="missing_dataset: no such file or folder"),
    # configs and registry names
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--config", "{f}/wrong_type.yaml", "-o", "{tmp}/run",
         message="wrong_type.yaml: 'epochs' must be int, got 'many'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--config", "{f}/unknown_key.yaml", "-o", "{tmp}/run",
         message="unknown config key 'lrr' (did you mean 'lr'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--set", "lr", "-o", "{tmp}/run",
         message="--set expects key=value, got 'lr'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--head", "arcfce", "-o", "{tmp}/run", *TINY,
         message="unknown head 'arcfce'; did you mean 'arcface'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--loss", "hbec", "-o", "{tmp}/run", *TINY,
         message="unknown loss 'hbec'; did you mean 'hbce'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--backbone", "resnet19",
         message="unknown backbone 'resnet19'; did you mean 'resnet18'"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--weights", "{f}/nothing.pth", "-o", "{tmp}/run", *TINY,
         message="nothing.pth: no such weights file"),
    case("fit", "{data}", "-t", "{f}/other.json", "-o", "{tmp}/run", *TINY, message="labels match no single taxonomy node"),
    # run directories and checkpoints
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{run}", *TINY,
         message="the run directory already exists; continue it with --resume or replace it with --force"),
    case("fit", "{data}", "--resume", "{f}/empty_dataset", message="empty_dataset: not a hier run directory"),
    case("fit", "{data}", "--resume", "{run}", "--epochs", "3", "--batch-size", "7",
         message="changed: batch_size (only epochs may change)"),
    case("fit", "{data}", "--resume", "{truncated}", "--epochs", "2", message="last.pt: not a readable checkpoint"),
    case("fit", "{data}", "--resume", "{malicious}", "--epochs", "2", message="last.pt: refused"),
    case("predict", "{wrong_taxonomy}", "{data}/test", "--confidence", "0.9", "-o", "{tmp}/p.csv",
         message="do not fit this run's head, backbone and taxonomy"),
    case("predict", "{wrong_head}", "{data}/test", "--confidence", "0.9", "-o", "{tmp}/p.csv",
         message="do not fit this run's head, backbone and taxonomy"),
    case("predict", "{f}/empty_dataset", "{data}/test", "--confidence", "0.9", "-o", "{tmp}/p.csv",
         message="not a hier run directory"),
    # confidence and output paths
    case("predict", "{run}", "{data}/test", "--confidence", "0", "-o", "{tmp}/p.csv", message="confidence"),
    case("predict", "{run}", "{data}/test", "--confidence", "1.5", "-o", "{tmp}/p.csv", message="confidence"),
    case("evaluate", "{run}", "{data}", "--confidence", "-0.2", message="confidence"),
    case("predict", "{run}", "{data}/test", "--confidence", "0.9", "-o", "{tmp}/no/such/folder/p.csv",
         message="folder: the output folder does not exist"),
    case("predict", "{run}", "{data}/test", "--confidence", "0.9", "-o", "{f}/a_file/p.csv", message="a_file: is a file, not a folder to write into"),
    case("taxo", "build", "--source", "ecotaxa", "{ecotaxa}", "-o", "{tmp}/missing/out.json",
         message="missing: the output folder does not exist"),
    case("data", "synth", "{f}", "--images", "50", message="not empty"),
    # outputs: never over one of the command's inputs, never over an existing file without --force
    case("compare", "{copy}", "--csv", "{copy}/evaluation.json", "--force",
         message="evaluation.json: is one of the command's inputs"),
    case("compare", "{copy}", "--csv", "{f}/a_file", message="a_file: exists; use --force"),
    case("compare", "{copy}", "--plot", "{f}/tree.png", message="tree.png: exists; use --force"),
    case("predict", "{run}", "{img}", "--format", "csv", "-o", "{img}", "--force",
         message="img.png: is one of the command's inputs"),
    case("predict", "{copy}", "{data}/test", "--format", "csv", "-o", "{copy}/config.yaml", "--force",
         message="config.yaml: is one of the command's inputs"),
    case("predict", "{copy}", "{data}/test", "-o", "{copy}/checkpoints/p.csv", "--force",
         message="p.csv: is inside"),
    case("evaluate", "{copy}", "{data}", "--plot", "{f}/tree.png", message="tree.png: exists; use --force"),
    case("evaluate", "{copy}", "{dcopy}", "--plot", "{dcopy_image}", "--force",
         message="is one of the command's inputs"),
    case("taxo", "render", "{data}/taxonomy.json", "-o", "{f}/tree.png", message="tree.png: exists; use --force"),
    # every config source goes through one validation, before anything is written
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--set", "epochs=0",
         message="--set: 'epochs' must be at least 1, got 0"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--set", "batch_size=0",
         message="--set: 'batch_size' must be at least 1, got 0"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--set", "image_size=2",
         message="--set: 'image_size' must be at least 8, got 2"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--set", "embedding_dropout=2",
         message="--set: 'embedding_dropout' must be at least 0 and below 1, got 2"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--set", "lr=.nan",
         message="--set: 'lr' must be above 0, got nan"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--config", "{f}/negative_lr.yaml",
         message="negative_lr.yaml: 'lr' must be above 0, got -0.1"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "-o", "{tmp}/run", *TINY, "--image-size", "8", "--set",
         "backbone_options.depth=5", message="image_size: the backbone 'smallcnn' cannot take 8-pixel images"),
    # usage errors: one line too
    case("taxo", "show", message="Missing argument 'taxonomy' (see hier taxo show --help)"),
    case("predict", "{run}", "{data}/test", "--bogus", message="No such option: --bogus"),
    # messages name the file
    case("predict", "{f}/a_file", "{data}/test", message="a_file: is a file, expected a run directory"),
    case("predict", "{run}", "{f}/header_only.csv", message="header_only.csv: the table lists no images"),
    case("predict", "{changed_head}", "{data}/test", message="config.yaml: unknown head 'arcfacex'"),
    case("taxo", "build", "--source", "ecotaxa", "{f}/fake.zip", "-o", "{tmp}/out.json",
         message="fake.zip: not a zip archive"),
    # deeply nested JSON and YAML
    case("taxo", "show", "{f}/deep.json", message="deep.json: nested too deeply"),
    case("predict", "{deep_run}", "{data}/test", message="taxonomy.json: nested too deeply"),
    case("fit", "{data}", "-t", "{data}/taxonomy.json", "--config", "{f}/deep.yaml", "-o", "{tmp}/run",
         message="deep.yaml: nested too deeply"),
    # oddities settled as errors
    case("taxo", "show", "{f}/nan_name.json", message="nan_name.json: line 1: not valid JSON (NaN"),
    case("taxo", "build", "--source", "csv", "{f}/dup_header.csv", "--rank-columns", "phylum,genus", "-o",
         "{tmp}/out.json", message="dup_header.csv: line 1: two columns named 'genus' (2 and 3)"),
    case("taxo", "build", "--source", "csv", "{f}/zwsp.csv", "--lineage-column", "lineage", "-o", "{tmp}/out.json",
         message="zwsp.csv: line 3: 'Calanus\\u200b' holds an invisible character (U+200B ZERO WIDTH SPACE)"),
]


def prepare(world, tmp: Path, args=()) -> dict:
    """Damaged copies of the run (and of the dataset, for a case that names it), made per case: they must
    not leak into the shared ones."""
    run = world["run"]
    paths = {"f": world["files"], "data": world["data"], "run": run, "tmp": tmp,
             "ecotaxa": Path(__file__).parent / "data" / "ecotaxa_export.tsv", "img": tmp / "img.png"}
    for name in ("truncated", "malicious", "wrong_taxonomy", "wrong_head", "copy", "changed_head", "deep_run"):
        paths[name] = tmp / name
        shutil.copytree(run, paths[name])
    shutil.copy(next((world["data"] / "test").rglob("*.png")), paths["img"])
    if any("{dcopy" in a for a in args):
        paths["dcopy"] = Path(shutil.copytree(world["data"], tmp / "dcopy"))
        paths["dcopy_image"] = next((paths["dcopy"] / "test").rglob("*.png"))
    config = paths["changed_head"] / "config.yaml"
    config.write_text(config.read_text().replace("head: classifier", "head: arcfacex"))
    shutil.copy(world["files"] / "deep.json", paths["deep_run"] / "taxonomy.json")
    last = paths["truncated"] / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    (paths["malicious"] / "checkpoints" / "last.pt").write_bytes(pickle.dumps(RunsCode()))
    shutil.copy(world["files"] / "other.json", paths["wrong_taxonomy"] / "taxonomy.json")
    shutil.copy(world["other"] / "model.safetensors", paths["wrong_head"] / "model.safetensors")
    return paths


class RunsCode:
    """Unpickling this would create a file: the proof that code ran."""

    def __reduce__(self):
        return (Path.touch, (Path(MARKER),))


MARKER = "/tmp/hier-test-pickle-ran"


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("args, code, message", CASES)
def test_bad_input(world, run_cli, tmp_path, args, code, message):
    paths = prepare(world, tmp_path, args)
    Path(MARKER).unlink(missing_ok=True)
    before_tmp, before_files = listing(tmp_path), listing(world["files"])
    exit_code, _, stderr = run_cli(*[a.format(**paths) for a in args])
    assert exit_code == code, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("hier: warning:")]
    assert len(lines) == 1 and lines[0].startswith("hier: error: "), stderr
    assert message in lines[0], stderr
    assert "Traceback" not in stderr
    assert listing(tmp_path) == before_tmp, "output left behind"
    assert listing(world["files"]) == before_files
    assert not Path(MARKER).exists(), "a pickled object ran code"


def test_catalogue_is_large_enough():
    assert len(CASES) >= 30


def test_debug_shows_the_traceback(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "hier.cli", "--debug", "taxo", "show", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" in done.stderr and "x.json: no such file" in done.stderr


@pytest.mark.parametrize("make, name", [
    (lambda p: p.write_bytes(b""), "zero.png"),
    (lambda p: p.write_text("not an image"), "text.jpg"),
    (lambda p: p.write_bytes(Path(__file__).read_bytes()[:50]), "cut.jpg"),
    (lambda p: Image.new("L", (64, 64)).save(p) or p.write_bytes(p.read_bytes()[:60]), "truncated.png"),
])
def test_unreadable_images_are_reported_in_predictions_not_fatal(world, run_cli, tmp_path, make, name):
    folder = tmp_path / "images"
    folder.mkdir()
    make(folder / name)
    shutil.copy(next((world["data"] / "test").rglob("*.png")), folder / "good.png")
    code, _, stderr = run_cli("predict", world["run"], folder, "--confidence", "0.5", "-o", tmp_path / "p.csv")
    assert code == 0, stderr
    text = (tmp_path / "p.csv").read_text()
    bad = next(line for line in text.splitlines() if name in line)
    good = next(line for line in text.splitlines() if "good.png" in line)
    assert bad.split(",")[1] == "" and bad.rstrip().split(",")[-1]  # no node, an error message
    assert good.split(",")[1] != ""


def test_decompression_bomb_is_refused_in_predictions(world, run_cli, tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    folder = tmp_path / "images"
    folder.mkdir()
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                                      chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    code, _, stderr = run_cli("predict", world["run"], folder, "--confidence", "0.5", "-o", tmp_path / "p.csv")
    assert code == 0, stderr
    row = (tmp_path / "p.csv").read_text().splitlines()[1]
    assert "bomb.png" in row and "pixels" in row


def test_malicious_checkpoint_never_runs(world, tmp_path):
    from hier.runs import load_checkpoint
    from hier.taxo import InputError

    Path(MARKER).unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(InputError, match="refused"):
        load_checkpoint(path)
    assert not Path(MARKER).exists()
    torch.save({"ok": torch.zeros(2)}, tmp_path / "fine.pt")
    assert load_checkpoint(tmp_path / "fine.pt")["ok"].shape == (2,)


def test_force_replaces_only_the_commands_own_output(run_cli, synth_dataset, tmp_path):
    """--force never deletes a folder the command did not write, nor its own inputs."""
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "field-log.txt").write_text("three weeks at sea")
    fit = ["fit", synth_dataset, "-t", synth_dataset / "taxonomy.json", *TINY, "--force", "-o"]
    code, _, err = run_cli(*fit, precious)
    assert code == 2 and "'field-log.txt', which hier did not write there" in err
    assert (precious / "field-log.txt").read_text() == "three weeks at sea"
    before = sorted(p.relative_to(synth_dataset) for p in synth_dataset.rglob("*"))
    for holding in (synth_dataset, synth_dataset.parent):  # the dataset itself, a folder around it
        code, _, err = run_cli(*fit, holding)
        assert code == 2 and "the run directory would hold the input" in err, err
    assert sorted(p.relative_to(synth_dataset) for p in synth_dataset.rglob("*")) == before
    code, _, err = run_cli("data", "synth", precious, "--images", "200", "--size", "16", "--force")
    assert code == 2 and "which hier did not write there; --force replaces only its own output" in err
    assert (precious / "field-log.txt").exists()


# ---- issue 17, classes 5, 7 and 8: calibration files, one output written twice, split names ---------------


def _calibrated_copy(world, tmp_path: Path, **changes) -> Path:
    """A copy of the run with a calibration.json for its weights, some fields changed."""
    from hier.runs.calibration import Calibration, weights_digest

    run = Path(shutil.copytree(world["run"], tmp_path / "run"))
    table = [{"level": 0.5, "threshold": 0.4, "correct": 0.9, "lower_bound": 0.8, "mean_depth": 2.0,
              "information_recall": 0.5}]
    data = {**vars(Calibration(temperature=1.5, delta=0.05, n=100, table=table, weights_sha256=weights_digest(run))),
            **changes}
    (run / "calibration.json").write_text(json.dumps(data))
    return run


@pytest.mark.parametrize("changes, message", [
    ({"temperature": float("nan")}, "temperature is nan"),
    ({"temperature": -1.0}, "temperature is -1.0"),
    ({"temperature": "1.5"}, "temperature is '1.5'"),
    ({"table": []}, "the confidence table is empty"),
    ({"table": [{"level": 0.5, "threshold": 1.5}]}, "table entry 0's threshold is 1.5"),
    ({"table": [{"level": 0.9, "threshold": 0.5}, {"level": 0.8, "threshold": 0.5}]}, "table entry 1's level"),
    ({"delta": 0}, "delta is 0"),
    ({"n": 0}, "n is 0"),
    ({"surprise": 1}, "unexpected keyword argument 'surprise'"),
])
def test_a_damaged_calibration_file_is_refused_on_load(world, run_cli, tmp_path, changes, message):
    run = _calibrated_copy(world, tmp_path, **changes)
    image = next((world["data"] / "test").rglob("*.png"))
    code, _, stderr = run_cli("predict", run, image, "--confidence", "0.5", "-o", tmp_path / "p.csv")
    assert code == 2 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "calibration.json: not a readable calibration file" in lines[0], stderr
    assert message in lines[0], stderr
    assert not (tmp_path / "p.csv").exists()


def test_a_valid_calibration_file_is_used(world, run_cli, tmp_path):
    run = _calibrated_copy(world, tmp_path)
    image = next((world["data"] / "test").rglob("*.png"))
    code, _, stderr = run_cli("predict", run, image, "--confidence", "0.5", "-o", tmp_path / "p.csv")
    assert code == 0 and "temperature 1.500" in stderr and "threshold 0.400" in stderr, stderr


def test_two_predict_runs_on_one_output_the_second_fails_clearly(world, tmp_path):
    """Two processes start on one output; the first to finish wins, the other fails and says so."""
    import subprocess
    import sys

    images = sorted((world["data"] / "test").rglob("*.png"))[:40]
    out = tmp_path / "p.csv"
    command = [sys.executable, "-m", "hier.cli", "predict", str(world["run"]), *map(str, images), "--confidence",
               "0.5", "-o", str(out), "--workers", "0"]
    first, second = (subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2))
    results = [(p.wait(timeout=300), p.stderr.read()) for p in (first, second)]
    assert sorted(code for code, _ in results) == [0, 2], results
    failed = next(err for code, err in results if code == 2)
    # caught while both write (the lock, or the exclusive rename), or at the start when the first has finished
    assert "p.csv" in failed and any(say in failed for say in ("another command", "another process", "exists;")), failed
    assert "Traceback" not in failed
    assert len(out.read_text().splitlines()) == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]  # no lock or temporary file left


def test_an_unknown_split_name_is_an_input_error_naming_the_row(world, run_cli, tmp_path):
    images = sorted((world["data"] / "train").rglob("*.png"))[:3]
    table = tmp_path / "list.csv"
    table.write_text("path,label,split\n" + "".join(
        f"{p},{p.parent.name},{split}\n" for p, split in zip(images, ("train", "tarin", "val"))))
    code, _, stderr = run_cli("fit", table, "--taxonomy", world["data"] / "taxonomy.json", "-o", tmp_path / "run",
                              *TINY)
    assert code == 2 and "Traceback" not in stderr
    assert "list.csv: row 2: unknown split 'tarin' in column 'split'" in stderr, stderr
    assert not (tmp_path / "run").exists()


def test_top_k_is_capped_at_the_number_of_leaves(world, run_cli, tmp_path):
    from hier.taxo import Taxonomy

    leaves = len(Taxonomy.load(world["run"] / "taxonomy.json").leaves)
    image = next((world["data"] / "test").rglob("*.png"))
    with pytest.warns(UserWarning, match=f"--top-k 1000000 is more than the {leaves} leaves"):
        code, _, stderr = run_cli("predict", world["run"], image, "--top-k", 1_000_000, "-o", tmp_path / "p.csv")
    assert code == 0, stderr
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert len(header) == 7 + 2 * leaves


def test_a_truncated_jpeg_is_named_as_one(world, run_cli, tmp_path):
    whole = tmp_path / "whole.jpg"
    Image.new("RGB", (64, 64), "red").save(whole)
    (tmp_path / "cut.jpg").write_bytes(whole.read_bytes()[:300])
    (tmp_path / "cut.png").write_bytes(next((world["data"] / "test").rglob("*.png")).read_bytes()[:40])
    code, out, stderr = run_cli("predict", world["run"], tmp_path / "cut.jpg", tmp_path / "cut.png")
    assert code == 0, stderr
    errors = [line.rsplit(",", 1)[-1] for line in out.splitlines()[1:]]
    assert errors[0].startswith("truncated or damaged JPEG file") and errors[1].startswith("truncated or damaged PNG")


def test_unreadable_validation_images_are_reported(world, run_cli, tmp_path):
    data = Path(shutil.copytree(world["data"], tmp_path / "data"))
    bad = next((data / "val").rglob("*.png"))
    bad.write_bytes(b"not an image")
    with pytest.warns(UserWarning) as told:
        code, _, stderr = run_cli("fit", data, "-t", data / "taxonomy.json", *TINY, "-o", tmp_path / "run")
    assert code == 0, stderr
    assert any(str(w.message).startswith("1 of ") and str(bad) in str(w.message)
               for w in told), [str(w.message) for w in told]


def test_csv_missing_value_markers_and_split_lineages_are_told(run_cli, tmp_path):
    """'NaN' cells are a spreadsheet's empty cells; an empty middle rank that splits a taxon is warned about."""
    from hier.taxo import Taxonomy

    (tmp_path / "ranks.csv").write_text("phylum,class,genus\nArthropoda,Copepoda,Calanus\nArthropoda,NaN,Oithona\n"
                                        "Arthropoda,,Calanus\n")
    with pytest.warns(UserWarning) as told:
        code, _, stderr = run_cli("taxo", "build", "--source", "csv", tmp_path / "ranks.csv",
                                  "--rank-columns", "phylum,class,genus", "-o", tmp_path / "t.json")
    assert code == 0, stderr
    assert "NaN" not in Taxonomy.load(tmp_path / "t.json").names
    said = "\n".join(str(w.message) for w in told)
    assert "ranks.csv: 1 cell(s) hold 'NaN' or a like marker of a missing value; read as empty" in said
    assert ("ranks.csv: line 4: genus 'Calanus' is also under another lineage (line 2); an empty rank cell makes "
            "it a node apart") in said


def test_a_failure_after_the_run_directory_exists_leaves_a_resumable_run_or_nothing(run_cli, synth_dataset,
                                                                                  tmp_path, monkeypatch):
    """Disk full while writing the first checkpoint: no run; at a later epoch: a run --resume continues."""
    import errno
    import os

    real_fsync = os.fsync

    def disk_full_at(n):
        writes = []

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").rpartition("/")[2].startswith(".last.pt."):
                writes.append(fd)
                if len(writes) == n:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        return fsync

    args = ["fit", synth_dataset, "-t", synth_dataset / "taxonomy.json", *TINY, "--epochs", "2", "-o"]
    monkeypatch.setattr(os, "fsync", disk_full_at(1))
    code, _, stderr = run_cli(*args, tmp_path / "first")
    assert code == 1 and "last.pt: cannot write (No space left on device)" in stderr, stderr
    assert not (tmp_path / "first").exists()
    monkeypatch.setattr(os, "fsync", disk_full_at(2))
    code, _, stderr = run_cli(*args, tmp_path / "second")
    assert code == 1 and "hier fit --resume" in stderr, stderr
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, _, stderr = run_cli("fit", synth_dataset, "--resume", tmp_path / "second")
    assert code == 0, stderr
    assert (tmp_path / "second" / "model.safetensors").is_file()
