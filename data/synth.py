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

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hier.core.errors import InputError
from hier.taxo import ecotaxa
from hier.core.figures import pyplot, save_figure
from hier.core.files import atomic_folder, atomic_write_text, check_replaceable
from hier.taxo.taxonomy import tree_from_parents

from hier.data.readers import Sample
from hier.data.splits import stratified_split

AMBIGUOUS_FRACTION = 0.2  # of each species' images, drawn halfway between it and a sibling
SPECIES_SPACING = 0.5     # distance between sibling species on the species axis t
SPECIES_SPREAD = 0.12     # sd of t around its species (neighbours are 2.1 sd from the midpoint)
AMBIGUOUS_SPREAD = 0.03   # sd of t around the midpoint, for the ambiguous images
ASPECT_PER_T = 0.3        # body aspect ratio multiplied by exp(0.3 t)
DETAIL_PER_T = 0.45       # appendage length and texture density multiplied by exp(0.45 t)
ZIPF_EXPONENT = 1.0
MIN_PER_CLASS = 3         # one image per split at least
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SUPERSAMPLE = 2           # drawn at twice the size, then averaged down: smooth edges
FORMATS = {"png": ".png", "jpg": ".jpg"}

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


# ---- drawing ---------------------------------------------------------------------------------


def _outline(shape: str, aspect: float, n: int = 72) -> np.ndarray:
    """Body outline in body units (radius 1 across, long axis along x)."""
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if shape == "disc":
        return np.stack([aspect * np.cos(phi), np.sin(phi)], 1)
    if shape == "triangle":
        rho = 1 + 0.28 * np.cos(3 * phi)
        return np.stack([aspect * rho * np.cos(phi), rho * np.sin(phi)], 1)
    if shape == "rod":  # a capsule: straight sides, round ends
        half = max(aspect - 1.0, 0.0)
        x, y = np.cos(phi), np.sin(phi)
        return np.stack([x + np.sign(x) * half, y], 1)
    raise ValueError(shape)


def _appendages(kind: str, outline: np.ndarray, detail: float, rng) -> list[tuple[np.ndarray, float]]:
    """Polylines (points, width) in body units."""
    if kind == "spines":
        picks = np.linspace(0, len(outline), 10, endpoint=False).astype(int)
        lines = []
        for p in outline[picks]:
            direction = p / np.linalg.norm(p)
            length = 0.55 * detail * rng.uniform(0.9, 1.1)
            lines.append((np.stack([p, p + length * direction]), 0.09))
        return lines
    end = outline[:, 0].max()
    if kind == "setae":  # two curved bristles at each pole
        lines = []
        for sign in (1, -1):
            for side in (1, -1):
                s = np.linspace(0, 1.9 * detail, 10)
                angle = np.radians(40) * side + 0.25 * side * s / (1.9 * detail)
                x = sign * (end - 0.05 + s * np.cos(angle))
                y = s * np.sin(angle)
                lines.append((np.stack([x, y], 1), 0.05))
        return lines
    if kind == "flagellum":  # one long wavy tail
        s = np.linspace(0, 2.4 * detail, 40)
        return [(np.stack([end - 0.05 + s, 0.16 * np.sin(2 * np.pi * s / 0.8)], 1), 0.07)]
    return []


def _texture(kind: str, aspect: float, detail: float, outline: np.ndarray, rng) -> tuple[list, list]:
    """Dots (centre, radius) and polylines (points, width) inside the body, in body units."""
    if kind == "dots":
        step = 0.42 / detail
        xs = np.arange(-aspect, aspect + step, step)
        ys = np.arange(-1, 1 + step, step)
        centres = [(x + (step / 2 if j % 2 else 0), y) for j, y in enumerate(ys) for x in xs]
        return [(np.array(c) + rng.normal(0, 0.03, 2), 0.08) for c in centres], []
    if kind == "stripes":
        step = 0.36 / detail
        return [], [(np.array([[x, -1.5], [x, 1.5]]), 0.07) for x in np.arange(-aspect, aspect + step, step)]
    if kind == "rings":
        step = 0.3 / detail
        scales = np.arange(1 - step, 0.12, -step)
        return [], [(np.vstack([outline * s, outline[:1] * s]), 0.05) for s in scales]
    return [], []


