"""EcoTaxa exports (.tsv, or a .zip of them): rows, and the taxonomy of their annotations.

An export is tab-separated, values may be quoted, and a second line may hold `[t]`/`[f]`
type tags. The lineage is ``object_annotation_hierarchy`` ("living>...>Copepoda"); the display
name ``object_annotation_category`` ("egg<other") is unique only together with its parent.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from hier.core.errors import InputError
from hier.core.files import check_zip_members, decode_text, read_bytes
from hier.core.tables import TYPE_TAGS, numbered_rows

from .taxonomy import Taxonomy

HIERARCHY = "object_annotation_hierarchy"
CATEGORY = "object_annotation_category"
STATUS = "object_annotation_status"
DEFAULT_STATUS = ("validated",)


@dataclass(frozen=True)
class EcoTaxaRow:
    fields: dict[str, str]
    where: str  # "file.tsv: line 7", for error messages
    folder: PurePosixPath  # the TSV's folder, inside the zip or on disk; img_file_name is relative to it

    def lineage(self) -> list[str]:
        hierarchy = self.fields.get(HIERARCHY, "").strip()
        if hierarchy:
            return [p.strip() for p in hierarchy.split(">") if p.strip()]
        # 'egg<other' is 'egg' under 'other': read it root-first
        return [p.strip() for p in reversed(self.fields.get(CATEGORY, "").split("<")) if p.strip()]

    @property
    def status(self) -> str:
        return self.fields.get(STATUS, "").strip().lower()


def write_header(writer, columns: Sequence[str], numbers: Sequence[str] = ()) -> None:
    """An export's two header lines for a csv writer: the column names, then each column's type tag."""
    writer.writerow(columns)
    text, number = TYPE_TAGS
    writer.writerow([number if c in numbers else text for c in columns])


def safe_member(name: str, archive) -> PurePosixPath:
    """A zip member path that stays inside the archive; '../' and absolute members are refused."""
    member = PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or ".." in member.parts or (member.parts and member.parts[0].endswith(":")):
        raise InputError(f"unsafe member path {name!r} (escapes the archive)", path=archive)
    return member


def _parse_tsv(text: str, origin: str, folder: PurePosixPath) -> list[EcoTaxaRow]:
    header, rows = numbered_rows(text, origin, "\t")
    if HIERARCHY not in header and CATEGORY not in header:
        first = text.split("\n", 1)[0]
        other = next((sep for sep in (";", ",") if len(header) == 1 and HIERARCHY in first and sep in first), None)
        hint = f" (the file is separated by {other!r}, as a spreadsheet in a decimal-comma locale saves it; " \
               "EcoTaxa exports are tab-separated)" if other else ""
        raise InputError(f"not an EcoTaxa export: no {HIERARCHY!r} or {CATEGORY!r} column{hint}", path=origin)
    return [EcoTaxaRow(dict(zip(header, row)), f"{origin}: line {line}", folder) for line, row in rows]


def is_zip(path: str | os.PathLike, data=None) -> bool:
    """Whether an export is a zip archive; a file named .zip that is not one is an input error."""
    if zipfile.is_zipfile(data if data is not None else path):
        return True
    if str(path).lower().endswith(".zip"):
        raise InputError("not a zip archive (damaged, or another kind of file named .zip)", path=path)
    return False


def read_export(path: str | os.PathLike) -> list[EcoTaxaRow]:
    """All rows of an export (.tsv, or every .tsv inside a .zip)."""
    data = read_bytes(path)
    if is_zip(path, io.BytesIO(data)):
        rows = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip_members(archive.infolist(), path)  # a bomb is refused before a byte is inflated
            members = [m for m in archive.namelist() if m.lower().endswith((".tsv", ".txt"))]
            if not members:
                raise InputError("the zip holds no .tsv export", path=path)
            for name in members:
                member = safe_member(name, path)
                text = decode_text(archive.read(name), f"{path}:{name}")
                rows += _parse_tsv(text, f"{path}:{name}", member.parent)
        return rows
    return _parse_tsv(decode_text(data, path), str(path), PurePosixPath("."))


def filter_status(rows: Sequence[EcoTaxaRow], status: Sequence[str], path) -> list[EcoTaxaRow]:
    """Keep rows whose annotation status is wanted; a file without a status column keeps all."""
    wanted = {s.strip().lower() for s in status}
    if rows and STATUS not in rows[0].fields:
        return list(rows)
    kept = [r for r in rows if r.status in wanted]
    if rows and not kept:
        found = sorted({r.status or "(empty)" for r in rows})
        raise InputError(f"no row has status {', '.join(sorted(wanted))} (found: {', '.join(found)}); "
                         "widen with --status", path=path)
    return kept


def build_from_ecotaxa(path: str | os.PathLike, *, status: Sequence[str] = DEFAULT_STATUS) -> Taxonomy:
    """The taxonomy of an export's annotations; each annotated category is a label node."""
    rows = filter_status(read_export(path), status, path)
    paths, labels = [], []
    for row in rows:
        names = row.lineage()
        if not names:
            raise InputError("no annotation (empty hierarchy and category)", path=row.where)
        node_path, prefix = [], ""
        for name in names:
            prefix = f"{prefix}>{name}" if prefix else name
            node_path.append((prefix, name, None))
        display = row.fields.get(CATEGORY, "").strip()
        if display:  # EcoTaxa's own name for the category, unique with its parent ('egg<other')
            node_path[-1] = (node_path[-1][0], display, None)
        paths.append(node_path)
        labels.append(prefix)
    if not paths:
        raise InputError("the export has no annotated rows", path=path)
    return Taxonomy.from_paths(paths, source="ecotaxa", labels=labels)
