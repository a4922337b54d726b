"""Reading files with clear errors, and writing them atomically."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import HierError, InputError

# Temporary files and staging folders are named ".TARGET.PID-HOST.RANDOM.tmp": a later write of TARGET on the
# same host removes those whose process is gone (killed before it could clean up), and only those.
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"
# Any host's temporary of any target: the only hidden entries --force may remove from a folder hier replaces.
_ANY_TEMPORARY = re.compile(r"\..+\.\d+-[A-Za-z0-9-]+\.[^/]+\.tmp(\.old)?")
# The most a text file (a table, a taxonomy, a config) may hold: read whole, it must fit in memory.
MAX_TEXT_BYTES = 512 * 2**20
# What a full disk, a quota or a read-only mount raise while a file is written: reported naming the file.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def read_bytes(path: str | os.PathLike, limit: int = MAX_TEXT_BYTES) -> bytes:
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=path)
    if p.is_dir():
        raise InputError("is a folder, expected a file", path=path)
    data = read_regular_file(path, limit)
    if not data.strip():
        raise InputError("the file is empty", path=path)
    return data


def read_regular_file(path: str | os.PathLike, limit: int, error=InputError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. A FIFO, a device (a link to /dev/zero) or a
    socket is refused without reading it (one would hang, another never end); ``error`` is the class raised."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise error("not a regular file (a pipe, a device or a socket)", path=path)
        # O_NONBLOCK: a file swapped for a FIFO after the check opens without waiting, and fstat refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise error(f"cannot read ({e.strerror})", path=path) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error("not a regular file (a pipe, a device or a socket)", path=path)
        if info.st_size > limit:
            raise error(f"{info.st_size:,} bytes, over the limit of {limit:,}", path=path)
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise error(f"cannot read ({e.strerror})", path=path) from None
    if len(data) > limit:  # grew while read
        raise error(f"over the limit of {limit:,} bytes", path=path)
    return data


# A zip member hier extracts or reads: no larger (a table is read whole, an image at most 256 MiB), and not
# compressed more than this (real tables and images compress 2-20 times; a zip bomb a thousand and more).
MAX_MEMBER_BYTES = 2**30
MAX_ZIP_RATIO = 200


def check_zip_members(members: list, path) -> None:
    """Refuse, before anything is extracted or read, a zip whose members would expand beyond the bounds
    above, or that holds a file and a folder of one name (one of them could not be written)."""
    files = {m.filename.replace("\\", "/").rstrip("/") for m in members if not m.is_dir()}
    for m in members:
        if m.file_size > MAX_MEMBER_BYTES or (m.file_size > 2**20 and m.file_size > MAX_ZIP_RATIO * m.compress_size):
            raise InputError(f"member {m.filename!r} would expand to {m.file_size:,} bytes from {m.compress_size:,} "
                             f"(over {MAX_MEMBER_BYTES:,} bytes or {MAX_ZIP_RATIO} times: a zip bomb, or not an "
                             "export)", path=path)
        clash = next((str(p) for p in Path(m.filename.replace("\\", "/")).parents if str(p) in files), None)
        if clash is not None:
            raise InputError(f"holds both a file and a folder named {clash!r}", path=path)


def decode_text(data: bytes, path: str | os.PathLike) -> str:
    """UTF-8 (with or without BOM); binary and other encodings are input errors."""
    if b"\x00" in data[:8192]:
        raise InputError("binary file, expected text", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError("not UTF-8 text (re-save it as UTF-8)", path=path, where=f"line {line}") from None


def read_text(path: str | os.PathLike) -> str:
    return decode_text(read_bytes(path), path)


def read_json(path: str | os.PathLike):
    """A JSON file; invalid JSON, NaN and Infinity (not JSON, though Python reads them) and nesting too deep to
    read are input errors naming the file."""
    text = read_text(path)

    def refuse(name: str):
        line = text[: max(0, text.find(name))].count("\n") + 1
        raise InputError(f"not valid JSON ({name} is not a JSON value)", path=path, where=f"line {line}")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e.msg})", path=path, where=f"line {e.lineno}") from None
    except RecursionError:
        raise InputError("nested too deeply to read (not a file hier writes)", path=path) from None


def check_output_folder(path: Path) -> None:
    """The folder ``path`` will be written into exists and is writable."""
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InputError("is a file, not a folder to write into", path=parent)
    if not parent.is_dir():
        raise InputError("the output folder does not exist", path=parent)
    if not os.access(parent, os.W_OK):
        raise InputError("the output folder is not writable", path=parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}-{_HOST}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _temporary_pattern(name: str) -> re.Pattern:
    """This host's temporaries of a target called ``name`` (a regular expression), with the writer's process id."""
    return re.compile(rf"\.{name}\.(\d+)-{re.escape(_HOST)}\.[^/]+\.tmp(\.old)?")


def _remove(entry: os.DirEntry) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def remove_stale_temporaries(target: str | os.PathLike) -> None:
    """Remove the temporary files and staging folders of ``target`` that a killed process left beside it.

    Only this project's naming (see ``_temporary_prefix``), only this host's, only of processes that are gone:
    a write in progress elsewhere keeps its own.
    """
    _remove_stale(Path(target).parent, _temporary_pattern(re.escape(Path(target).name)))


def remove_stale_temporaries_below(folder: str | os.PathLike) -> None:
    """The same for every target in ``folder`` and its subfolders (a run resumed after a kill)."""
    pattern = _temporary_pattern(".+?")
    for parent, folders, _ in os.walk(folder):
        folders[:] = [name for name in folders if not pattern.fullmatch(name)]
        _remove_stale(Path(parent), pattern)


def _remove_stale(folder: Path, pattern: re.Pattern) -> None:
    try:
        with os.scandir(folder) as entries:
            stale = [e for e in entries if (m := pattern.fullmatch(e.name)) and not _alive(int(m.group(1)))]
    except OSError:
        return
    for entry in stale:
        _remove(entry)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, exclusive: bool = False, **kwargs):
    """A file object for ``path`` that lands whole or not at all.

    It writes to a temporary file beside ``path``, fsyncs and renames it over ``path`` when the
    block ends; on any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched.
    ``exclusive``: the file must not exist when it lands (a hard link, which fails on an existing
    name): a file another process wrote meanwhile is kept and this one refused.
    A full disk (or quota, or read-only mount) is a HierError naming ``path``.
    """
    path = Path(path)
    check_output_folder(path)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it; mkstemp makes owner-only files
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            _link_new(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in WRITE_ERRORS:
            raise HierError(f"{path}: cannot write ({e.strerror})") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link_new(tmp: str, path: Path) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist, atomically where hard links work."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InputError("was written by another process while this one ran; kept as it is, and this "
                         "result not written (use another output name)", path=path) from None
    except OSError:  # no hard links on this file system: the check and the rename are two steps
        if path.exists():
            raise InputError("was written by another process while this one ran; kept as it is",
                             path=path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Readers of ``path`` see the old content or the new, never half of it."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_replaceable(path: str | os.PathLike, *, force: bool, what: str = "",
                      hint: str = "use --force to replace it", own: frozenset[str] | None = None) -> bool:
    """Whether ``path`` holds something (a file, or a folder with entries); refused unless ``force``.

    The one place the commands say "exists, use --force". ``own``: the names a command writes into its
    output folder; ``--force`` then replaces the folder only when every entry is one of them (hier's own
    temporary files aside: any other hidden entry, ``.git`` or ``.env``, is the user's), so it never deletes
    what the command did not create. A symbolic link is never replaced as a folder (its target is not ours).
    """
    path = Path(path)
    occupied = path.exists() and (not path.is_dir() or any(path.iterdir()))
    if occupied and not force:
        state = f"{what} already exists" if what else "is not empty" if path.is_dir() else "exists"
        raise InputError(f"{state}; {hint}", path=path)
    if occupied and own is not None and path.is_symlink():
        raise InputError("is a symbolic link; --force replaces only a folder itself, not where a link points",
                         path=path)
    if occupied and own is not None:
        foreign = sorted(e.name for e in path.iterdir() if e.name not in own and not _hiers_own(e.name, own))
        if foreign:
            raise InputError(f"holds {', '.join(map(repr, foreign[:3]))}, which hier did not write there; "
                             f"--force replaces only {what or 'its own output'}", path=path)
    return occupied


def _hiers_own(name: str, own: frozenset[str]) -> bool:
    """A temporary of hier's naming, or the lock file a killed command left beside one of ``own``."""
    return bool(_ANY_TEMPORARY.fullmatch(name)) or (name.startswith(".") and name.endswith(".lock")
                                                     and name[1:-len(".lock")] in own)


def check_output_file(path: str | os.PathLike, *, force: bool, inputs: Iterable = ()) -> Path:
    """The one check before a command writes the file ``path``, made before any work.

    ``path`` is not a folder; it is never one of the command's ``inputs``, nor inside an input folder, even
    with ``force`` (a command never writes over what it reads); an existing file is replaced only with
    ``force``; its folder exists and is writable.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, expected an output file", path=path)
    target = Path(os.path.realpath(path))
    around = {os.path.abspath(path), str(target), *map(str, target.parents)}
    same = os.stat(target) if target.exists() else None
    for given in inputs:
        source = os.path.abspath(given)
        if source in around and source not in (os.path.abspath(path), str(target)):
            raise InputError(f"is inside {given}, which the command reads; write the output elsewhere", path=path)
        if source in around or (same is not None and _same_file(same, source)):
            raise InputError("is one of the command's inputs; write the output elsewhere", path=path)
    check_replaceable(path, force=force)
    check_output_folder(path)
    return path


def _same_file(stat: os.stat_result, other: str) -> bool:
    try:
        return os.path.samestat(stat, os.stat(other))
    except OSError:
        return False


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, replace: bool = False):
    """A hidden staging folder beside ``target``, renamed to ``target`` when the block ends.

    Readers see the whole folder or none. With ``replace`` an existing ``target`` is swapped out and
    removed; without, an existing non-empty ``target`` makes the rename fail (OSError), which lets a
    cache filled by two processes at once keep the first finished copy. On any error, or Ctrl-C, the
    staging folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    staging = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # as mkdir would make it; mkdtemp makes owner-only folders
        yield staging
        if replace and target.exists():
            old = staging.with_name(staging.name + ".old")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def output_lock(out: Path):
    """An operating-system lock (``flock``) on ``.NAME.lock`` beside ``out`` while it is written.

    The kernel releases it when the process ends, however it ends (kill -9, PID 1 in a container), so a
    lock is never stale; nothing is written into the file, so a full disk cannot leave a half-made one.
    """
    lock = out.with_name(f".{out.name}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise InputError(f"cannot write beside the output ({e.strerror})", path=out) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError("another command is writing this file now; wait for it, or choose another output",
                             path=out) from None
        if _same_inode(fd, lock):
            break
        os.close(fd)  # the holder removed it as we opened it: lock the file now there
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # before the lock goes, so a waiter sees a new file, never this one
        os.close(fd)


def _same_inode(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False
