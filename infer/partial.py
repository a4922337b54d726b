"""The resumable output of ``hier predict``: its rows so far beside it, and under torchrun each process's share.

A kill leaves ``.NAME.partial`` (the rows, as the output will hold them) and ``.NAME.partial.json`` (what they
answer); the same command run again continues them, and the output appears whole, by rename, at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from hier.core.errors import InputError
from hier.core.files import (
    atomic_open,
    atomic_write_text,
    output_lock,
    read_regular_file,
    remove_stale_temporaries,
)


class Partial:
    """The rows a predict run has written so far, beside its output: ``.NAME.partial`` (as the output will hold
    them) and ``.NAME.partial.json`` (how many images they answer, their length in bytes, a digest of the command
    and one of those images' files). A run of the same command continues it; any other starts it anew."""

    def __init__(self, out: Path, key: str, paths: Sequence[Path], shard: tuple[int, int] = (0, 1)):
        name = f".{out.name}.partial" + (f"-{shard[0] + 1}of{shard[1]}" if shard[1] > 1 else "")  # a process's share
        self.rows, self.record = out.with_name(name), out.with_name(f"{name}.json")
        self.key, self.paths = key, paths
        self.done, self.unreadable, self.depths = 0, 0, {}
        self.files, self.pending = hashlib.sha1(), 0

    def open(self):
        """The rows file as text, after the rows a killed run saved (those of this command) or empty."""
        size = self._saved_bytes()
        if not size:  # before any row: a record of other rows must never describe these
            self.record.unlink(missing_ok=True)
        self.raw = open(self.rows, "r+b" if size else "wb")
        self.raw.truncate(size)  # a row cut by the kill, or rows written after the last save
        self.raw.seek(size)
        self.text = io.TextIOWrapper(self.raw, encoding="utf-8", newline="")
        return self.text

    def _saved_bytes(self) -> int:
        try:
            record = json.loads(read_regular_file(self.record, 2**20))
            done, size = int(record["images"]), int(record["bytes"])
            if record["key"] != self.key or not 0 < done <= len(self.paths) or self.rows.stat().st_size < size:
                return 0
            files = hashlib.sha1()
            for p in self.paths[:done]:
                files.update(_stamp(p))
            if files.hexdigest() != record["files"]:  # an image changed since: its row may no longer hold
                return 0
            depths = {int(d): int(n) for d, n in record["depths"].items()}
            unreadable = int(record["unreadable"])
        except (InputError, OSError, ValueError, KeyError, TypeError, AttributeError):  # none, or not one of ours
            return 0
        self.done, self.unreadable, self.depths, self.files = done, unreadable, depths, files
        return size

    def add(self, path: Path) -> None:
        self.files.update(_stamp(path))
        self.pending += 1

    def save(self, unreadable: int, depths: dict[int, int]) -> None:
        """The rows written so far are kept by a kill from now on."""
        self.text.flush()
        self.done, self.pending = self.done + self.pending, 0
        self.unreadable, self.depths = unreadable, dict(depths)
        atomic_write_text(self.record, json.dumps({
            "key": self.key, "images": self.done, "bytes": self.raw.tell(), "files": self.files.hexdigest(),
            "unreadable": unreadable, "depths": depths}))

    def land(self, out: Path, force: bool) -> None:
        """The output, whole (copied through a temporary file renamed onto it); the partial files removed."""
        self.text.close()
        with open(self.rows, "rb") as rows, atomic_open(out, "wb", exclusive=not force) as f:
            shutil.copyfileobj(rows, f)
        self.remove()

    def stop(self) -> None:
        """After a failure: kept if they answer some images (the same command continues them), else removed."""
        with contextlib.suppress(OSError):
            self.text.close()
        if not self.done:
            self.remove()

    def remove(self) -> None:
        self.record.unlink(missing_ok=True)
        self.rows.unlink(missing_ok=True)
        remove_stale_temporaries(self.record)  # a record's write that a kill interrupted


def _stamp(path: Path) -> bytes:
    """The path as the file system spells it (a name need not be UTF-8), its size and mtime."""
    try:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime = -1, -1
    return os.fsencode(path) + f"|{size}|{mtime}\n".encode()


def share(paths: Sequence[Path], shard: tuple[int, int]) -> Sequence[Path]:
    """The contiguous share of ``paths`` that process ``shard[0]`` of ``shard[1]`` answers."""
    rank, world = shard
    return paths[len(paths) * rank // world:len(paths) * (rank + 1) // world]


def join_shares(out: Path, world: int, force: bool) -> None:
    """The output from the shares of ``world`` processes, in order (each written whole); the shares removed."""
    shares = [Partial(out, "", [], (rank, world)) for rank in range(world)]
    with output_lock(out), atomic_open(out, "wb", exclusive=not force) as f:
        for one in shares:
            with open(one.rows, "rb") as rows:
                shutil.copyfileobj(rows, f)
    for one in shares:
        one.remove()