def _inner(kind: str, aspect: float) -> list[tuple[np.ndarray, float, int]]:
    """Inner bodies: (centre, radius, +1 lighter / -1 darker than the body)."""
    if kind == "nucleus":
        return [(np.zeros(2), 0.3, -1)]
    if kind == "two_nuclei":
        return [(np.array([0.45 * aspect, 0]), 0.22, -1), (np.array([-0.45 * aspect, 0]), 0.22, -1)]
    if kind == "vacuoles":
        angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)
        return [(np.array([0.55 * aspect * np.cos(a), 0.55 * np.sin(a)]), 0.14, 1) for a in angles]
    return []


def _non_living(kind: str, rng) -> tuple[np.ndarray, list, list]:
    """Outline, blotches (centre, radius, tone shift) and fragments for detritus and bubbles."""
    phi = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    if kind == "bubble":
        return np.stack([np.cos(phi), np.sin(phi)], 1), [(np.zeros(2), rng.uniform(0.12, 0.25), 200)], []
    rho = np.ones_like(phi)
    for k in range(2, 8):  # a random lumpy outline, rougher at higher frequencies
        rho += rng.normal(0, 0.3 / k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    rho = np.clip(rho, 0.35, None) * np.exp(rng.normal(0, 0.08, phi.size))
    outline = np.stack([rng.uniform(1, 2) * rho * np.cos(phi), rho * np.sin(phi)], 1)
    blotches = [(rng.uniform(-0.7, 0.7, 2), rng.uniform(0.05, 0.25), rng.uniform(-50, 30)) for _ in range(12)]
    fragments = [outline[::6] * rng.uniform(0.15, 0.3) + rng.uniform(-2.2, 2.2, 2) for _ in range(rng.integers(0, 4))]
    return outline, blotches, fragments


def draw_object(look: dict, size: int, rng, *, ambiguous: bool = False) -> Image.Image:
    """One grayscale image ('L') of a class, cropped to the object with a margin, at most ``size`` a side."""
    canvas_size = size * SUPERSAMPLE
    background = rng.uniform(175, 215)
    tone = background - rng.uniform(60, 110)
    lines, texture, blobs, fragments = [], [], [], []
    if "kind" in look:
        outline, blotches, fragments = _non_living(look["kind"], rng)
        if look["kind"] == "bubble":
            tone = rng.uniform(20, 60)
        blobs = [(c, r, tone + shift) for c, r, shift in blotches]
        wall = 0.04
    else:
        t = look["t"]
        if ambiguous:
            t = (t + rng.choice(look["neighbours"])) / 2 + rng.normal(0, AMBIGUOUS_SPREAD)
        else:
            t += rng.normal(0, SPECIES_SPREAD)
        base_aspect = {"disc": 1.4, "rod": 3.2, "triangle": 1.3}[look["shape"]]
        aspect, detail = base_aspect * math.exp(ASPECT_PER_T * t), math.exp(DETAIL_PER_T * t)
        outline = _outline(look["shape"], aspect)
        lines = _appendages(look["appendage"], outline, detail, rng)
        texture_dots, texture_lines = _texture(look["texture"], aspect, detail, outline, rng)
        texture_tone = tone - rng.uniform(30, 50)
        texture = [(c, r, texture_tone) for c, r in texture_dots] + [(p, w, texture_tone) for p, w in texture_lines]
        blobs = [(c, r, tone + 55 * sign) for c, r, sign in _inner(look["inner"], aspect)]
        wall = {"thin": 0.05, "thick": 0.17}[look["wall"]]

    # body units -> canvas pixels: random rotation, and a random scale that always fits the canvas
    points = [outline] + [line for line, _ in lines] + list(fragments)
    extent = max(np.linalg.norm(p, axis=1).max() for p in points)  # the same at any rotation
    scale = (canvas_size / 2 - 2 * SUPERSAMPLE) / extent * rng.uniform(0.55, 1.0)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * scale
    centre = canvas_size / 2

    def place(p: np.ndarray) -> np.ndarray:
        return np.atleast_2d(p) @ rotation.T + centre

    def flat(p: np.ndarray) -> list[float]:  # the x0, y0, x1, y1, ... list PIL draws from
        return place(p).ravel().tolist()

    def grey(value: float) -> int:
        return int(min(max(value, 0), 255))

    def width(w: float) -> int:
        return max(1, round(w * scale))

    canvas = Image.new("L", (canvas_size, canvas_size), int(background))
    draw = ImageDraw.Draw(canvas)
    for line, w in lines:
        draw.line(flat(line), fill=grey(tone - 15), width=width(w), joint="curve")
    for fragment in fragments:
        draw.polygon(flat(fragment), fill=grey(tone))
    body = Image.new("L", canvas.size, grey(tone))
    body_draw = ImageDraw.Draw(body)
    for item, w, shade in texture:  # dots (centre, radius) or lines (points, width)
        if item.ndim == 1:
            (x, y), r = flat(item), w * scale
            body_draw.ellipse([x - r, y - r, x + r, y + r], fill=grey(shade))
        else:
            body_draw.line(flat(item), fill=grey(shade), width=width(w))
    for c, r, shade in blobs:
        (x, y), r = flat(c), r * scale
        body_draw.ellipse([x - r, y - r, x + r, y + r], fill=grey(shade))
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).polygon(flat(outline), fill=255)
    canvas.paste(body, (0, 0), mask)
    draw.line(flat(np.vstack([outline, outline[:1]])), fill=grey(tone - 40), width=width(wall), joint="curve")

    image = canvas.resize((size, size), Image.BOX)
    blur = rng.uniform(0, 1.0)
    if blur > 0.2:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(1, 8), (size, size))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    # crop to the object (as a vignette is cropped), with a random margin: sizes and aspects vary
    all_points = np.vstack([place(p) for p in points]) / SUPERSAMPLE
    margin = rng.uniform(1, 0.08 * size + 2)
    left, top = np.floor(all_points.min(0) - margin).clip(0, size - 1).astype(int)
    right, bottom = np.ceil(all_points.max(0) + margin).clip(1, size).astype(int)
    return image.crop((int(left), int(top), int(max(right, left + 1)), int(max(bottom, top + 1))))


