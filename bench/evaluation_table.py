"""One line per `hier evaluate --json` file: the figures docs/results.md compares.

    python bench/evaluation_table.py OUT/*.json            # a line per file
    python bench/evaluation_table.py --seeds OUT/*.json    # files named NAME-sSEED[...].json: mean and spread per NAME

With ``--seeds`` each cell is the mean over seeds and, after the slash, half the range (max - min) / 2.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = (("leaf_accuracy", "leaf acc"), ("balanced_accuracy", "bal acc"), ("hierarchical_f1", "hF1"),
           ("correct_at_confidence", "correct@C"), ("mean_depth_at_confidence", "depth@C"),
           ("genus_or_deeper_at_confidence", "genus+@C"), ("ece", "ECE"), ("operating_curve_area", "curve"))
SEED = re.compile(r"-s(\d+)")


def read(path: Path) -> dict | None:
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:  # still being written
        return None
    return result if isinstance(result, dict) and "images" in result else None  # not an evaluation


def main() -> None:
    seeds = "--seeds" in sys.argv
    files = [Path(a) for a in sys.argv[1:] if a != "--seeds"]
    results = {f: r for f in files if (r := read(f)) is not None}
    groups: dict[str, list[dict]] = defaultdict(list)
    for path, result in results.items():
        groups[SEED.sub("", path.stem) if seeds else path.stem].append(result)
    width, cell = max(len(name) for name in groups), 13 if seeds else 9
    print(f"{'run':{width}} " + " ".join(f"{h:>{cell}}" for _, h in COLUMNS)
          + ("  seeds" if seeds else "  images  C"))
    for name, rows in groups.items():
        cells = []
        for key, _ in COLUMNS:
            values = [r[key] for r in rows if isinstance(r.get(key), float)]
            if not values:
                cells.append(f"{'-':>{cell}}")
            elif seeds:
                cells.append(f"{sum(values) / len(values):7.3f}/{(max(values) - min(values)) / 2:.3f}")
            else:
                cells.append(f"{values[0]:9.3f}")
        tail = f"  {len(rows):5d}" if seeds else f"  {rows[0]['images']:6d}  {rows[0]['confidence']:g}"
        print(f"{name:{width}} " + " ".join(cells) + tail)


if __name__ == "__main__":
    main()
