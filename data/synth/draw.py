"""Drawing one image of a class: body, appendages, texture and inner bodies, then rotation, blur, noise and crop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .taxonomy import AMBIGUOUS_SPREAD, SPECIES_SPREAD

ASPECT_PER_T = 0.3        # body aspect ratio multiplied by exp(0.3 t)
DETAIL_PER_T = 0.45       # appendage length and texture density multiplied by exp(0.45 t)
SUPERSAMPLE = 2           # drawn at twice the size, then averaged down: smooth edges
BASE_ASPECT = {"disc": 1.4, "rod": 3.2, "triangle": 1.3}
WALL = {"thin": 0.05, "thick": 0.17}


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


@dataclass
class _Sketch:
    """What one image shows, in body units, with its grey levels."""

    tone: float                                      # the body
    outline: np.ndarray
    wall: float                                      # outline width
    lines: list = field(default_factory=list)        # appendages: (points, width)
    texture: list = field(default_factory=list)      # dots (centre, radius, grey) or lines (points, width, grey)
    blobs: list = field(default_factory=list)        # inner bodies: (centre, radius, grey)
    fragments: list = field(default_factory=list)    # polygons beside the body

    @property
    def points(self) -> list[np.ndarray]:
        return [self.outline] + [line for line, _ in self.lines] + list(self.fragments)


def _non_living(kind: str, tone: float, rng) -> _Sketch:
    """A bubble (a dark disc with a bright centre) or detritus (a lumpy blob with blotches and fragments)."""
    phi = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    if kind == "bubble":
        radius = rng.uniform(0.12, 0.25)
        tone = rng.uniform(20, 60)
        return _Sketch(tone, np.stack([np.cos(phi), np.sin(phi)], 1), 0.04, blobs=[(np.zeros(2), radius, tone + 200)])
    rho = np.ones_like(phi)
    for k in range(2, 8):  # a random lumpy outline, rougher at higher frequencies
        rho += rng.normal(0, 0.3 / k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    rho = np.clip(rho, 0.35, None) * np.exp(rng.normal(0, 0.08, phi.size))
    outline = np.stack([rng.uniform(1, 2) * rho * np.cos(phi), rho * np.sin(phi)], 1)
    blotches = [(rng.uniform(-0.7, 0.7, 2), rng.uniform(0.05, 0.25), rng.uniform(-50, 30)) for _ in range(12)]
    fragments = [outline[::6] * rng.uniform(0.15, 0.3) + rng.uniform(-2.2, 2.2, 2) for _ in range(rng.integers(0, 4))]
    return _Sketch(tone, outline, 0.04, blobs=[(c, r, tone + shift) for c, r, shift in blotches], fragments=fragments)


def _living(look: dict, tone: float, rng, ambiguous: bool) -> _Sketch:
    """An organism at its own position t on the species axis (halfway to a neighbour when ambiguous)."""
    t = look["t"]
    if ambiguous:
        t = (t + rng.choice(look["neighbours"])) / 2 + rng.normal(0, AMBIGUOUS_SPREAD)
    else:
        t += rng.normal(0, SPECIES_SPREAD)
    aspect, detail = BASE_ASPECT[look["shape"]] * math.exp(ASPECT_PER_T * t), math.exp(DETAIL_PER_T * t)
    outline = _outline(look["shape"], aspect)
    lines = _appendages(look["appendage"], outline, detail, rng)
    texture_dots, texture_lines = _texture(look["texture"], aspect, detail, outline, rng)
    texture_tone = tone - rng.uniform(30, 50)
    texture = [(c, r, texture_tone) for c, r in texture_dots] + [(p, w, texture_tone) for p, w in texture_lines]
    blobs = [(c, r, tone + 55 * sign) for c, r, sign in _inner(look["inner"], aspect)]
    return _Sketch(tone, outline, WALL[look["wall"]], lines, texture, blobs)


class _Pen:
    """Body units to canvas pixels: a random rotation, and a random scale that always fits the canvas."""

    def __init__(self, sketch: _Sketch, canvas_size: int, rng):
        extent = max(np.linalg.norm(p, axis=1).max() for p in sketch.points)  # the same at any rotation
        self.size = canvas_size
        self.scale = (canvas_size / 2 - 2 * SUPERSAMPLE) / extent * rng.uniform(0.55, 1.0)
        angle = rng.uniform(0, 2 * np.pi)
        self.rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * self.scale

    def place(self, p: np.ndarray) -> np.ndarray:
        return np.atleast_2d(p) @ self.rotation.T + self.size / 2

    def flat(self, p: np.ndarray) -> list[float]:  # the x0, y0, x1, y1, ... list PIL draws from
        return self.place(p).ravel().tolist()

    def width(self, w: float) -> int:
        return max(1, round(w * self.scale))

    def disc(self, draw: ImageDraw.ImageDraw, centre: np.ndarray, radius: float, shade: float) -> None:
        (x, y), r = self.flat(centre), radius * self.scale
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_grey(shade))


def _grey(value: float) -> int:
    return int(min(max(value, 0), 255))


def _paint(sketch: _Sketch, pen: _Pen, background: float) -> Image.Image:
    """The sketch on a canvas of ``pen.size``: appendages and fragments, the textured body, its wall."""
    canvas = Image.new("L", (pen.size, pen.size), int(background))
    draw = ImageDraw.Draw(canvas)
    for line, w in sketch.lines:
        draw.line(pen.flat(line), fill=_grey(sketch.tone - 15), width=pen.width(w), joint="curve")
    for fragment in sketch.fragments:
        draw.polygon(pen.flat(fragment), fill=_grey(sketch.tone))
    body = Image.new("L", canvas.size, _grey(sketch.tone))
    body_draw = ImageDraw.Draw(body)
    for item, w, shade in sketch.texture:
        if item.ndim == 1:
            pen.disc(body_draw, item, w, shade)
        else:
            body_draw.line(pen.flat(item), fill=_grey(shade), width=pen.width(w))
    for centre, radius, shade in sketch.blobs:
        pen.disc(body_draw, centre, radius, shade)
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).polygon(pen.flat(sketch.outline), fill=255)
    canvas.paste(body, (0, 0), mask)
    outline = np.vstack([sketch.outline, sketch.outline[:1]])
    draw.line(pen.flat(outline), fill=_grey(sketch.tone - 40), width=pen.width(sketch.wall), joint="curve")
    return canvas


def _degrade(canvas: Image.Image, size: int, rng) -> Image.Image:
    """Averaged down to ``size``, then a random blur and noise."""
    image = canvas.resize((size, size), Image.BOX)
    blur = rng.uniform(0, 1.0)
    if blur > 0.2:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(1, 8), (size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _crop(image: Image.Image, sketch: _Sketch, pen: _Pen, rng) -> Image.Image:
    """Cropped to the object (as a vignette is cropped), with a random margin: sizes and aspects vary."""
    size = image.width
    all_points = np.vstack([pen.place(p) for p in sketch.points]) / SUPERSAMPLE
    margin = rng.uniform(1, 0.08 * size + 2)
    left, top = np.floor(all_points.min(0) - margin).clip(0, size - 1).astype(int)
    right, bottom = np.ceil(all_points.max(0) + margin).clip(1, size).astype(int)
    return image.crop((int(left), int(top), int(max(right, left + 1)), int(max(bottom, top + 1))))


def draw_object(look: dict, size: int, rng, *, ambiguous: bool = False) -> Image.Image:
    """One grayscale image ('L') of a class, cropped to the object with a margin, at most ``size`` a side."""
    background = rng.uniform(175, 215)
    tone = background - rng.uniform(60, 110)
    sketch = _non_living(look["kind"], tone, rng) if "kind" in look else _living(look, tone, rng, ambiguous)
    pen = _Pen(sketch, size * SUPERSAMPLE, rng)
    return _crop(_degrade(_paint(sketch, pen, background), size, rng), sketch, pen, rng)