# ---- writing a dataset -----------------------------------------------------------------------


@dataclass
class SynthResult:
    out_dir: Path
    split_counts: dict[str, int]
    unseen_images: int
    num_classes: int
    held_out: list[str]
    ambiguous_images: int
    seconds: float


_WORKER: dict = {}


def _init_worker(looks: dict, size: int, seed: int, root: str) -> None:
    _WORKER.update(looks=looks, size=size, seed=seed, root=root)


def _init_pool_worker(*args) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool and cleans up
    _init_worker(*args)


def _render(jobs: list[tuple[int, str, str, bool]]) -> int:
    """Draw and write images; each one's generator depends only on (seed, index)."""
    w = _WORKER
    for index, label, relative, ambiguous in jobs:
        rng = np.random.default_rng([w["seed"], index])
        image = draw_object(w["looks"][label], w["size"], rng, ambiguous=ambiguous)
        buffer = io.BytesIO()
        if relative.endswith(".png"):
            image.save(buffer, "PNG", compress_level=3)
        else:
            image.save(buffer, "JPEG", quality=92)
        Path(w["root"], relative).write_bytes(buffer.getvalue())  # inside the staging folder, renamed at the end
    return len(jobs)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder", path=out_dir)
    if not out_dir.parent.is_dir():
        raise InputError("the parent folder does not exist", path=out_dir.parent)


