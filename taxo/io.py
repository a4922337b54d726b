"""File reading with clear errors, atomic writes, and taxonomy exports (CSV, dot)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path

from .errors import InputError


def read_bytes(path: str | os.PathLike) -> bytes:
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=path)
    if p.is_dir():
        raise InputError("is a folder, expected a file", path=path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from None
    if not data.strip():
        raise InputError("the file is empty", path=path)
    return data


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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs):
    """A file object for ``path`` that lands whole or not at all.

    It writes to a temporary file beside ``path``, fsyncs and renames it over ``path`` when the
    block ends; on any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    check_output_folder(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it; mkstemp makes owner-only files
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Readers of ``path`` see the old content or the new, never half of it."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sniff_delimiter(header_line: str) -> str:
    """Tab when the header has tabs, else comma (the two layouts plankton tables come in)."""
    return "\t" if header_line.count("\t") > header_line.count(",") else ","


def read_table(path: str | os.PathLike, text: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a comma- or tab-separated file; ragged rows are input errors."""
    text = read_text(path) if text is None else text
    delimiter = sniff_delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    rows = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields where the header has {len(header)}", path=path,
                             where=f"line {reader.line_num}")
        rows.append(row)
    return header, rows


def column(header: list[str], name: str, path) -> int:
    try:
        return header.index(name)
    except ValueError:
        import difflib

        close = difflib.get_close_matches(name, header, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else f" (columns: {', '.join(header[:12])})"
        raise InputError(f"no column {name!r}{hint}", path=path) from None


def csv_text(rows: list[dict]) -> str:
    """Rows of one shape as CSV text, the header from the first row's keys."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_csv(taxonomy) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["id", "parent", "name", "rank"])
    for i in range(len(taxonomy)):
        p = taxonomy.parent[i]
        w.writerow([taxonomy.ids[i], taxonomy.ids[p] if p >= 0 else "", taxonomy.names[i], taxonomy.ranks[i] or ""])
    return out.getvalue()


def to_dot(taxonomy) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph taxonomy {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    lines += [f"  {q(taxonomy.ids[i])} [label={q(taxonomy.names[i])}];" for i in range(len(taxonomy))]
    lines += [f"  {q(taxonomy.ids[p])} -> {q(taxonomy.ids[i])};" for i, p in enumerate(taxonomy.parent) if p >= 0]
    lines.append("}")
    return "\n".join(lines) + "\n"
