"""Finding the WordNet 3.0 database and laying it out where nltk reads it.

nltk's own ``wordnet`` corpus is used when installed. Otherwise a WordNet 3.0 database on the
machine (Debian's ``wordnet-base`` in /usr/share/wordnet, or ``$WNHOME/dict``) is copied once into
the user's cache as an nltk data folder, with the ``lexnames`` file nltk needs and Debian lacks,
because nltk only reads files under its data path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

from hier.core.cache import cache_dir
from hier.core.errors import HierError, InputError
from hier.core.files import atomic_folder

_INSTALL_HINT = ("install it with `apt-get install wordnet-base wordnet-sense-index` (or set WNHOME to a "
                 "WordNet 3.0 folder), or run `python -c \"import nltk; nltk.download('wordnet')\"`")

# Files nltk's WordNet reader opens when it starts; index.sense and cntlist.rev are read only on demand.
_REQUIRED_FILES = tuple(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")) + (
    "noun.exc", "verb.exc", "adj.exc", "adv.exc")
_OPTIONAL_FILES = ("index.sense", "cntlist.rev")

# The 45 lexicographer files of WordNet 3.0 (number, name, part of speech), as in its ``lexnames``
# file; nltk needs that file and Debian's package does not ship it.
_LEXNAMES = """\
adj.all 3
adj.pert 3
adv.all 4
noun.Tops 1
noun.act 1
noun.animal 1
noun.artifact 1
noun.attribute 1
noun.body 1
noun.cognition 1
noun.communication 1
noun.event 1
noun.feeling 1
noun.food 1
noun.group 1
noun.location 1
noun.motive 1
noun.object 1
noun.person 1
noun.phenomenon 1
noun.plant 1
noun.possession 1
noun.process 1
noun.quantity 1
noun.relation 1
noun.shape 1
noun.state 1
noun.substance 1
noun.time 1
verb.body 2
verb.change 2
verb.cognition 2
verb.communication 2
verb.competition 2
verb.consumption 2
verb.contact 2
verb.creation 2
verb.emotion 2
verb.motion 2
verb.perception 2
verb.possession 2
verb.social 2
verb.stative 2
verb.weather 2
adj.ppl 3
"""

# nltk data folders this module added to nltk.data.path; not searched for nltk's own corpus.
_LAYOUT_HOMES: set[str] = set()


def find_wordnet() -> Path:
    """The WordNet corpus folder nltk reads (``.../wordnet.zip/wordnet`` inside a zip).

    nltk's installed ``wordnet`` corpus when nltk finds one; else a WordNet 3.0 database from
    ``$WNHOME/dict`` or /usr/share/wordnet, laid out once as ``<cache>/nltk_data/corpora/wordnet``.
    """
    return locate().root


class Located(NamedTuple):
    root: Path  # the corpus folder
    origin: Path  # the file whose size and mtime stand for the database's version
    reader_root: object  # what nltk's reader opens: the folder, or a pointer into a zip


def locate() -> Located:
    import nltk

    own_paths = [p for p in nltk.data.path if p not in _LAYOUT_HOMES]
    pointer = None
    for name in ("corpora/wordnet.zip/wordnet/", "corpora/wordnet"):  # in the order nltk.corpus.wordnet tries
        try:
            pointer = nltk.data.find(name, paths=own_paths)
            break
        except LookupError:
            continue
    if isinstance(pointer, nltk.data.ZipFilePathPointer):
        archive = Path(pointer.zipfile.filename)
        return Located(archive / pointer.entry.rstrip("/"), archive, pointer)
    if pointer is not None:
        return Located(Path(pointer.path), Path(pointer.path) / "data.noun", pointer.path)
    layout_home = cache_dir() / "nltk_data"
    layout = layout_home / "corpora" / "wordnet"
    database = system_database()
    if database is not None:
        lay_out(database, layout)
    elif not (layout / "data.noun").is_file():  # nor laid out earlier from a database since removed
        raise InputError(f"no WordNet found: {_INSTALL_HINT}")
    _LAYOUT_HOMES.add(str(layout_home))
    if str(layout_home) not in nltk.data.path:
        nltk.data.path.append(str(layout_home))  # nltk reads only under its data path
    return Located(layout, (database or layout) / "data.noun", str(layout))


def system_database() -> Path | None:
    candidates = [Path(os.environ["WNHOME"]) / "dict"] if os.environ.get("WNHOME") else []
    candidates.append(Path("/usr/share/wordnet"))
    return next((d for d in candidates if all((d / f).is_file() for f in _REQUIRED_FILES)), None)


def is_copy_of(layout: Path, database: Path) -> bool:
    def same(name: str) -> bool:
        try:
            a, b = (database / name).stat(), (layout / name).stat()
        except OSError:
            return False
        return (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)

    names = [f for f in _REQUIRED_FILES + _OPTIONAL_FILES if (database / f).exists()]
    return (layout / "lexnames").is_file() and all(same(f) for f in names)


def lay_out(database: Path, layout: Path) -> Path:
    """Copy the database into ``layout`` with a ``lexnames`` file, once.

    Copies rather than symlinks: nltk refuses files whose real path lies outside its data path.
    The folder is filled under a temporary name and renamed into place, so a process that
    starts meanwhile sees the whole folder or none; the loser of a race keeps the winner's.
    """
    if is_copy_of(layout, database):
        return layout
    if layout.exists():  # a copy of an older database
        shutil.rmtree(layout, ignore_errors=True)
    try:
        with atomic_folder(layout) as staging:
            _fill_layout(staging, database)
    except OSError as e:
        if is_copy_of(layout, database):  # a concurrent process's finished copy
            return layout
        raise HierError(f"cannot write the cache folder {layout.parent} ({e.strerror}); "
                        "set HIER_CACHE to a writable folder") from None
    return layout


def _fill_layout(staging: Path, database: Path) -> None:
    for name in _REQUIRED_FILES + _OPTIONAL_FILES + ("lexnames",):
        if (database / name).is_file():
            shutil.copy2(database / name, staging / name)  # keeps mtimes: is_copy_of compares them
    if not (staging / "lexnames").exists():
        lines = (f"{number:02d}\t{name}\t{pos}" for number, (name, pos) in
                 enumerate(line.split() for line in _LEXNAMES.splitlines()))
        (staging / "lexnames").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for f in staging.iterdir():
        f.chmod(0o644)  # nltk refuses group- or world-writable data files
