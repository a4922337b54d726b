"""Fixtures for the WordNet tests: the machine's database and a fresh cache (CI must have WordNet)."""

from __future__ import annotations

import os

import pytest

from hier.core.errors import InputError
from hier.taxo import wordnet_db
from hier.taxo.wordnet import noun_index


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"WordNet must be installed in CI: {reason}")
    pytest.skip(f"WordNet is not installed: {reason}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache for the module: its first build is the cold one (nltk reads WordNet once)."""
    home = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        try:
            noun_index()
        except InputError as e:
            _missing(str(e))
        yield home


@pytest.fixture
def database():
    """The WordNet 3.0 database of the machine (apt's wordnet-base, or $WNHOME/dict)."""
    found = wordnet_db.system_database()
    if found is None:
        _missing("no database in /usr/share/wordnet or $WNHOME/dict")
    return found
