"""Atomic files and folders, clear read errors, and the one "exists, use --force" rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hier.core.errors import InputError
from hier.core.files import (
    _temporary_prefix,
    atomic_folder,
    atomic_open,
    atomic_write_text,
    check_output_file,
    check_replaceable,
    read_bytes,
    read_json,
    read_text,
    remove_stale_temporaries,
    remove_stale_temporaries_below,
)


def test_atomic_write_lands_whole_with_normal_mode(tmp_path):
    target = tmp_path / "out.txt"
    umask = os.umask(0o022)
    try:
        atomic_write_text(target, "new\n")
    finally:
        os.umask(umask)
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_open_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_open_refuses_a_missing_folder(tmp_path):
    with pytest.raises(InputError, match="the output folder does not exist"):
        atomic_write_text(tmp_path / "absent" / "out.txt", "x")


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="absent.txt: no such file"):
        read_bytes(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="is a folder"):
        read_bytes(tmp_path)
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InputError, match="empty.txt: the file is empty"):
        read_bytes(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("a\nb\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.txt: line 2: not UTF-8"):
        read_text(tmp_path / "latin1.txt")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfid\n")
    assert read_text(tmp_path / "bom.txt") == "id\n"


def test_check_replaceable(tmp_path):
    assert check_replaceable(tmp_path / "absent", force=False) is False
    (tmp_path / "empty").mkdir()
    assert check_replaceable(tmp_path / "empty", force=False) is False
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="full: is not empty; use --force to replace it"):
        check_replaceable(tmp_path / "full", force=False)
    with pytest.raises(InputError, match="the run directory already exists; continue it"):
        check_replaceable(tmp_path / "full", force=False, what="the run directory", hint="continue it")
    assert check_replaceable(tmp_path / "full", force=True) is True
    (tmp_path / "file.csv").write_text("a")
    with pytest.raises(InputError, match="file.csv: exists; use --force"):
        check_replaceable(tmp_path / "file.csv", force=False)


def test_atomic_folder_appears_whole(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("a")
        assert not target.exists()
        assert staging.parent == tmp_path and staging.name.startswith(".out.")
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_folder_failure_leaves_nothing_and_keeps_the_old(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target, replace=True) as staging:
            (staging / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_atomic_folder_replace_swaps_and_without_replace_keeps_the_first(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target, replace=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(OSError):  # another writer finished first: its folder stays
        with atomic_folder(target) as staging:
            (staging / "late.txt").write_text("late")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_check_output_file_never_replaces_an_input(tmp_path):
    image, folder = tmp_path / "a.png", tmp_path / "images"
    image.write_bytes(b"pixels")
    folder.mkdir()
    (tmp_path / "link.png").symlink_to(image)
    for out in (image, tmp_path / "link.png", tmp_path / "." / "a.png"):
        with pytest.raises(InputError, match="is one of the command's inputs"):
            check_output_file(out, force=True, inputs=[image])
    with pytest.raises(InputError, match="is inside"):
        check_output_file(folder / "p.csv", force=True, inputs=[folder])
    with pytest.raises(InputError, match="exists; use --force"):
        check_output_file(image, force=False, inputs=[])
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(folder, force=True)
    assert check_output_file(image, force=True, inputs=[folder]) == image
    assert check_output_file(tmp_path / "new.csv", force=False, inputs=[image, folder]) == tmp_path / "new.csv"


def test_stale_temporaries_of_gone_processes_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "out.csv"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_prefix = _temporary_prefix(target).replace(f".{os.getpid()}-", f".{int(gone.stdout)}-")
    (tmp_path / f"{dead_prefix}abc.tmp").write_text("half")
    (tmp_path / f"{dead_prefix}def.tmp").mkdir()
    live = tmp_path / f"{_temporary_prefix(target)}ghi.tmp"
    live.write_text("being written")
    other_host = tmp_path / f".out.csv.{int(gone.stdout)}-elsewhere.jkl.tmp"
    other_host.write_text("another machine's")
    foreign = tmp_path / ".out.csv.notes.tmp"
    foreign.write_text("not ours")
    remove_stale_temporaries(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_host.name, foreign.name])


def test_stale_temporaries_below_a_folder_keep_live_writers_and_the_users_files(tmp_path):
    """What ``hier fit --resume`` clears in a run: a killed writer's temporaries at any depth, nothing else."""
    import subprocess
    import sys

    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    (tmp_path / "checkpoints").mkdir()

    def temporary(target: Path, pid: int) -> Path:
        return target.with_name(_temporary_prefix(target).replace(f".{os.getpid()}-", f".{pid}-") + "r.tmp")

    dead = [temporary(tmp_path / "checkpoints" / "last.pt", gone), temporary(tmp_path / "metrics.csv", gone)]
    for path in dead:
        path.write_text("half")
    live = temporary(tmp_path / "checkpoints" / "best.pt", os.getpid())
    live.write_text("being written")
    mine = [tmp_path / ".notes.tmp", tmp_path / "checkpoints" / ".keep.tmp"]
    for path in mine:
        path.write_text("the user's")
    remove_stale_temporaries_below(tmp_path)
    assert not any(path.exists() for path in dead)
    assert live.exists() and all(path.exists() for path in mine)


def test_read_json_errors_name_the_file(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="deep.json: nested too deeply"):
        read_json(tmp_path / "deep.json")
    (tmp_path / "nan.json").write_text('{"a": 1,\n "b": NaN}')
    with pytest.raises(InputError, match="nan.json: line 2: not valid JSON \\(NaN is not a JSON value\\)"):
        read_json(tmp_path / "nan.json")
    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json(tmp_path / "ok.json") == {"a": [1, 2]}
