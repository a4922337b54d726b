"""Ctrl-C and SIGTERM that are neither lost nor messy.

SIGTERM is how schedulers (Slurm, Kubernetes, systemd) and ``kill`` stop a job. Inside
``handling_signals()`` (the whole of a ``hier`` command) it raises ``Terminated``, a KeyboardInterrupt,
so every cleanup that Ctrl-C runs (temporary files removed, the resume hint of ``hier fit``) runs for
it too; ``received()`` then tells the command line which signal came (exit 130 or 143).

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a destructor
or an after-fork hook (a DataLoader starting or stopping its worker processes), the exception is
printed as an "ignored" traceback and the program goes on. Inside ``catching_interrupts()`` the
first signal is only recorded, and ``check_interrupt()``, called between batches, raises it there; a
second signal raises at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


RAISES = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it

_deferring = threading.Event()
_pending: list[int] = []  # the signal catching_interrupts() has recorded, not raised yet
_received: list[int] = []  # the signals handled since handling_signals() began
_previous: dict[int, object] = {}
_owner = [0]  # the process that installed the handlers: forked workers keep Python's own handling


def _on_signal(signum, frame):
    if os.getpid() != _owner[0]:  # a forked worker (DataLoader, multiprocessing): behave as before
        previous = _previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            return previous(signum, frame)
        signal.signal(signum, previous)
        os.kill(os.getpid(), signum)
        return None
    _received.append(signum)
    if _deferring.is_set() and not _pending:
        _pending.append(signum)
        return None
    raise RAISES[signum]()  # asked twice, or not deferring: at once


@contextlib.contextmanager
def _handlers():
    previous = {s: signal.signal(s, _on_signal) for s in RAISES}
    outermost = not _previous
    if outermost:  # what a forked worker falls back to
        _previous.update(previous)
        _owner[0] = os.getpid()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if outermost:
            _previous.clear()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handling_signals():
    """SIGINT and SIGTERM raise (KeyboardInterrupt, Terminated) while the block runs; see ``received``."""
    if not _main_thread():
        yield
        return
    _received.clear()
    with _handlers():
        yield


def received() -> int | None:
    """The first signal handled since ``handling_signals()`` began, forgotten once read (a command run
    inside another, as ``hier demo`` runs its steps, reports it once)."""
    signum = _received[0] if _received else None
    _received.clear()
    return signum


@contextlib.contextmanager
def catching_interrupts():
    """Record SIGINT and SIGTERM while the block runs (main thread only; elsewhere Python's own handling stays)."""
    if not _main_thread():
        yield
        return
    _pending.clear()
    _deferring.set()
    try:
        with _handlers():
            yield
    finally:
        _deferring.clear()
        _pending.clear()


def check_interrupt() -> None:
    """Raise KeyboardInterrupt (Terminated for SIGTERM) if a signal arrived since the block began."""
    if _pending:
        raise RAISES[_pending[0]]()
