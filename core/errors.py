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


def first_line(error: Exception, limit: int = 160) -> str:
    """The start of an error's message, for a one-line report (some errors have no message)."""
    return str(error).partition("\n")[0][:limit]


def is_number(value) -> bool:
    """An int or a float, not a bool (YAML's ``yes`` must not pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_non_negative(owner: str, **options) -> None:
    """Each option a number, zero or more; else an input error naming ``owner`` and the option."""
    for option, value in options.items():
        if not (is_number(value) and value >= 0):
            raise InputError(f"{owner}: {option} must be a number, zero or more, got {value!r}")
