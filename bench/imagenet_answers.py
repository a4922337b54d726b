"""The figure of docs/imagenet.md: the built-in run's answers for one photo at four confidences.

    python bench/imagenet_answers.py [IMAGE] [-o docs/img/imagenet_answers.png]

Without IMAGE: scikit-image's ``chelsea`` (a cat). Prints the answers, one line per confidence.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from hier.infer.explain import answer_path
from hier.runs.choose import resolve_run

LEVELS = [0.3, 0.6, 0.9, 0.99]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).parents[1] / "docs/img/imagenet_answers.png")
    args = parser.parse_args()
    image = args.image
    if image is None:
        from skimage import data

        image = Path(tempfile.mkdtemp()) / "chelsea.png"
        Image.fromarray(data.chelsea()).save(image)
    result = answer_path(resolve_run("imagenet-lite0"), image, LEVELS, use_calibration=False, plot=args.out,
                         force=True)
    for level, (node, p) in result.answers.items():
        print(f"confidence {level:<5g} -> {result.names[result.ids.index(node)]} ({node}, p = {p:.3f})")
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
