"""WordNet 3.0 noun hierarchy over ImageNet-style wnids, turned from a DAG into a tree.

WordNet is read with nltk. Where nltk's own ``wordnet`` corpus is not installed, a WordNet 3.0
database on the machine (Debian's ``wordnet-base`` in /usr/share/wordnet, or ``$WNHOME/dict``)
is copied once into the user's cache as an nltk data folder, because nltk only reads files
under its data path. Loading WordNet with nltk takes seconds, so the first build also caches
what building needs, a compact noun hypernym index, and later builds read only that index
(nltk is not even imported).

DAG -> tree: every synset keeps one hypernym as its parent.

- ``longest`` (default): the hypernym deepest from the root by its *longest* path, so each
  synset's root path is a longest hypernym path (the ImageNet tree of Bertinetto et al. 2020);
- ``shortest``: the hypernym nearest the root by its shortest path;
- ``first``: nltk's first hypernym, ``(hypernyms() + instance_hypernyms())[0]`` with each list
  sorted by synset name as nltk documents (``dog`` -> ``canine.n.02``).

Choosing by each synset's own depth makes the paths consistent: two wnids that share an
ancestor reach the root through the same chain above it, so the chosen parents form a tree.
Ties (two hypernyms at the same depth) go to the smaller synset offset.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hier.core.cache import cache_dir
from hier.core.errors import InputError
from hier.core.files import atomic_write_bytes, read_text

from . import wordnet_db
from .prune import prune_dead_nodes
from .taxonomy import Taxonomy

TREES = ("longest", "shortest", "first")

WNID = re.compile(r"n\d{8}")  # a WordNet noun id, as ImageNet names its classes
_INDEX_FORMAT = "hier-wordnet-nouns"
_INDEX_VERSION = 1
@dataclass(frozen=True)
class NounIndex:
    """What a build needs from WordNet: each noun synset's first lemma and its hypernyms.

    Keys are synset offsets (``n01443537`` -> 1443537); ``hypernyms`` lists hypernyms, then
    instance hypernyms, each sorted by synset name (the order nltk documents for ``hypernyms()``;
    some nltk releases return them in set order, which changes from one process to the next).
    """

    version: str
    names: dict[int, str]
    hypernyms: dict[int, tuple[int, ...]]


# ---- the cached noun index --------------------------------------------------------------------


def _index_path() -> Path:
    return cache_dir() / f"wordnet-nouns-v{_INDEX_VERSION}.json"


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def noun_index() -> NounIndex:
    """The noun hypernym index: from the cache when the database it came from is unchanged, else built with nltk."""
    path = _index_path()
    stamp = _stamp(path)
    index = _read_index(path, *stamp) if stamp else None
    if index is None:
        index = _build_index(path)
    return index


@functools.lru_cache(maxsize=4)
def _read_index(path: Path, size: int, mtime_ns: int) -> NounIndex | None:
    """The cached index, or None when it is unreadable or its database changed (then it is rebuilt)."""
    try:
        data = json.loads(path.read_bytes())
        if (data["format"], data["version"]) != (_INDEX_FORMAT, _INDEX_VERSION):
            return None
        if _stamp(Path(data["origin"])) != data["stamp"]:
            return None
        return _from_record(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build_index(path: Path) -> NounIndex:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    located = wordnet_db.locate()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")  # no OMW needed here
        wn = WordNetCorpusReader(located.reader_root, None)
    offsets, names, hypernyms = [], [], []
    for synset in wn.all_synsets("n"):
        offsets.append(synset.offset())
        names.append(synset.lemmas()[0].name())
        hypernyms.append([h.offset() for h in sorted(synset.hypernyms()) + sorted(synset.instance_hypernyms())])
    record = {"format": _INDEX_FORMAT, "version": _INDEX_VERSION, "wordnet": wn.get_version(),
              "origin": str(located.origin), "stamp": _stamp(located.origin),
              "offsets": offsets, "names": names, "hypernyms": hypernyms}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (OSError, InputError) as e:  # the build can go on; only the next one is slower
        warnings.warn(f"cannot cache the WordNet index in {path} ({e}); every build will load WordNet with nltk",
                      stacklevel=3)
    return _from_record(record)


def _from_record(record: dict) -> NounIndex:
    offsets = record["offsets"]
    return NounIndex(version=record["wordnet"], names=dict(zip(offsets, record["names"])),
                     hypernyms=dict(zip(offsets, map(tuple, record["hypernyms"]))))


# ---- wnids from files and folders -------------------------------------------------------------


def _offset(wnid: str, index: NounIndex, *, path=None, where=None) -> int:
    if not WNID.fullmatch(wnid):
        raise InputError(f"{wnid!r} is not a WordNet noun id (expected 'n' and 8 digits, like n01443537)",
                         path=path, where=where)
    offset = int(wnid[1:])
    if offset not in index.hypernyms:
        raise InputError(f"{wnid} is not a noun synset of WordNet {index.version}", path=path, where=where)
    return offset


def read_wnids(path: str | os.PathLike) -> list[str]:
    """Wnids from a text file, one per line; ``#`` starts a comment, blank lines are skipped.

    Anything after the wnid on a line is ignored, so ImageNet's LOC_synset_mapping.txt
    (``n01440764 tench, Tinca tinca``) reads as well as tiny-ImageNet's wnids.txt.
    """
    text = read_text(path)
    index = noun_index()
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        wnid = fields[0]
        _offset(wnid, index, path=path, where=f"line {number}")
        if wnid in first_line:
            raise InputError(f"{wnid} is listed twice (first on line {first_line[wnid]})", path=path,
                             where=f"line {number}")
        first_line[wnid] = number
    if not first_line:
        raise InputError("no wnids in the file (expected one per line, like n01443537)", path=path)
    return list(first_line)


def wnids_from_folders(path: str | os.PathLike) -> list[str]:
    """Wnids named by class folders, sorted: of ``path/train`` when there is one (an ImageNet or
    tiny-ImageNet root with train/ val/ test/), else of ``path`` itself. Hidden folders are skipped."""
    root = Path(path)
    if not root.exists():
        raise InputError("no such folder", path=path)
    if not root.is_dir():
        raise InputError("is a file, expected a folder of class folders named by wnid", path=path)
    classes = root / "train" if (root / "train").is_dir() else root
    folders = sorted(p for p in classes.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError("no class folders (expected folders named by wnid, like n01443537/)", path=classes)
    index = noun_index()
    for folder in folders:
        _offset(folder.name, index, path=folder)
    return [folder.name for folder in folders]


# ---- DAG -> tree --------------------------------------------------------------------------------


def _parent_chooser(index: NounIndex, tree: str):
    """A function from a synset offset to the offset of the one hypernym it keeps (None at the root)."""
    hypernyms = index.hypernyms
    if tree == "first":
        return lambda offset: hypernyms[offset][0] if hypernyms[offset] else None
    deepest = tree == "longest"
    pick = max if deepest else min
    depth: dict[int, int] = {}

    def depth_of(offset: int) -> int:  # longest or shortest path length to the root
        if offset not in depth:
            above = hypernyms[offset]
            depth[offset] = 1 + pick(depth_of(h) for h in above) if above else 0
        return depth[offset]

    def parent(offset: int) -> int | None:
        above = hypernyms[offset]
        if not above:
            return None
        if deepest:
            return max(above, key=lambda h: (depth_of(h), -h))
        return min(above, key=lambda h: (depth_of(h), h))

    return parent


def _name(index: NounIndex, offset: int) -> str:
    return index.names[offset].replace("_", " ")


def build_wordnet(wnids: Sequence[str], *, tree: str = "longest", prune: bool = True) -> Taxonomy:
    """The WordNet hypernym tree above ``wnids`` (see the module docstring for ``tree``).

    Node ids are wnids, names the synset's first lemma (``great white shark``); the given wnids
    are marked ``label``. A given wnid that ends up above another given wnid is reported with a
    warning and stays an inner node that is also a label; every other given wnid is a leaf.
    ``prune`` removes dead nodes (single-child inner nodes that are not labels).
    """
    if tree not in TREES:
        raise InputError(f"unknown tree strategy {tree!r} (choose {', '.join(TREES)})")
    wnids = list(dict.fromkeys(wnids))
    if not wnids:
        raise InputError("no wnids given")
    index = noun_index()
    parent = _parent_chooser(index, tree)

    def node(offset: int) -> tuple[str, str, None]:
        return f"n{offset:08d}", _name(index, offset), None

    paths = []
    for wnid in wnids:
        chain = [_offset(wnid, index)]
        while (above := parent(chain[-1])) is not None:
            chain.append(above)
        paths.append([node(offset) for offset in reversed(chain)])

    given = set(wnids)
    below: dict[str, list[str]] = {}
    for path in paths:
        for ancestor, _, _ in path[:-1]:
            if ancestor in given:
                below.setdefault(ancestor, []).append(path[-1][0])
    if below:
        shown = [f"{a} ({_name(index, int(a[1:]))}) above {d[0]} ({_name(index, int(d[0][1:]))})"
                 + (f" and {len(d) - 1} more" if len(d) > 1 else "") for a, d in list(below.items())[:5]]
        rest = f"; and {len(below) - 5} more" if len(below) > 5 else ""
        warnings.warn(f"given wnids that are ancestors of other given wnids stay inner nodes that are also labels "
                      f"({len(below)}): {'; '.join(shown)}{rest}", stacklevel=2)

    taxonomy = Taxonomy.from_paths(paths, source="wordnet", labels=wnids)
    return prune_dead_nodes(taxonomy) if prune else taxonomy
