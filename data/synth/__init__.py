"""The synthetic plankton benchmark: grayscale images that carry a known taxonomy in their pixels.

Each rank below ``living`` is drawn by one visual trait: the body shape decides the phylum,
the appendages the class, the internal texture the genus (deeper taxonomies add inner
bodies and the cell wall). Species of a genus share all of these and differ only by a small
shift along a "species axis" that stretches the body and lengthens appendages or tightens
the texture. Draws around neighbouring species overlap a little, and a fixed fraction of
every species' images is drawn exactly between two sibling species: those images are
ambiguous at the species level while their genus is certain. Class sizes follow Zipf's
law; rotation, scale, blur, noise, background and contrast vary per image. Non-living
classes (detritus, bubble) sit outside the ``living`` branch.

The taxonomy, the class sizes and the held-out species depend only on ``depth``, ``images``
and ``unseen``; the seed changes the pixels and the split. Numpy and PIL only.
"""

from .draw import draw_object
from .grid import sample_grid
from .taxonomy import (
    AMBIGUOUS_FRACTION,
    BRANCHING,
    NON_LIVING,
    TRAITS,
    SynthTree,
    build_tree,
    class_order,
    class_sizes,
    species_accuracy_bound,
)
from .write import SynthResult, synthesize

__all__ = ["AMBIGUOUS_FRACTION", "BRANCHING", "NON_LIVING", "TRAITS", "SynthResult", "SynthTree", "build_tree",
           "class_order", "class_sizes", "draw_object", "sample_grid", "species_accuracy_bound", "synthesize"]
