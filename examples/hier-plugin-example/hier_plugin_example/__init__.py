"""Entry point module: the hooks only; torch is imported when a head or loss is registered."""

from hier.plugins import hookimpl


@hookimpl
def register_heads(register):
    from .cosface import CosFace

    register("cosface", CosFace, help="Large-margin cosine head: s * (cos(theta) - m) on the true class")


@hookimpl
def register_losses(register):
    from .label_smoothing import LabelSmoothing

    register("label-smoothing", LabelSmoothing, help="Cross-entropy against a smoothed target over the leaves")
