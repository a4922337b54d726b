"""Operating-curve plots of ``hier evaluate --plot`` and ``hier compare --plot``."""

from __future__ import annotations

from pathlib import Path

from hier.core.errors import InputError
from hier.core.figures import pyplot, save_figure
from hier.core.files import check_output_file


def check_plot_path(path: Path, *, force: bool = False, inputs=()) -> None:
    """Before any work: a plot file that can be written (see ``check_output_file``)."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError("the plot file must end in .png, .svg or .pdf", path=path)
    check_output_file(path, force=force, inputs=inputs)


def plot_curves(results: dict[str, dict], path: Path) -> None:
    """Fraction correct against information recall, one line per evaluation, its operating point marked."""
    plt = pyplot()

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for label, result in results.items():
        curve = result["operating_curve"]
        line, = axes.plot(curve["information_recall"], curve["correct"],
                          label=f"{label} (area {result['operating_curve_area']:.3f})")
        axes.plot(result["information_recall_at_confidence"], result["correct_at_confidence"], "o",
                  color=line.get_color())
    axes.set_xlabel("information recall  I(lca) / I(true)")
    axes.set_ylabel("fraction correct")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    axes.set_title("operating curve (dot: the chosen confidence)")
    save_figure(figure, path, bbox_inches="tight")
