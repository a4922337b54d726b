# file: hier_cosface/__init__.py
"""The hooks of hier-cosface; the classes (and torch) are imported when they are registered."""

from hier.plugins import hookimpl


@hookimpl
def register_heads(register):
    from .cosface import CosFace

    register("cosface", CosFace)  # the help line `hier heads` shows: the class docstring's first line


@hookimpl
def register_losses(register):
    from .label_smoothing import LabelSmoothing

    register("label-smoothing", LabelSmoothing)
