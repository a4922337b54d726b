"""Errors the command line turns into one clear line and an exit code."""


class HierError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1


class InputError(HierError):
    """Bad input from the user: a file, a flag, a value (exit code 2).

    The message names the file, the place in it and the problem, on one line.
    """

    exit_code = 2

    def __init__(self, message: str, *, path=None, where=None):
        parts = [str(p) for p in (path, where) if p not in (None, "")]
        super().__init__(": ".join(parts + [message]))
