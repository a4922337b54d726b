"""Ctrl-C that is neither lost nor messy.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a destructor
or an after-fork hook (a DataLoader starting or stopping its worker processes), the exception is
printed as an "ignored" traceback and the program goes on. Inside ``catching_interrupts()`` the
first SIGINT is only recorded, and ``check_interrupt()``, called between batches, raises it there; a
second SIGINT raises at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_pending = threading.Event()


def _on_sigint(signum, frame):
    if _pending.is_set():  # asked twice: do not wait for the next batch
        raise KeyboardInterrupt
    _pending.set()


@contextlib.contextmanager
def catching_interrupts():
    """Record SIGINT while the block runs (main thread only; elsewhere Python's own handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if a SIGINT arrived since the block began."""
    if _pending.is_set():
        raise KeyboardInterrupt
