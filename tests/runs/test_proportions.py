"""A file of class proportions: CSV or JSON, by id or name; every problem one line naming the file and place."""

from __future__ import annotations

import pytest

from hier.runs.proportions import leaf_proportions, read_proportions
from hier.taxo import InputError, Taxonomy

R, A, A1, A2, B = range(5)


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_and_json_name_classes_as_dataset_labels_do(tmp_path):
    taxonomy = Taxonomy([{"id": i, "name": n, "parent": p} for i, n, p in
                         [("r", "root", None), ("a", "A", "r"), ("1", "Alpha", "a"), ("2", "Beta", "a"),
                          ("b", "Gamma", "r")]])
    csv = write(tmp_path, "mix.tsv", "taxon\tcount\nalpha\t30\nA>Beta\t10\nGamma\t0\n")  # as dataset labels match
    assert read_proportions(csv, taxonomy) == {A1: 30.0, A2: 10.0, B: 0.0}
    assert read_proportions(write(tmp_path, "mix.json", '{"Alpha": 1, "2": 3}'), taxonomy) == {A1: 1.0, A2: 3.0}


@pytest.mark.parametrize("name, text, message", [
    ("p.csv", "class,p\na1,1\nzz,2\n", "p.csv: line 3: 'zz' is not a node of the run's taxonomy"),
    ("p.csv", "class,p\na1,1\na1,2\n", "p.csv: line 3: 'a1' is given twice"),
    ("p.csv", "class,p\na1,lots\n", "p.csv: line 2: the proportion of 'a1' must be a number, got 'lots'"),
    ("p.csv", "class,p\na1,-1\n", "p.csv: line 2: the proportion of 'a1' must be a number, zero or more"),
    ("p.csv", "class,p\na1,nan\n", "p.csv: line 2: the proportion of 'a1' must be a number, zero or more"),
    ("p.csv", "class\na1\n", "p.csv: line 1: expected two columns, the class and its proportion, got 1"),
    ("p.csv", "class,p\na1,0\n", "p.csv: no class has a proportion above zero"),
    ("p.json", '["a1"]', "p.json: expected a JSON object of class: proportion"),
    ("p.json", '{"a1": "x"}', "p.json: key 'a1': the proportion of 'a1' must be a number"),
    ("p.json", '{"a1": 1', "p.json: line 1: not valid JSON"),
])
def test_bad_files_are_one_line_naming_file_place_and_problem(five, tmp_path, name, text, message):
    with pytest.raises(InputError) as e:
        read_proportions(write(tmp_path, name, text), five)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_ambiguous_name_asks_for_the_id(tmp_path):
    taxonomy = Taxonomy([{"id": i, "name": n, "parent": p} for i, n, p in
                         [("r", "r", None), ("x", "other", "r"), ("y", "other", "x"), ("z", "z", "r")]])
    with pytest.raises(InputError, match="2 nodes match 'other'; give its id"):
        read_proportions(write(tmp_path, "p.csv", "c,p\nother,1\n"), taxonomy)


def test_a_prior_names_every_leaf_and_only_leaves_none_at_zero(five, tmp_path):
    assert leaf_proportions({A1: 1, A2: 1, B: 2}, five, "p.csv") == [0.25, 0.25, 0.5]
    for given, message in [({A: 1, B: 1}, "p.csv: 'a' is not a leaf"),
                           ({A1: 1, B: 1}, "p.csv: 1 leaves have no proportion (first: 'a2'); give every leaf one"),
                           ({A1: 1, A2: 0, B: 1}, "p.csv: the proportion of 'a2' is zero")]:
        with pytest.raises(InputError) as e:
            leaf_proportions(given, five, "p.csv")
        assert str(e.value).startswith(message)


def test_hier_fit_with_a_bad_prior_file_exits_2_with_one_line_before_any_run(run_cli, synth_dataset, tmp_path):
    bad = write(tmp_path, "prior.csv", "class,proportion\nsomething,1\nother,lots\n")
    code, _, err = run_cli("fit", synth_dataset, "--taxonomy", synth_dataset / "taxonomy.json", "--backbone",
                           "smallcnn", "--weights", "none", "--image-size", 32, "--device", "cpu", "--epochs", 1,
                           "--prior", bad, "-o", tmp_path / "run")
    assert code == 2
    assert err.strip() == f"hier: error: {bad}: line 3: the proportion of 'other' must be a number, got 'lots'"
    assert not (tmp_path / "run").exists()
