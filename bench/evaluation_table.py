"""One line per `hier evaluate --json` file: the figures docs/results.md compares.

    python bench/evaluation_table.py OUT/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (("leaf_accuracy", "leaf acc"), ("balanced_accuracy", "bal acc"), ("hierarchical_f1", "hF1"),
           ("correct_at_confidence", "correct@C"), ("mean_depth_at_confidence", "depth@C"),
           ("genus_or_deeper_at_confidence", "genus+@C"), ("ece", "ECE"), ("operating_curve_area", "curve"))


def main() -> None:
    files = [Path(a) for a in sys.argv[1:]]
    width = max(len(f.stem) for f in files)
    print(f"{'run':{width}} " + " ".join(f"{h:>9}" for _, h in COLUMNS) + "  images  C")
    for path in files:
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError:  # still being written
            continue
        cells = [result.get(key) for key, _ in COLUMNS]
        print(f"{path.stem:{width}} " + " ".join(f"{c:9.3f}" if isinstance(c, float) else f"{'-':>9}" for c in cells)
              + f"  {result['images']:6d}  {result['confidence']:g}")


if __name__ == "__main__":
    main()
