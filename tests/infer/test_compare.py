"""``hier compare`` over evaluated runs, and the plot of their operating curves."""

import csv

import pytest

from hier.core.tables import csv_text
from hier.infer.compare import COMPARE_COLUMNS, compare
from hier.infer.evaluate import evaluate
from hier.infer.plots import plot_curves
from hier.taxo import InputError


def test_compare_reads_the_evaluations(trained, run_copy, tmp_path):
    runs_ = [run_copy("classifier"), run_copy("spheremulti")]
    with pytest.raises(InputError, match="run hier evaluate"):
        compare(runs_)
    for run in runs_:
        evaluate(run, trained.data, progress=False)
    rows, evaluations, notes = compare(runs_)
    assert [r["run"] for r in rows] == ["classifier", "spheremulti"] and notes == []
    assert [r["head"] for r in rows] == ["classifier", "spheremulti"]
    assert list(rows[0]) == ["run"] + [key for key, _ in COMPARE_COLUMNS]
    parsed = list(csv.DictReader(csv_text(rows).splitlines()))
    assert float(parsed[1]["hierarchical_f1"]) == pytest.approx(evaluations["spheremulti"]["hierarchical_f1"])
    plot_curves(evaluations, tmp_path / "both.svg")
    assert (tmp_path / "both.svg").read_text().count("<svg") == 1
    evaluate(runs_[1], trained.data, confidence=0.7, progress=False)
    assert compare(runs_)[2] == ["the runs differ in confidence: 0.7, 0.9"]
