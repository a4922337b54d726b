"""Comma- and tab-separated tables: reading with clear errors, writing rows."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator

from .errors import InputError
from .files import read_text


def sniff_delimiter(header_line: str) -> str:
    """Tab when the header has tabs, else comma (the two layouts plankton tables come in)."""
    return "\t" if header_line.count("\t") > header_line.count(",") else ","


TYPE_TAGS = ("[t]", "[f]")  # EcoTaxa's second line: text or number, one tag per column
# The longest cell a table may hold (the csv module's own limit, 128 KiB): a longer one is a damaged file.
MAX_CELL = csv.field_size_limit()


def numbered_rows(text: str, path, delimiter: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header, and the rows with their line numbers: blank rows and EcoTaxa's type-tag line left out,
    a row whose field count differs from the header's an input error naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError("the file is empty", path=path) from None
    except csv.Error as e:
        raise _damaged(e, path, reader) from None
    first = {}
    for k, name in enumerate(header, start=1):
        if name and first.setdefault(name, k) != k:  # a reader would silently take one of the two
            raise InputError(f"two columns named {name!r} ({first[name]} and {k})", path=path, where="line 1")

    def rows():
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if reader.line_num == 2 and all(c.strip() in TYPE_TAGS for c in row):
                    continue
                if len(row) != len(header):
                    raise InputError(f"{len(row)} fields where the header has {len(header)}", path=path,
                                     where=f"line {reader.line_num}")
                yield reader.line_num, row
        except csv.Error as e:  # a cell over MAX_CELL, a NUL byte
            raise _damaged(e, path, reader) from None

    return header, rows()


def _damaged(error: csv.Error, path, reader) -> InputError:
    """A csv module error (a cell over MAX_CELL, a NUL byte) as one line naming the file and the line."""
    if "field larger than field limit" in str(error):
        return InputError(f"a cell longer than {MAX_CELL:,} characters (a damaged table, or not one)", path=path,
                          where=f"line {reader.line_num}")
    return InputError(f"not a readable table ({error})", path=path, where=f"line {reader.line_num}")


def read_table(path: str | os.PathLike, text: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a comma- or tab-separated file; ragged rows are input errors."""
    text = read_text(path) if text is None else text
    header, rows = numbered_rows(text, path, sniff_delimiter(text.split("\n", 1)[0]))
    return header, [row for _, row in rows]


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
