"""The fast query_range reader (no JSON tree of the samples) agrees with the json path on every file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftgate.errors import ExportError
from driftgate.exports import promjson as pj
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "tests/corpus/base/exports").rglob("*.json"))
CORPUS = sorted((REPO / "tests/corpus/export").glob("*.json"))


def _same(a: list, b: list) -> None:
    assert [(s.name, s.labels) for s in a] == [(s.name, s.labels) for s in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.t, y.t) and np.array_equal(x.v, y.v, equal_nan=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_fast_path_reads_prometheus_output_like_json(path: Path) -> None:
    raw = path.read_bytes()
    fast = pj._fast(raw, path.name)
    assert fast is not None, "a compact Prometheus response must take the fast path"
    _same(fast, pj.parse_query_range(json.loads(raw), path.name))


def _doc(values: list) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x_total", "pod": "a"}, "values": values}]}}


@pytest.mark.parametrize("values", [
    [[1700000000, "1"], [1700000060, "NaN"], [1700000120, "2.5e-3"], [1700000180.5, "1e6"]],
    [[1700000000, "1"]],
])
def test_fast_path_values(values: list) -> None:
    raw = json.dumps(_doc(values), separators=(",", ":")).encode()
    fast = pj._fast(raw, "x.json")
    assert fast is not None
    _same(fast, pj.parse_query_range(json.loads(raw), "x.json"))


@pytest.mark.parametrize("values", [
    [[1700000000, 1]],                      # a value that is not a string
    [["1700000000", "1"]],                  # a timestamp that is a string
    [[1700000000, "0x10"]],                 # hex: Python's float() refuses it, numpy's parser would not
    [[1700000000, "1_0"]],                  # an underscore: the other way round
    [[1700000000, "abc"]],
    [[1700000000, "1", "2"]],               # three items
    [[True, "1"]],
    [[1700000000, ""]],
])
def test_fast_path_gives_up_on_anything_unusual(values: list) -> None:
    raw = json.dumps(_doc(values), separators=(",", ":")).encode()
    assert pj._fast(raw, "x.json") is None


def test_formatted_json_takes_the_json_path(tmp_path: Path) -> None:
    doc = _doc([[1700000000, "1"], [1700000060, "2"]])
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc, indent=2))
    assert pj._fast(path.read_bytes(), "x.json") is None
    (series,) = pj.read_query_range(path, "x.json")
    assert series.v.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_files_agree(path: Path) -> None:
    """Every bad export either fails the fast path or yields what the json path yields."""
    raw = path.read_bytes()
    try:
        fast = pj._fast(raw, path.name)
    except ExportError:  # checked_series ran on fast-parsed samples: the json path must say the same
        with pytest.raises(ExportError):
            pj.parse_query_range(json.loads(raw), path.name)
        return
    if fast is not None:
        _same(fast, pj.parse_query_range(json.loads(raw), path.name))


def test_fast_path_number_forms() -> None:
    pairs = pj._pairs(b'1700000000,"NaN"],[1700000060.25,"+Inf"],[1700000120,"-Inf"],[1700000180,"-2.5E-3"')
    assert pairs.t.tolist() == [1700000000.0, 1700000060.25, 1700000120.0, 1700000180.0]
    assert np.isnan(pairs.v[0]) and pairs.v[1:].tolist() == [np.inf, -np.inf, -0.0025]
