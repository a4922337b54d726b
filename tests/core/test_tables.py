"""Tables: tab or comma, EcoTaxa's type-tag line, ragged rows named by line."""

from __future__ import annotations

import pytest

from hier.core.errors import InputError
from hier.core.tables import column, csv_text, read_table


def test_tab_and_comma_tables(tmp_path):
    (tmp_path / "a.tsv").write_text("path\tlabel\nx.png\tcat\n\ny.png\tdog\n")
    assert read_table(tmp_path / "a.tsv") == (["path", "label"], [["x.png", "cat"], ["y.png", "dog"]])
    (tmp_path / "a.csv").write_text('path,label\n"x, 1.png",cat\n')
    assert read_table(tmp_path / "a.csv") == (["path", "label"], [["x, 1.png", "cat"]])


def test_ecotaxa_type_line_is_left_out_only_as_the_second_line(tmp_path):
    (tmp_path / "e.tsv").write_text("img_file_name\tobject_x\n[t]\t[f]\na.png\t1\n[t]\t[f]\n")
    header, rows = read_table(tmp_path / "e.tsv")
    assert rows == [["a.png", "1"], ["[t]", "[f]"]]


def test_ragged_row_names_its_line(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match="bad.csv: line 3: 1 fields where the header has 2"):
        read_table(tmp_path / "bad.csv")


def test_column_suggests_close_names(tmp_path):
    with pytest.raises(InputError, match="did you mean 'label'"):
        column(["path", "label"], "lable", tmp_path / "t.csv")
    assert column(["path", "label"], "label", None) == 1


def test_csv_text_round_trips(tmp_path):
    (tmp_path / "t.csv").write_text(csv_text([{"a": 1, "b": "x,y"}, {"a": 2, "b": ""}]))
    assert read_table(tmp_path / "t.csv") == (["a", "b"], [["1", "x,y"], ["2", ""]])
