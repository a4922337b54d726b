"""``hier taxo`` end to end, in-process and as a real subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hier.taxo import Taxonomy

RANKS = "kingdom,phylum,class,order,family,genus,species"


def test_build_show_stats_render_prune(run_cli, data_dir, tmp_path):
    out = tmp_path / "phyto.json"
    code, stdout, _ = run_cli("taxo", "build", "--source", "csv", data_dir / "phytoplankton-taxonomy/taxonomy.csv",
                              "--rank-columns", RANKS, "--label-column", "folder", "-o", out)
    assert code == 0 and "nodes" in stdout
    t = Taxonomy.load(out)
    assert sum(t.is_label(i) for i in range(len(t))) == 95

    code, stdout, _ = run_cli("taxo", "show", out, "--depth", "1")
    assert code == 0 and "Chromista" in stdout and "Chaetoceros" not in stdout
    code, stdout, _ = run_cli("taxo", "show", out, "--format", "csv")
    assert code == 0 and stdout.splitlines()[0] == "id,parent,name,rank" and len(stdout.splitlines()) == len(t) + 1
    code, stdout, _ = run_cli("taxo", "stats", out, "--json")
    stats = json.loads(stdout)
    assert stats["nodes"] == len(t) and stats["dead_nodes"] == 0

    code, _, _ = run_cli("taxo", "render", out, "-o", tmp_path / "tree.svg")
    assert code == 0 and (tmp_path / "tree.svg").stat().st_size > 1000

    unpruned = tmp_path / "unpruned.json"
    assert run_cli("taxo", "build", "--source", "csv", data_dir / "phytoplankton-taxonomy/taxonomy.csv",
                   "--rank-columns", RANKS, "--label-column", "folder", "--no-prune", "-o", unpruned)[0] == 0
    code, stdout, _ = run_cli("taxo", "prune", unpruned, "-o", tmp_path / "pruned.json")
    assert code == 0
    assert Taxonomy.load(tmp_path / "pruned.json").nodes() == t.nodes()


@pytest.mark.parametrize("args, message", [
    (["taxo", "show", "{tmp}/missing.json"], "missing.json: no such file"),
    (["taxo", "show", "{tmp}/empty.json"], "empty.json: the file is empty"),
    (["taxo", "show", "{tmp}/cycle.json"], "cycle.json: node 'a': the parents form a cycle"),
    (["taxo", "show", "{tmp}/roots.json"], "roots.json: 2 roots"),
    (["taxo", "build", "--source", "csv", "{tmp}/latin1.csv", "--lineage-column", "l", "-o", "{tmp}/o.json"],
     "latin1.csv: line 2: not UTF-8"),
    (["taxo", "build", "--source", "csv", "{tmp}/edges.csv", "--parent-column", "p", "--child-column", "c",
      "-o", "{tmp}/o.json"], "edges.csv: line 3: 'y' has two parents"),
    (["taxo", "build", "--source", "ecotaxa", "{tmp}/edges.csv", "-o", "{tmp}/o.json"], "not an EcoTaxa export"),
    (["taxo", "build", "--source", "csv", "{tmp}/edges.csv", "--lineage-column", "nope", "-o", "{tmp}/o.json"],
     "no column 'nope'"),
    (["taxo", "build", "--source", "nosuch", "{tmp}/edges.csv", "-o", "{tmp}/o.json"], "unknown taxonomy source 'nosuch'"),
    (["taxo", "build", "--source", "ecotaxa", "{tmp}/nothere.tsv", "-o", "{tmp}/o.json"], "nothere.tsv: no such file"),
    (["taxo", "build", "--source", "ecotaxa", "{data}/ecotaxa_export.tsv", "--tree", "longest", "-o", "{tmp}/o.json"],
     "does not accept option(s) 'tree'"),
    (["taxo", "render", "{tmp}/x.json", "-o", "{tmp}/t.png"], "x.json: no such file"),
    (["taxo", "render", "{tmp}/roots.json", "-o", "{tmp}/t.png"], "roots.json: 2 roots"),
    (["taxo", "show", "{tmp}/good.json", "--format", "xml"], "--format: unknown format 'xml'"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(run_cli, data_dir, tmp_path, args, message):
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "cycle.json").write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": [
        {"id": "r", "parent": None}, {"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}]}))
    (tmp_path / "roots.json").write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": [
        {"id": "r", "parent": None}, {"id": "s", "parent": None}]}))
    (tmp_path / "latin1.csv").write_bytes("l\nliving>Ceratium>caf\xe9\n".encode("latin-1"))
    (tmp_path / "edges.csv").write_text("p,c\nx,y\nz,y\n")
    (tmp_path / "good.json").write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": [
        {"id": "r", "parent": None}]}))
    code, stdout, stderr = run_cli(*[a.format(tmp=tmp_path, data=data_dir) for a in args])
    assert code == 2, stderr
    assert stderr.startswith("hier: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "t.png").exists()


def test_output_folder_missing(run_cli, data_dir, tmp_path):
    code, _, stderr = run_cli("taxo", "build", "--source", "ecotaxa", data_dir / "ecotaxa_export.tsv",
                              "-o", tmp_path / "no/such/dir/t.json")
    assert code == 2 and "the output folder does not exist" in stderr


def test_taxo_commands_never_import_torch(data_dir, tmp_path):
    script = f"""
