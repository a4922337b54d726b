"""The benchmark's taxonomy: the tree, its class sizes and held-out species, and the best species accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hier.core.errors import InputError

AMBIGUOUS_FRACTION = 0.2  # of each species' images, drawn halfway between it and a sibling
SPECIES_SPACING = 0.5     # distance between sibling species on the species axis t
SPECIES_SPREAD = 0.12     # sd of t around its species (neighbours are 2.1 sd from the midpoint)
AMBIGUOUS_SPREAD = 0.03   # sd of t around the midpoint, for the ambiguous images
ZIPF_EXPONENT = 1.0
MIN_PER_CLASS = 3         # one image per split at least

TRAITS = ("shape", "appendage", "texture", "inner", "wall")
OPTIONS = {
    "shape": ("disc", "rod", "triangle"),
    "appendage": ("none", "spines", "setae", "flagellum"),
    "texture": ("plain", "dots", "stripes", "rings"),
    "inner": ("nucleus", "two_nuclei", "vacuoles"),
    "wall": ("thin", "thick"),
}
DEFAULT_TRAITS = {"appendage": "none", "texture": "plain", "inner": "none", "wall": "thin"}
RANKS = {
    3: ("phylum", "genus", "species"),
    4: ("phylum", "class", "genus", "species"),
    5: ("phylum", "class", "order", "genus", "species"),
    6: ("phylum", "class", "order", "family", "genus", "species"),
}
# Children per node at each rank, cycled over the nodes of the rank above (irregular, as real trees).
BRANCHING = {
    3: ((3,), (4, 3, 3), (3, 4)),
    4: ((3,), (3, 2, 2), (2, 3), (3, 2, 4)),
    5: ((3,), (2, 3, 2), (2,), (2,), (2, 2, 3)),
    6: ((3,), (2,), (2,), (2,), (2,), (2, 2, 3)),
}
PHYLUM_NAMES = {"disc": "Discophyta", "rod": "Rhabdophyta", "triangle": "Trigonophyta"}
RANK_ENDINGS = {"class": ("phyceae",), "order": ("ales",), "family": ("aceae",),
                "genus": ("ella", "ium", "opsis", "us", "a", "ina")}
SYLLABLES = ("ba", "ce", "di", "fo", "gu", "la", "me", "no", "pi", "ro", "sa", "te", "vi", "xa", "zo", "ca",
             "ly", "tho", "phy", "chae", "cyl", "dac", "ker", "lep", "mel", "ner", "pol", "ste", "tri", "ur")
EPITHETS = ("minor", "gracilis", "robusta", "elongata", "ornata", "tenuis")
NON_LIVING = ("detritus", "bubble")


@dataclass
class SynthTree:
    """The generated taxonomy before held-out species are removed, with what each class looks like."""

    records: list[dict]                  # every node, root first
    looks: dict[str, dict]               # leaf id -> drawing parameters (traits, species position)
    neighbours: dict[str, list[float]]   # species id -> positions of the adjacent species of its genus on the axis
    genus_of: dict[str, str]             # species id -> genus id
    held_out: list[str] = field(default_factory=list)

    def lineage_names(self, node_id: str) -> list[str]:
        """Names from below the root down to the node ('living>...>Genus species')."""
        by_id = {r["id"]: r for r in self.records}
        names = []
        while by_id[node_id]["parent"] is not None:
            names.append(by_id[node_id]["name"])
            node_id = by_id[node_id]["parent"]
        return names[::-1]


def _name_maker():
    """Latin-looking names, unique; a fixed generator gives the same sequence of names on every run."""
    rng, used = np.random.default_rng(7), set()

    def make(ending: str) -> str:
        while True:
            stem = "".join(rng.choice(SYLLABLES, size=2))
            name = (stem + ending).capitalize()
            if name not in used:
                used.add(name)
                return name

    return make


def build_tree(depth: int = 4, unseen: int = 0) -> SynthTree:
    """The taxonomy of the benchmark: root > living > ranks of ``depth`` (phylum ... species); root > not-living."""
    if depth not in RANKS:
        raise InputError(f"--depth must be one of {', '.join(map(str, RANKS))} (got {depth})")
    ranks, make_name = RANKS[depth], _name_maker()
    records = [{"id": "root", "name": "root", "parent": None, "rank": None},
               {"id": "living", "name": "living", "parent": "root", "rank": None}]
    looks, genus_of = {}, {}
    level = [("living", {}, 0)]  # (node id, traits so far, position among its siblings)
    for k, rank in enumerate(ranks):
        pattern, next_level = BRANCHING[depth][k], []
        for counter, (parent_id, traits, position) in enumerate(level):
            count = pattern[counter % len(pattern)]
            if rank == "species":
                positions = [(c - (count - 1) / 2) * SPECIES_SPACING for c in range(count)]
                genus = next(r["name"] for r in records if r["id"] == parent_id)
                for c, t in enumerate(positions):
                    name = f"{genus} {EPITHETS[c]}"
                    node_id = name.replace(" ", "_")
                    records.append({"id": node_id, "name": name, "parent": parent_id, "rank": rank})
                    looks[node_id] = {**DEFAULT_TRAITS, **traits, "t": t}
                    genus_of[node_id] = parent_id
                continue
            trait = TRAITS[k]
            for c in range(count):
                value = OPTIONS[trait][(c + position) % len(OPTIONS[trait])]
                name = PHYLUM_NAMES[value] if rank == "phylum" else make_name(
                    RANK_ENDINGS[rank][len(records) % len(RANK_ENDINGS[rank])])
                records.append({"id": name, "name": name, "parent": parent_id, "rank": rank})
                next_level.append((name, {**traits, trait: value}, c))
        level = next_level
    records.append({"id": "not-living", "name": "not-living", "parent": "root", "rank": None})
    for kind in NON_LIVING:
        records.append({"id": kind, "name": kind, "parent": "not-living", "rank": None})
        looks[kind] = {"kind": kind}
    tree = SynthTree(records, looks, {}, genus_of)
    tree.held_out = _held_out(tree, unseen)
    for genus in dict.fromkeys(genus_of.values()):  # ambiguity stays within the species a model is trained on
        seen = sorted((looks[s]["t"], s) for s in _species_of(tree, genus) if s not in tree.held_out)
        for i, (_, species) in enumerate(seen):
            tree.neighbours[species] = [seen[k][0] for k in (i - 1, i + 1) if 0 <= k < len(seen)]
    return tree


def _species_of(tree: SynthTree, genus: str) -> list[str]:
    return [s for s, g in tree.genus_of.items() if g == genus]


def _held_out(tree: SynthTree, unseen: int) -> list[str]:
    """The last species of genera with three or more, one per genus, spread over the tree by a fixed order."""
    genera = list(dict.fromkeys(tree.genus_of.values()))
    eligible = [g for g in genera if len(_species_of(tree, g)) >= 3]
    if unseen < 0 or unseen > len(eligible):
        raise InputError(f"--unseen must be between 0 and {len(eligible)} at this depth (each held-out species "
                         f"leaves at least two in its genus); got {unseen}")
    order = np.random.default_rng(11).permutation(len(eligible))
    return [_species_of(tree, eligible[i])[-1] for i in sorted(order[:unseen])]


def class_sizes(num_classes: int, images: int, exponent: float = ZIPF_EXPONENT) -> list[int]:
    """Zipf class sizes ``n_r ~ r^-exponent`` adding up to ``images``, at least MIN_PER_CLASS each."""
    if images < MIN_PER_CLASS * num_classes:
        raise InputError(f"--images must be at least {MIN_PER_CLASS * num_classes} for {num_classes} classes "
                         f"({MIN_PER_CLASS} per class); got {images}")
    share = np.arange(1, num_classes + 1, dtype=np.float64) ** -exponent
    spare = images - MIN_PER_CLASS * num_classes
    exact = spare * share / share.sum()
    sizes = np.floor(exact).astype(np.int64)
    sizes[np.argsort(-(exact - sizes), kind="stable")[: spare - sizes.sum()]] += 1
    return (sizes + MIN_PER_CLASS).tolist()


def class_order(tree: SynthTree) -> list[str]:
    """Classes by decreasing size: detritus first (the largest class of real samples), the others in a fixed shuffle."""
    others = [leaf for leaf in tree.looks if leaf != "detritus" and leaf not in tree.held_out]
    return ["detritus"] + [others[i] for i in np.random.default_rng(5).permutation(len(others))]


def species_accuracy_bound(depth: int = 4, images: int = 10_000, unseen: int = 3, draws: int = 200_000,
                           seed: int = 0) -> float:
    """The best species accuracy on living images that any model can reach, knowing the genus.

    Within a genus, the species position t is the only thing that differs. A model that
    read t exactly from the pixels and knew the generating densities would still pick the
    species with the largest ``size * p(t | species)``; this is its accuracy, estimated from
    ``draws`` images drawn as the generator draws them (pixel noise makes real models worse).
    """
    tree = build_tree(depth, unseen)
    classes = class_order(tree)
    sizes = dict(zip(classes, class_sizes(len(classes), images)))
    rng = np.random.default_rng(seed)

    def density(t: np.ndarray, species: str) -> np.ndarray:
        centre, neighbours = tree.looks[species]["t"], tree.neighbours[species]
        own = np.exp(-0.5 * ((t - centre) / SPECIES_SPREAD) ** 2) / SPECIES_SPREAD
        between = sum(np.exp(-0.5 * ((t - (centre + n) / 2) / AMBIGUOUS_SPREAD) ** 2) / AMBIGUOUS_SPREAD
                      for n in neighbours) / len(neighbours)
        return (1 - AMBIGUOUS_FRACTION) * own + AMBIGUOUS_FRACTION * between

    living = [c for c in classes if c in tree.neighbours]
    total = sum(sizes[c] for c in living)
    correct = 0.0
    for species in living:
        n = max(1, round(draws * sizes[species] / total))
        t = np.where(rng.random(n) < AMBIGUOUS_FRACTION,
                     (tree.looks[species]["t"] + rng.choice(tree.neighbours[species], n)) / 2
                     + rng.normal(0, AMBIGUOUS_SPREAD, n),
                     tree.looks[species]["t"] + rng.normal(0, SPECIES_SPREAD, n))
        rivals = [s for s in living if tree.genus_of[s] == tree.genus_of[species]]
        scores = np.stack([sizes[s] * density(t, s) for s in rivals])
        correct += sizes[species] * np.mean(np.array(rivals)[scores.argmax(0)] == species)
    return correct / total
