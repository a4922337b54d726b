"""Finding WordNet and laying it out for nltk."""

from __future__ import annotations

import os
import zipfile

import pytest

from hier.core.errors import InputError
from hier.taxo import wordnet_db
from hier.taxo.wordnet_db import find_wordnet


def test_lay_out_copies_the_database_with_lexnames(database, tmp_path):
    layout = tmp_path / "nltk_data" / "corpora" / "wordnet"
    umask = os.umask(0o002)  # a group-writable default, as on systems with per-user groups
    try:
        assert wordnet_db.lay_out(database, layout) == layout
    finally:
        os.umask(umask)
    lexnames = (layout / "lexnames").read_text().splitlines()
    if not (database / "lexnames").exists():
        assert len(lexnames) == 45
        assert lexnames[0] == "00\tadj.all\t3"
        assert lexnames[3] == "03\tnoun.Tops\t1"
        assert lexnames[44] == "44\tadj.ppl\t3"
    assert all(n.split("\t")[0] == f"{i:02d}" for i, n in enumerate(lexnames))
    assert (layout / "data.noun").read_bytes() == (database / "data.noun").read_bytes()
    assert all(f.stat().st_mode & 0o022 == 0 for f in layout.iterdir())  # nltk refuses writable data
    before = (layout / "lexnames").stat().st_ino
    wordnet_db.lay_out(database, layout)  # already there: left alone
    assert (layout / "lexnames").stat().st_ino == before
    os.utime(layout / "data.noun", ns=(0, 0))  # the database changed since: laid out again
    wordnet_db.lay_out(database, layout)
    assert wordnet_db.is_copy_of(layout, database)
    assert [p.name for p in layout.parent.iterdir()] == ["wordnet"]


def test_lay_out_race_keeps_the_first_finished_copy(database, tmp_path, monkeypatch):
    """Two processes laying out at once: the one that renames second keeps the other's folder."""
    layout = tmp_path / "corpora" / "wordnet"
    real_rename = os.rename

    def rival_finishes_first(src, dst):
        monkeypatch.setattr(os, "rename", real_rename)
        wordnet_db.lay_out(database, layout)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rival_finishes_first)
    assert wordnet_db.lay_out(database, layout) == layout
    assert wordnet_db.is_copy_of(layout, database)
    assert [p.name for p in layout.parent.iterdir()] == ["wordnet"]  # no staging folder left behind


def test_nltk_own_corpus_is_preferred(database, tmp_path, monkeypatch):
    import nltk

    own = tmp_path / "nltk_data"
    wordnet_db.lay_out(database, own / "corpora" / "wordnet")
    monkeypatch.setattr(nltk.data, "path", [str(own)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert find_wordnet() == own / "corpora" / "wordnet"
    assert not (tmp_path / "cache").exists()

    zipped = tmp_path / "zipped"
    (zipped / "corpora").mkdir(parents=True)
    with zipfile.ZipFile(zipped / "corpora" / "wordnet.zip", "w") as archive:
        for f in sorted((own / "corpora" / "wordnet").iterdir()):
            archive.write(f, f"wordnet/{f.name}")
    monkeypatch.setattr(nltk.data, "path", [str(zipped)])
    assert find_wordnet() == zipped / "corpora" / "wordnet.zip" / "wordnet"


def test_system_database_is_laid_out_in_the_cache(database, tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    layout = tmp_path / "hier" / "nltk_data" / "corpora" / "wordnet"
    assert find_wordnet() == layout
    assert wordnet_db.is_copy_of(layout, database)
    assert str(tmp_path / "hier" / "nltk_data") in nltk.data.path  # nltk reads only under its data path


def test_no_wordnet_says_how_to_get_one(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setattr(wordnet_db, "system_database", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(InputError) as error:
        find_wordnet()
    message = str(error.value)
    assert "apt-get install wordnet-base wordnet-sense-index" in message
    assert "nltk.download('wordnet')" in message
    assert "\n" not in message
