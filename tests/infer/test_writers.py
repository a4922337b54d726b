"""Output formats of ``hier predict`` (the rows themselves are checked end to end in test_predict.py)."""

from pathlib import Path

import pytest

from hier.infer import writers
from hier.taxo import InputError


def test_output_format():
    assert writers.output_format(Path("a.JSONL"), None) == "jsonl"
    assert writers.output_format(None, None) == "csv"
    assert writers.output_format(Path("x.txt"), "ecotaxa") == "ecotaxa"
    with pytest.raises(InputError, match="unknown output type '.txt'"):
        writers.output_format(Path("x.txt"), None)
    with pytest.raises(InputError, match="--format must be one of"):
        writers.output_format(None, "xml")