def synthesize(out_dir: str | os.PathLike, *, seed: int = 0, images: int = 10_000, size: int = 64, unseen: int = 3,
               depth: int = 4, image_format: str = "png", force: bool = False, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Write the benchmark to ``out_dir`` (layout: docs/data.md); ``progress(done, total)`` follows the writing.

    ``images`` counts the train/val/test images; each held-out species adds the mean class
    size to ``unseen/``. Everything is written to a hidden staging folder beside ``out_dir``
    and renamed at the end, so an interrupted run leaves no dataset that looks complete.
    """
    started = time.perf_counter()
    out_dir = Path(os.path.abspath(out_dir))
    _check_out_dir(out_dir)
    check_replaceable(out_dir, force=force)
    if image_format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)} (got {image_format!r})")
    if size < 16:
        raise InputError(f"--size must be at least 16 pixels (got {size})")
    tree = build_tree(depth, unseen)
    taxonomy = tree_from_parents([r for r in tree.records if r["id"] not in tree.held_out], source="synthetic")
    classes = class_order(tree)
    sizes = class_sizes(len(classes), images)
    suffix = FORMATS[image_format]

    rng = np.random.default_rng(seed)
    samples, ambiguous = [], set()
    for label, count in zip(classes, sizes):
        first = len(samples)
        samples += [Sample(Path(f"img_{first + k:06d}{suffix}"), label) for k in range(count)]
        if tree.neighbours.get(label):
            chosen = rng.permutation(count)[: round(AMBIGUOUS_FRACTION * count)]
            ambiguous.update(samples[first + k].path.name for k in chosen)
    splits = stratified_split(samples, SPLIT_FRACTIONS, seed=seed)
    rows = [(split, s) for split, members in splits.items() for s in members]
    rows.sort(key=lambda row: row[1].path.name)

    per_unseen = max(MIN_PER_CLASS, round(images / len(classes)))
    unseen_jobs = []
    for species in tree.held_out:
        genus = tree.genus_of[species]
        for _ in range(per_unseen):
            index = images + len(unseen_jobs)
            unseen_jobs.append((index, species, f"unseen/{genus}/{species}_{index:06d}{suffix}", False))

    jobs = [(int(s.path.stem.split("_")[1]), s.label, f"{split}/{s.label}/{s.path.name}", s.path.name in ambiguous)
            for split, s in rows] + unseen_jobs
    looks = {label: {**look, "neighbours": tree.neighbours.get(label, [])} for label, look in tree.looks.items()}

    with atomic_folder(out_dir, replace=True) as staging:
        for folder in {str(Path(relative).parent) for _, _, relative, _ in jobs}:
            (staging / folder).mkdir(parents=True, exist_ok=True)
        _render_all(jobs, looks, size, seed, staging, workers, progress)
        taxonomy.save(staging / "taxonomy.json")
        _write_tables(staging, tree, rows, ambiguous)
    return SynthResult(out_dir, {name: len(members) for name, members in splits.items()}, len(unseen_jobs),
                       len(classes), list(tree.held_out), len(ambiguous), time.perf_counter() - started)


def _render_all(jobs, looks, size, seed, staging: Path, workers: int | None, progress) -> None:
    chunk = 64
    batches = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = workers or min(cores, max(1, len(jobs) // 500))
    done = 0
    if workers == 1:
        _init_worker(looks, size, seed, str(staging))
        for batch in batches:
            done += _render(batch)
            if progress:
                progress(done, len(jobs))
        return
    # forkserver: workers start clean, whatever threads the calling process runs
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with context.Pool(workers, initializer=_init_pool_worker, initargs=(looks, size, seed, str(staging))) as pool:
        for count in pool.imap_unordered(_render, batches):
            done += count
            if progress:
                progress(done, len(jobs))


def _write_tables(root: Path, tree: SynthTree, rows: list[tuple[str, Sample]], ambiguous: set[str]) -> None:
    """``lineage.csv`` and ``ecotaxa_export.tsv``: one row per train/val/test image, same order."""
    names = {r["id"]: r["name"] for r in tree.records}
    lineages = {label: ">".join(tree.lineage_names(label)) for label in {s.label for _, s in rows}}

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["path", "label", "lineage", "split", "ambiguous"])
    for split, s in rows:
        writer.writerow([f"{split}/{s.label}/{s.path.name}", s.label, lineages[s.label], split,
                         int(s.path.name in ambiguous)])
    atomic_write_text(root / "lineage.csv", table.getvalue())

    export = io.StringIO()
    writer = csv.writer(export, delimiter="\t", lineterminator="\n")
    ecotaxa.write_header(writer, ["object_id", "img_file_name", "object_annotation_status",
                                  "object_annotation_category", "object_annotation_hierarchy", "object_set",
                                  "object_ambiguous"], numbers=["object_ambiguous"])
    for split, s in rows:
        writer.writerow([s.path.stem, f"{split}/{s.label}/{s.path.name}", "validated", names[s.label],
                         lineages[s.label], split, int(s.path.name in ambiguous)])
    atomic_write_text(root / "ecotaxa_export.tsv", export.getvalue())


# ---- the picture of the benchmark ----------------------------------------------------------------


def sample_grid(path: str | os.PathLike, *, depth: int = 4, size: int = 96, seed: int = 0, per_node: int = 2) -> None:
    """A PNG with one row per rank: the phyla (and the non-living classes), the classes of one
    phylum, the genera of one class, the species of one genus, and ambiguous images of those
    species. Each panel is titled with its node's name."""
    plt = pyplot()

    tree = build_tree(depth)
    children: dict[str, list[str]] = {}
    for r in tree.records:
        children.setdefault(r["parent"], []).append(r["id"])
    species_genus = max(dict.fromkeys(tree.genus_of.values()), key=lambda g: len(children[g]))
    chain = [species_genus]  # the lineage of the genus with the most species, to show each rank's siblings
    parent_of = {r["id"]: r["parent"] for r in tree.records}
    while parent_of[chain[-1]] != "living":
        chain.append(parent_of[chain[-1]])
    chain = chain[::-1]  # phylum ... genus
    ranks = RANKS[depth]
    rows = [(f"{ranks[0]}\n({TRAITS[0]})", children["living"] + list(NON_LIVING), False)]
    for k, node in enumerate(chain):
        trait = TRAITS[k + 1] if k + 1 < depth - 1 else "small shifts"
        rows.append((f"{ranks[k + 1]}\n({trait})", children[node], False))
    rows.append(("species\n(ambiguous)", children[species_genus], True))

    def leaf_under(node: str) -> str:
        while node in children:
            node = children[node][0]
        return node

    names = {r["id"]: r["name"] for r in tree.records}
    columns = max(len(nodes) * (1 if k == 0 else per_node) for k, (_, nodes, _) in enumerate(rows))
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.35 * columns + 1.2, 1.6 * len(rows)), squeeze=False)
    rng = np.random.default_rng(seed)
    for r, (title, nodes, ambiguous) in enumerate(rows):
        repeat = 1 if r == 0 else per_node
        cells = [node for node in nodes for _ in range(repeat)]
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(cells):
                continue
            look = tree.looks[leaf_under(cells[c])]
            look = {**look, "neighbours": tree.neighbours.get(leaf_under(cells[c]), [])}
            image = draw_object(look, size, rng, ambiguous=ambiguous)
            square = Image.new("L", (size, size), int(np.median(np.asarray(image)[0])))
            square.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
            ax.imshow(square, cmap="gray", vmin=0, vmax=255)
            ax.set_title(names[cells[c]], fontsize=7)
        axes[r][0].text(-0.15, 0.5, title, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=9)
    figure.subplots_adjust(left=0.1, right=0.99, top=0.95, bottom=0.02, wspace=0.08, hspace=0.35)
    save_figure(figure, path, dpi=110)
