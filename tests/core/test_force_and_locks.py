"""--force deletes only what hier wrote; the output lock is the operating system's; --resume removes only
dead writers' temporaries (issue 28, classes 1 and 6)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hier.core.errors import InputError
from hier.core.files import check_replaceable, output_lock, remove_stale_temporaries_below

TINY = ["--backbone", "smallcnn", "--epochs", "1", "--image-size", "32", "--batch-size", "32",
        "--set", "backbone_options.width=8", "--set", "backbone_options.depth=3"]


def users_folder(folder):
    """What a user keeps in a folder: hidden, and none of it hier's."""
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".env").write_text("TOKEN=secret\n")
    (folder / ".notes.md").write_text("my notes\n")
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("command", [
    lambda d, data: ["data", "synth", d, "--images", "30", "--size", "16", "--force"],
    lambda d, data: ["demo", "--out", d, "--force", "--synthetic", "--images", "30"],
    lambda d, data: ["fit", data, "-o", d, "--force", *TINY],
], ids=["data synth", "demo", "fit"])
def test_force_never_deletes_hidden_files_hier_did_not_write(run_cli, synth_dataset, tmp_path, command):
    kept = users_folder(tmp_path / "out")
    code, _, err = run_cli(*command(tmp_path / "out", synth_dataset))
    assert code == 2 and "which hier did not write there" in err and "'.env'" in err, err
    assert {p.name for p in (tmp_path / "out").iterdir()} == kept
    assert (tmp_path / "out" / ".notes.md").read_text() == "my notes\n"


def test_demo_checks_its_arguments_before_deleting(run_cli, tmp_path):
    out = tmp_path / "demo"
    (out / "run").mkdir(parents=True)  # a demo folder of hier's own, which --force may replace
    (out / "sure.csv").write_text("kept until the arguments are good\n")
    code, _, err = run_cli("demo", "--out", out, "--force", "--epochs", "0")
    assert code == 2 and "epochs" in err, err
    assert (out / "sure.csv").is_file() and (out / "run").is_dir()


def test_only_hiers_own_temporaries_are_exempt(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / ".run.1234-otherhost.x1y2.tmp").mkdir()  # a staging folder a killed write left
    (tmp_path / ".taxonomy.json.99-host.abc.tmp").write_text("{")
    assert check_replaceable(tmp_path, force=True, own=frozenset({"run"}))
    (tmp_path / ".cache").mkdir()
    with pytest.raises(InputError, match="'.cache', which hier did not write there"):
        check_replaceable(tmp_path, force=True, own=frozenset({"run"}))


def test_fit_force_on_a_symbolic_link_is_refused_and_its_target_kept(run_cli, synth_dataset, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "config.yaml").write_text("head: classifier\n")  # a name of hier's, but behind a link
    (tmp_path / "link").symlink_to(target)
    code, _, err = run_cli("fit", synth_dataset, "-o", tmp_path / "link", "--force", *TINY)
    assert code == 2 and "symbolic link" in err and "Traceback" not in err, err
    assert (target / "config.yaml").read_text() == "head: classifier\n" and (tmp_path / "link").is_symlink()


# ---- the output lock -----------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hier.core.files import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
""")


def test_a_lock_dies_with_its_process_even_killed_with_9(tmp_path):
    out = tmp_path / "p.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match="another command is writing this file now"), output_lock(out):
            pass
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the lock file stays, the kernel's lock goes
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert (tmp_path / ".p.csv.lock").exists()
    with output_lock(out):
        pass
    assert not (tmp_path / ".p.csv.lock").exists()


@pytest.mark.parametrize("left", ["1", "", "-1"], ids=["pid 1 (a container's killed command)", "empty (full disk)",
                                                       "garbage"])
def test_a_lock_file_left_behind_never_blocks(tmp_path, left):
    out = tmp_path / "p.csv"
    (tmp_path / ".p.csv.lock").write_text(left)  # what a kill -9 as PID 1, or a failed write, left
    with output_lock(out):
        pass
    assert not (tmp_path / ".p.csv.lock").exists()


def test_a_lock_on_a_full_disk_neither_fails_nor_blocks(tmp_path):
    disk = tmp_path / "full"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=False,
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(OSError), open(disk / "filler", "wb") as f:  # no block left, inodes still free
            f.write(b"x" * 1_000_000)
        with output_lock(disk / "p.csv"):  # a lock that held a process id could not be written here
            pass
        assert sorted(os.listdir(disk)) == ["filler"]
        with output_lock(disk / "p.csv"):
            pass
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_resume_removes_only_dead_writers_temporaries(tmp_path):
    from hier.core.files import _HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=False, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "checkpoints").mkdir()
    users = tmp_path / ".draft.tmp"  # the user's own hidden .tmp file
    users.write_text("mine")
    live = tmp_path / "checkpoints" / f".last.pt.{os.getpid()}-{_HOST}.abc.tmp"  # a writer still running
    live.write_text("being written")
    stale = tmp_path / "checkpoints" / f".last.pt.{dead}-{_HOST}.def.tmp"
    stale.write_text("killed")
    remove_stale_temporaries_below(tmp_path)
    assert users.exists() and live.exists() and not stale.exists()
