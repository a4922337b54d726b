"""``calibration.json``: what ``hier calibrate`` stored in a run, read back and checked field by field."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hier.core.errors import InputError
from hier.core.files import atomic_write_text

from .layout import CALIBRATION, LAST, WEIGHTS

FORMAT = "hier-calibration"
GUARANTEES = ("marginal", "per-class")  # docs/confidence.md says what each promises


def weights_digest(run_dir: Path) -> str:
    """sha256 of the weights a run predicts with (final weights, else the last checkpoint)."""
    path = run_dir / WEIGHTS if (run_dir / WEIGHTS).is_file() else run_dir / LAST
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Calibration:
    temperature: float
    delta: float
    n: int  # calibration images scored
    table: list[dict]
    weights_sha256: str
    unreadable: int = 0
    dataset: str = ""
    split: str = ""
    loss_before: float | None = None  # node BCE at T = 1
    loss_after: float | None = None  # node BCE at T
    temperature_split: str = ""  # the images the temperature was fitted on (disjoint from ``split``)
    temperature_n: int = 0
    guarantee: str = "marginal"  # per-class: each entry also lists its groups of classes and those uncertified
    format: str = field(default=FORMAT)
    version: int = 1

    def save(self, run_dir: Path) -> None:
        atomic_write_text(Path(run_dir) / CALIBRATION, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> Calibration | None:
        path = Path(run_dir) / CALIBRATION
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format') if isinstance(data, dict) else None!r}, "
                                 f"expected {FORMAT!r}")
            calibration = cls(**data)
            calibration.check()
            return calibration
        except (ValueError, TypeError, RecursionError) as e:
            raise InputError(f"not a readable calibration file ({e}); run hier calibrate again", path=path) from None

    def check(self) -> None:
        """Every field predict and evaluate rely on, checked: a hand-edited or damaged file is refused."""

        def number(value, low: float, high: float, what: str, *, open_low: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or value > high or (open_low and value == low):
                raise ValueError(f"{what} is {value!r}, expected a number in {'(' if open_low else '['}{low:g}, "
                                 f"{high:g}]")

        number(self.temperature, 0, math.inf, "temperature", open_low=True)
        number(self.delta, 0, 1, "delta", open_low=True)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n is {self.n!r}, expected a positive count of images")
        if not isinstance(self.weights_sha256, str) or len(self.weights_sha256) != 64:
            raise ValueError("weights_sha256 is not a sha256 digest")
        if not isinstance(self.table, list) or not self.table:
            raise ValueError("the confidence table is empty")
        if self.guarantee not in GUARANTEES:
            raise ValueError(f"guarantee is {self.guarantee!r}, expected one of {', '.join(GUARANTEES)}")
        previous = 0.0
        for k, entry in enumerate(self.table):
            if not isinstance(entry, dict) or "level" not in entry or "threshold" not in entry:
                raise ValueError(f"table entry {k} lacks a level or a threshold")
            if self.guarantee == "per-class" and not (
                    isinstance(entry.get("groups"), list) and isinstance(entry.get("uncertified"), list)
                    and all(isinstance(g, dict) and isinstance(g.get("classes"), list) for g in entry["groups"])):
                raise ValueError(f"table entry {k} lacks its groups of classes (a per-class calibration)")
            number(entry["level"], previous, 1, f"table entry {k}'s level", open_low=True)
            if entry["threshold"] is not None:
                number(entry["threshold"], 0, 1, f"table entry {k}'s threshold")
            previous = entry["level"]

    def entry(self, confidence: float) -> dict | None:
        """The entry of the smallest level >= confidence (a conservative reading); None above the table."""
        return next((e for e in self.table if e["level"] >= confidence - 1e-9), None)

    def coverage(self, entry: dict) -> str:
        """What the entry promises, in a line: on the calibration mix, or per class (and for how many)."""
        if self.guarantee == "marginal":
            return f"on average over the mix of classes of the {self.n} {self.split} images"
        groups = entry["groups"]
        alone = sum(1 for g in groups if g["classes"] == [g["node"]])
        pooled = sum(len(g["classes"]) for g in groups) - alone
        return (f"per class: {alone} classes alone, {pooled} in {len(groups) - alone} groups of relatives, "
                f"{len(entry['uncertified'])} uncertified")

    @property
    def highest_certified(self) -> float | None:
        return max((e["level"] for e in self.table if e["threshold"] is not None), default=None)
