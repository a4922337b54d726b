"""Saving matplotlib figures whole or not at all."""

from __future__ import annotations

import io
import os

from .files import atomic_write_bytes


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | os.PathLike, **savefig_options) -> None:
    """Render ``figure`` in the format its suffix names, write it atomically, and close it."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=fmt, **savefig_options)
    finally:
        pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())
