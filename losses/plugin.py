"""The built-in losses, registered through the same hooks as third-party plugins.

The top level stays free of torch; the hook imports what it registers. The help line of each entry is
the first line of its class docstring.
"""

from hier.plugins import hookimpl


@hookimpl
def register_losses(register):
    from .asl import AsymmetricLoss
    from .bce import BinaryCrossEntropy
    from .ce import CrossEntropy
    from .focal import FocalLoss
    from .hbce import HierarchicalBCE
    from .hxe import HierarchicalCrossEntropy
    from .soft_labels import SoftLabels

    for loss in (CrossEntropy, BinaryCrossEntropy, FocalLoss, AsymmetricLoss, HierarchicalBCE,
                 HierarchicalCrossEntropy, SoftLabels):
        register(loss.name, loss)
