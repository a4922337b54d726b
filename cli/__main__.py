"""``python -m hier.cli`` (and ``torchrun -m hier.cli``)."""

from .main import run

run()
