"""Datasets as users have them: class folders, EcoTaxa exports, and image tables.

Every reader returns a :class:`Dataset`: named splits of ``Sample(path, label)``, where the
label is the raw string of the data (a folder name, an EcoTaxa hierarchy, a table cell).
:func:`resolve_labels` maps those strings to taxonomy nodes. Torch-free: ``hier taxo validate``
reads datasets without loading torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hier.core.cache import cache_dir
from hier.core.errors import InputError
from hier.core.files import atomic_folder, check_zip_members, read_text
from hier.core.tables import column, read_table
from hier.taxo import ecotaxa

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"})
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")  # tables of image paths hier predict reads
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test",
               "calib": "calib", "calibration": "calib"}
# A folder level named by years (WHOI-Plankton: <year>/<class>/*.png) is not a class level.
YEAR = re.compile(r"(19|20)\d\d")
TINY_IMAGENET_ANNOTATIONS = "val_annotations.txt"

PATH_COLUMNS = ("img_file_name", "path", "image", "image_path", "img_path", "file", "filename", "file_name")
LABEL_COLUMNS = (ecotaxa.HIERARCHY, "label", "class", "category", "taxon", "lineage", ecotaxa.CATEGORY)
SPLIT_COLUMNS = ("set", "split", "subset", "object_set", "object_split")
SHOWN = 5  # offenders named in an error message


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


@dataclass
class Dataset:
    """Samples by split. A dataset without its own split has one split named ``"all"``."""

    root: Path
    splits: dict[str, list[Sample]]
    kind: str  # "folders", "tiny-imagenet", "whoi", "ecotaxa" or "table"
    missing: list[Path] = field(default_factory=list)  # listed in a table but not on disk (left out)
    ignored: list[Path] = field(default_factory=list)  # folders beside the split folders (unseen/), not read

    @property
    def samples(self) -> list[Sample]:
        return [s for split in self.splits.values() for s in split]

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.samples})

    @property
    def has_splits(self) -> bool:
        return set(self.splits) != {"all"}

    def split(self, name: str) -> list[Sample]:
        if name not in self.splits:
            raise InputError(f"no split {name!r} (the dataset has: {', '.join(self.splits)})", path=self.root)
        return self.splits[name]


def read_dataset(source: str | os.PathLike, *, path_column: str | None = None, label_column: str | None = None,
                 split_column: str | None = None, status: Sequence[str] | None = ecotaxa.DEFAULT_STATUS) -> Dataset:
    """Read a class-folder tree, an EcoTaxa export (.tsv or .zip), or a CSV/TSV of image paths and labels.

    ``status`` filters EcoTaxa rows by ``object_annotation_status`` (None or empty: keep all).
    The column options apply to tables and EcoTaxa exports; a folder tree ignores them.
    """
    source = Path(os.path.abspath(source))
    if not source.exists():
        raise InputError("no such file or folder", path=source)
    if source.is_dir():
        return _read_folder_tree(source)
    if ecotaxa.is_zip(source):
        return _read_ecotaxa_zip(source, path_column, label_column, split_column, status)
    return _read_table_file(source, path_column, label_column, split_column, status)


# ---- folder trees ----------------------------------------------------------------------------


def _visible(entries) -> list[os.DirEntry]:
    # '.DS_Store', '._x.jpg' (macOS) and '.ipynb_checkpoints' are never data
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _subfolders(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return [Path(e.path) for e in _visible(it) if e.is_dir()]


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def images_under(folder: Path) -> list[Path]:
    """Image files anywhere below ``folder`` (ImageNet's ``<wnid>/images/`` included), in path order."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(top, f) for f in sorted(files) if not f.startswith(".") and _is_image(f)]
    return found


def _read_folder_tree(root: Path) -> Dataset:
    children = _subfolders(root)
    if not children:
        raise InputError("no class folders (a dataset folder holds one folder per class, "
                         "or train/ val/ test/ folders of them)", path=root)
    split_folders = [c for c in children if c.name.lower() in SPLIT_NAMES]
    if not split_folders:
        samples, kind = _read_split(root)
        if samples is None:
            raise InputError("images without labels: put each class in its own folder", path=root)
        return Dataset(root, {"all": samples}, kind)

    splits, kinds = {}, set()
    for child in split_folders:
        name = SPLIT_NAMES[child.name.lower()]
        if name in splits:
            raise InputError(f"two folders for the {name!r} split", path=child)
        samples, kind = _read_split(child)
        if samples is None:  # tiny-ImageNet's test/, ImageNet's flat val/: no labels to read
            warnings.warn(f"{child}: no class folders or annotations, split {name!r} left out", stacklevel=3)
            continue
        splits[name] = samples
        kinds.add(kind)
    if not splits:
        raise InputError("no split has labelled images", path=root)
    kind = next((k for k in ("tiny-imagenet", "whoi") if k in kinds), "folders")
    return Dataset(root, splits, kind, ignored=[c for c in children if c not in split_folders])


def _read_split(folder: Path) -> tuple[list[Sample] | None, str]:
    """Samples of one split folder, and the layout found; None when the folder has no labels."""
    annotations = folder / TINY_IMAGENET_ANNOTATIONS
    if annotations.is_file():
        return _read_tiny_imagenet_val(folder, annotations), "tiny-imagenet"
    subfolders = _subfolders(folder)
    if not subfolders or [s.name for s in subfolders] == ["images"]:
        return None, "folders"
    if all(YEAR.fullmatch(s.name) for s in subfolders):
        classes = [c for year in subfolders for c in _subfolders(year)]
        if classes:  # <year>/<class>/: the year level is merged, the class folder is the label
            return _read_classes(classes), "whoi"
    return _read_classes(subfolders), "folders"


def _read_classes(class_folders: Iterable[Path]) -> list[Sample]:
    samples = []
    for folder in class_folders:
        images = images_under(folder)
        if not images:
            raise InputError("class folder without images", path=folder)
        samples += [Sample(p, folder.name) for p in images]
    return samples


def _read_tiny_imagenet_val(folder: Path, annotations: Path) -> list[Sample]:
    """tiny-ImageNet's val/: ``images/*.JPEG`` and one ``file<TAB>wnid<TAB>box...`` line per image."""
    samples = []
    for number, line in enumerate(read_text(annotations).splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or not fields[1].strip():
            raise InputError("expected 'file<TAB>wnid'", path=annotations, where=f"line {number}")
        samples.append(Sample(folder / "images" / fields[0].strip(), fields[1].strip()))
    missing = [s.path.name for s in samples if not s.path.is_file()]
    if missing:
        raise InputError(f"{len(missing)} annotated images are missing from images/ ({', '.join(missing[:SHOWN])})",
                         path=annotations)
    return samples


# ---- tables and EcoTaxa exports ----------------------------------------------------------------


def _read_table_file(path: Path, path_column, label_column, split_column, status) -> Dataset:
    header, rows = read_table(path)
    if ecotaxa.HIERARCHY in header or ecotaxa.CATEGORY in header:
        return _read_ecotaxa_rows(path, path.parent, ecotaxa.read_export(path), path_column, label_column,
                                  split_column, status)
    records = [ecotaxa.EcoTaxaRow(dict(zip(header, row)), f"{path}: row {n}", PurePosixPath("."))
               for n, row in enumerate(rows, start=1)]
    return _dataset_from_rows(path, path.parent, header, records, path_column, label_column, split_column, "table")


def _read_ecotaxa_rows(path: Path, base: Path, rows: list[ecotaxa.EcoTaxaRow], path_column, label_column,
                       split_column, status) -> Dataset:
    if status:
        rows = ecotaxa.filter_status(rows, status, path)
    if rows and "img_rank" in rows[0].fields:  # extra images of an object have rank 1, 2, ...: keep the first
        rows = [r for r in rows if r.fields["img_rank"].strip() in ("", "0")]
    header = list(rows[0].fields) if rows else []
    return _dataset_from_rows(path, base, header, rows, path_column, label_column, split_column, "ecotaxa")


def _pick(header: Sequence[str], given: str | None, candidates: Sequence[str], what: str, flag: str, path) -> str:
    if given is not None:
        return header[column(list(header), given, path)]
    lowered = {h.lower(): h for h in header}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise InputError(f"no {what} column (looked for {', '.join(candidates)}); choose one with {flag}", path=path)


def _detect_split_column(header: Sequence[str], rows: Sequence[ecotaxa.EcoTaxaRow]) -> str | None:
    """A column named like a split (set, split, ...) that holds a split name (train/val/calib/test).

    Once one value names a split, every value must: one typo ('tarin') would otherwise discard the
    whole split and let test images into training (checked in :func:`_split_of`).
    """
    lowered = {h.lower(): h for h in header}
    for name in SPLIT_COLUMNS:
        if name in lowered and any(r.fields[lowered[name]].strip().lower() in SPLIT_NAMES for r in rows):
            return lowered[name]
    return None


def _split_of(row: ecotaxa.EcoTaxaRow, split_col: str, named: bool) -> str:
    """The row's split. ``named``: the column holds split names (train, val, ...), so every value must be
    one; a column of other values (folds 1, 2, 3 given with --split-column) keeps them as split names."""
    value = row.fields[split_col].strip()
    if not value:
        raise InputError(f"empty split in column {split_col!r}", path=row.where)
    if not named:
        return value
    if value.lower() not in SPLIT_NAMES:
        raise InputError(f"unknown split {value!r} in column {split_col!r} (known: "
                         f"{', '.join(sorted(SPLIT_NAMES))})", path=row.where)
    return SPLIT_NAMES[value.lower()]


def _label(row: ecotaxa.EcoTaxaRow, label_column: str, kind: str) -> str:
    if kind == "ecotaxa" and label_column == ecotaxa.HIERARCHY:
        return ">".join(row.lineage())  # as `hier taxo build --source ecotaxa` names the node
    return row.fields[label_column].strip()


def _dataset_from_rows(path: Path, base: Path, header: list[str], rows: Sequence[ecotaxa.EcoTaxaRow],
                       path_column, label_column, split_column, kind: str) -> Dataset:
    """Samples from table rows; an image path is relative to ``base`` / the row's folder."""
    if not rows:
        raise InputError("the table has no rows", path=path)
    path_col = _pick(header, path_column, PATH_COLUMNS, "image-path", "--path-column", path)
    label_col = _pick(header, label_column, LABEL_COLUMNS, "label", "--label-column", path)
    split_col = (_pick(header, split_column, (), "split", "--split-column", path) if split_column is not None
                 else _detect_split_column(header, rows))

    named = split_col is not None and any(r.fields[split_col].strip().lower() in SPLIT_NAMES for r in rows)
    splits: dict[str, list[Sample]] = defaultdict(list)
    missing = []
    for row in rows:
        label, file_name = _label(row, label_col, kind), row.fields[path_col].strip()
        if not label:
            raise InputError(f"empty label in column {label_col!r}", path=row.where)
        if not file_name:
            raise InputError(f"empty image path in column {path_col!r}", path=row.where)
        split = _split_of(row, split_col, named) if split_col is not None else "all"
        image = Path(os.path.abspath(base.joinpath(*row.folder.parts, file_name)))
        if image.is_file():
            splits[split].append(Sample(image, label))
        else:
            missing.append(image)
    if not splits:
        raise InputError(f"none of the {len(rows)} listed images exists (first: {missing[0]})", path=path)
    if missing:
        warnings.warn(f"{path}: {len(missing)} listed images do not exist and are left out "
                      f"(first: {', '.join(str(m) for m in missing[:3])})", stacklevel=4)
    return Dataset(base, dict(splits), kind, missing)


def _read_ecotaxa_zip(path: Path, path_column, label_column, split_column, status) -> Dataset:
    """An EcoTaxa zip export: extracted once into a cache folder, then each TSV read beside its images."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for m in members:
            ecotaxa.safe_member(m.filename, path)
        check_zip_members(members, path)
        tables = [m.filename for m in members if m.filename.lower().endswith(".tsv")]
        if not tables:
            raise InputError("the zip holds no .tsv export", path=path)
        root = _extract(archive, members, path)
    splits: dict[str, list[Sample]] = defaultdict(list)
    missing = []
    for name in tables:
        table = root.joinpath(*PurePosixPath(name).parts)
        d = _read_ecotaxa_rows(table, table.parent, ecotaxa.read_export(table), path_column, label_column,
                               split_column, status)
        for split, samples in d.splits.items():
            splits[split] += samples
        missing += d.missing
    return Dataset(root, dict(splits), "ecotaxa", missing)


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], path: Path) -> Path:
    """Extract into a cache folder named by the zip's path, size and time; reused while the zip is unchanged."""
    stat = path.stat()
    key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "zips" / f"{path.stem}-{key}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    needed = sum(m.file_size for m in members)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise InputError(f"extracting needs {needed / 1e9:.1f} GB, {free / 1e9:.1f} GB free in {target.parent}",
                         path=path)
    try:
        with atomic_folder(target) as staging:  # a reader sees a complete folder or none
            for m in members:
                out = staging.joinpath(*ecotaxa.safe_member(m.filename, path).parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with archive.open(m) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a bad CRC, a cut archive
                    raise InputError(f"damaged member {m.filename!r} ({e})", path=path) from None
    except OSError:
        if not target.is_dir():  # not another process's finished extraction
            raise
    return target
