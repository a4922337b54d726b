"""The held-out split a run is calibrated or evaluated on."""

import json

import pytest

from hier import runs
from hier.infer.scoring import held_out_split
from hier.taxo import InputError


def test_held_out_split(trained, tmp_path):
    flat = trained.data / "test"  # class folders without splits
    samples, name, _ = held_out_split(tmp_path, flat, None, "test")
    assert name == "all" and len(samples) == len(list(flat.rglob("*.png")))
    chosen = [str(s.path) for s in samples[:4]]
    (tmp_path / runs.SPLIT).write_text(json.dumps({"train": [], "val": chosen[:2], "test": chosen[2:]}))
    samples, name, _ = held_out_split(tmp_path, flat, None, "test")
    assert name == "test" and [str(s.path) for s in samples] == chosen[2:]
    samples, name, _ = held_out_split(tmp_path, flat, "val", "test")
    assert name == "val" and [str(s.path) for s in samples] == chosen[:2]
    with pytest.raises(InputError, match="no split 'extra'"):
        held_out_split(tmp_path, flat, "extra", "test")
    samples, name, dataset = held_out_split(tmp_path, trained.data, None, "val")
    assert name == "val" and len(samples) == len(dataset.splits["val"])
