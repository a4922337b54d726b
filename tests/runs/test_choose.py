"""Which run a command uses: named, built in, or the newest complete one under ./runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hier import runs
from hier.core.errors import InputError
from hier.runs.choose import choose_run, list_runs, newest_run


def fake_run(folder: Path, *, complete: bool, written_ns: int | None = None) -> Path:
    """The files that make a folder a run directory (their contents are not read here)."""
    folder.mkdir(parents=True)
    (folder / runs.CONFIG).write_text("head: classifier\nbackbone: smallcnn\n")
    (folder / runs.TAXONOMY).write_text("{}")
    if complete:
        (folder / runs.WEIGHTS).write_bytes(b"")
        os.utime(folder / runs.WEIGHTS, ns=(written_ns, written_ns))
    return folder


def test_newest_complete_run_wins_and_unfinished_ones_are_passed_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert newest_run() is None
    fake_run(Path("runs/old"), complete=True, written_ns=1_000_000_000_000)
    fake_run(Path("runs/new"), complete=True, written_ns=2_000_000_000_000)
    fake_run(Path("runs/unfinished"), complete=False)
    (tmp_path / "runs" / "notes").mkdir()
    assert newest_run() == Path("runs/new")
    Path("x.jpg").touch()
    choice = choose_run([Path("x.jpg")], None)
    assert choice.run_dir == Path("runs/new") and choice.sources == [Path("x.jpg")]
    assert "runs/new" in choice.note and "--run" in choice.note
    names = [entry["run"] for entry in list_runs()]
    assert names[-1] == "imagenet-lite0" and set(names[:3]) == {"runs/old", "runs/new", "runs/unfinished"}


def test_a_first_argument_that_is_a_run_is_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(Path("runs/new"), complete=True, written_ns=2_000_000_000_000)
    mine = fake_run(tmp_path / "elsewhere", complete=False)
    (tmp_path / "a.jpg").touch()
    choice = choose_run([mine, Path("a.jpg")], None)
    assert (choice.run_dir, choice.sources, choice.note) == (mine, [Path("a.jpg")], None)
    named = choose_run([Path("a.jpg")], mine)  # --run: every argument is a source
    assert (named.run_dir, named.sources) == (mine, [Path("a.jpg")])


def test_a_missing_first_argument_is_named_not_taken_for_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(Path("runs/new"), complete=True, written_ns=2_000_000_000_000)
    with pytest.raises(InputError, match="no such run directory, image or dataset") as caught:
        choose_run([Path("runs/typo"), Path("img")], None)
    assert "runs/typo" in str(caught.value)
    with pytest.raises(InputError, match="no such run directory"):
        choose_run([], tmp_path / "nowhere")


def test_arguments_beyond_what_the_command_takes_make_the_first_one_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(Path("runs/new"), complete=True, written_ns=2_000_000_000_000)
    Path("notarun").mkdir()
    Path("data").mkdir()
    with pytest.raises(InputError, match="not a hier run directory"):  # evaluate NOTARUN DATA
        choose_run([Path("notarun"), Path("data")], None, most=1)
    assert choose_run([Path("data")], None, most=1).sources == [Path("data")]
    with pytest.raises(InputError, match="1 argument at most"):
        choose_run([Path("data"), Path("notarun")], Path("runs/new"), most=1)
    with pytest.raises(InputError, match="no images in it"):  # predict NOTARUN IMAGES: not taken for images
        choose_run([Path("notarun"), Path("data")], None)