import sys
from pathlib import Path
from hier.cli.main import main
d, t = {str(data_dir)!r}, {str(tmp_path)!r}
codes = [main(["--help"]), main(["taxo", "--help"]),
         main(["taxo", "build", "--source", "ecotaxa", d + "/ecotaxa_export.tsv", "-o", t + "/e.json"]),
         main(["taxo", "build", "--source", "csv", d + "/phytoplankton-taxonomy/taxonomy.csv",
               "--rank-columns", "{RANKS}", "--label-column", "folder", "-o", t + "/p.json"]),
         main(["taxo", "show", t + "/p.json"]), main(["taxo", "stats", t + "/p.json", "--json"]),
         main(["taxo", "prune", t + "/p.json", "-o", t + "/q.json"]),
         main(["taxo", "render", t + "/p.json", "-o", t + "/p.png"]),
         main(["taxo", "validate", t + "/p.json", d + "/phytoplankton/images"])]
assert codes == [0] * len(codes), codes
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-TORCH")


def test_console_script_exit_codes(tmp_path):
    exe = __import__("shutil").which("hier", path=str(__import__("pathlib").Path(sys.executable).parent))
    ok = subprocess.run([exe, "taxo", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "build" in ok.stdout
    bad = subprocess.run([exe, "taxo", "show", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
    usage = subprocess.run([exe, "taxo", "show"], capture_output=True, text=True)
    assert usage.returncode == 2


def test_validate_real_images(run_cli, data_dir, tmp_path):
    out = tmp_path / "p.json"
    run_cli("taxo", "build", "--source", "csv", data_dir / "phytoplankton-taxonomy/taxonomy.csv",
            "--rank-columns", RANKS, "--label-column", "folder", "-o", out)
    code, stdout, stderr = run_cli("taxo", "validate", out, data_dir / "phytoplankton/images", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["images"] == 25 and report["labels"] == 5 and not report["unmatched"]
    t = Taxonomy.load(out)
    chaetoceros = next(i for i, n in enumerate(t.names) if n == "Chaetoceros")
    # the genus folder's own images plus its species' images
    assert report["images_per_node"][t.ids[chaetoceros]] == {"own": 5, "under": 10}
    assert report["images_per_node"][t.ids[t.root]]["under"] == 25

    small = tmp_path / "small.json"
    small.write_text(json.dumps({"format": "hier-taxonomy", "version": 1, "nodes": [
        {"id": "r", "parent": None}, {"id": "Bubbles", "parent": "r"}, {"id": "Chaetoceros", "parent": "r"}]}))
    code, _, stderr = run_cli("taxo", "validate", small, data_dir / "phytoplankton/images")
    assert code == 2 and "3 label(s) do not name exactly one node" in stderr and "'Detritus' (5 images)" in stderr


def test_tiny_imagenet_built_pruned_and_rendered(run_cli, data_dir, tmp_path):
    tree = tmp_path / "tiny.json"
    code, _, stderr = run_cli("taxo", "build", "--source", "wordnet", "--wnids", data_dir / "tiny_imagenet_wnids.txt",
                              "-o", tree)
    assert code == 0, stderr
    t = Taxonomy.load(tree)
    wnids = (data_dir / "tiny_imagenet_wnids.txt").read_text().split()
    assert sorted(t.ids[i] for i in t.leaves) == sorted(wnids)
    code, stdout, _ = run_cli("taxo", "stats", tree, "--json")
    assert json.loads(stdout)["dead_nodes"] == 0
    code, _, _ = run_cli("taxo", "render", tree, "-o", tmp_path / "tiny.png")
    from PIL import Image

    with Image.open(tmp_path / "tiny.png") as image:
        assert image.size[1] > 200 * 15  # a row per leaf


def test_build_and_prune_never_write_over_an_input_nor_without_force(run_cli, data_dir, tmp_path):
    import shutil

    table = Path(shutil.copy(data_dir / "phytoplankton-taxonomy/taxonomy.csv", tmp_path / "taxonomy.csv"))
    before = table.read_bytes()
    args = ["taxo", "build", "--source", "csv", table, "--rank-columns", "kingdom,phylum,class,order,family,genus,species"]
    code, _, err = run_cli(*args, "-o", table, "--force")
    assert code == 2 and "is one of the command's inputs" in err and table.read_bytes() == before
    assert run_cli(*args, "-o", tmp_path / "t.json")[0] == 0
    code, _, err = run_cli(*args, "-o", tmp_path / "t.json")
    assert code == 2 and "--force" in err
    code, _, err = run_cli("taxo", "prune", tmp_path / "t.json", "-o", tmp_path / "t.json", "--force")
    assert code == 2 and "is one of the command's inputs" in err
    written = (tmp_path / "t.json").read_bytes()
    (tmp_path / "p.json").write_text("mine")
    code, _, err = run_cli("taxo", "prune", tmp_path / "t.json", "-o", tmp_path / "p.json")
    assert code == 2 and (tmp_path / "p.json").read_text() == "mine" and (tmp_path / "t.json").read_bytes() == written
