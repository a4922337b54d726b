"""The built-in heads, registered through the same hooks as third-party plugins.

The top level stays free of torch so that commands which never build a model stay fast; each hook
imports what it registers. The help line of each entry is the first line of its class docstring.
"""

from hier.plugins import hookimpl


@hookimpl
def register_heads(register):
    from .arcface import ArcFace
    from .arcface_multihead import ArcFaceMultiHead
    from .classifier import Classifier
    from .spheremulti import SphereMulti, SphereMultiHier

    for head in (Classifier, ArcFace, SphereMulti, SphereMultiHier, ArcFaceMultiHead):
        register(head.name, head)
