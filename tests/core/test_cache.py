"""The cache folder: $HIER_CACHE, then $XDG_CACHE_HOME/hier, then ~/.cache/hier."""

from __future__ import annotations

from pathlib import Path

from hier.core.cache import cache_dir


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("HIER_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "hier"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hier"
    monkeypatch.setenv("HIER_CACHE", str(tmp_path / "own"))
    assert cache_dir() == Path(tmp_path / "own")
