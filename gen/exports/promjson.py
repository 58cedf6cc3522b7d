"""Read Prometheus HTTP API ``query_range`` responses (``resultType: matrix``).

The shape is the one ``GET /api/v1/query_range`` returns::

    {"status": "success",
     "data": {"resultType": "matrix",
              "result": [{"metric": {"__name__": "x", "pod": "a"}, "values": [[1700000000, "12"], ...]}]}}

Each series must carry ``__name__`` (export bare selectors such as ``reco_score_bucket{job="x"}``).
Sample values are strings, as Prometheus writes them (``"NaN"``, ``"+Inf"`` included); NaN samples
are dropped, anything else that is not a number is an error naming the file and the series.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gen.errors import ExportError
from gen.exports.series import Series, check_size, checked_series


def read_query_range(path: Path, display: str) -> list[Series]:
    check_size(path, display, "a Prometheus query_range JSON response")
    try:
        with path.open("rb") as fh:
            doc = json.load(fh)
    except UnicodeDecodeError as exc:
        raise ExportError(f"{display}: not UTF-8 JSON: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ExportError(f"{display}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                          f"expected a Prometheus query_range response") from exc
    except RecursionError:  # json's decoder recurses per nesting level: deep nesting is not a bug here
        raise ExportError(f"{display}: the JSON nests too deeply to be a Prometheus query_range response") \
            from None
    return parse_query_range(doc, display)


def parse_query_range(doc: Any, display: str) -> list[Series]:
    if not isinstance(doc, dict):
        raise ExportError(f"{display}: expected a JSON object with 'status' and 'data', got {_kind(doc)}")
    if doc.get("status") != "success":
        raise ExportError(f"{display}: status: expected 'success', got {_got(doc.get('status'))}"
                          + (f" (error: {doc.get('error')})" if doc.get("error") else ""))
    data = doc.get("data")
    if not isinstance(data, dict):
        raise ExportError(f"{display}: data: expected an object, got {_kind(data)}")
    if data.get("resultType") != "matrix":
        raise ExportError(f"{display}: data.resultType: expected 'matrix' (a query_range response), "
                          f"got {_got(data.get('resultType'))}")
    result = data.get("result")
    if not isinstance(result, list):
        raise ExportError(f"{display}: data.result: expected a list of series, got {_kind(result)}")
    if not result:
        raise ExportError(f"{display}: data.result is empty: the query matched no series")
    out = []
    for i, item in enumerate(result):
        out.append(_series(item, f"data.result[{i}]", display))
    return out


def _series(item: Any, where: str, display: str) -> Series:
    if not isinstance(item, dict):
        raise ExportError(f"{display}: {where}: expected an object, got {_kind(item)}")
    metric = item.get("metric")
    if not isinstance(metric, dict):
        raise ExportError(f"{display}: {where}.metric: expected an object of string labels, got {_kind(metric)}")
    for key, value in metric.items():  # (say which label: "expected string labels" alone hides it)
        if not isinstance(value, str):
            raise ExportError(f"{display}: {where}.metric.{key}: expected a string label value, "
                              f"got {json.dumps(value)}")
    labels = dict(metric)
    name = labels.pop("__name__", None)
    if not name:
        raise ExportError(f"{display}: {where}.metric: the series has no __name__; export bare selectors "
                          f"(e.g. reco_score_bucket{{job=\"x\"}}), not expressions")
    values = item.get("values")
    if not isinstance(values, list) or not values:
        raise ExportError(f"{display}: {where}.values: expected a non-empty list of [timestamp, \"value\"] "
                          f"pairs, got {'an empty list' if values == [] else _kind(values)}")
    try:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("each sample must be a [timestamp, \"value\"] pair")
        bad = [x for x in arr[:, 0] if not isinstance(x, int | float) or isinstance(x, bool)]
        if bad:
            raise ValueError(f"timestamps must be numbers, got {json.dumps(bad[0])}")
        if not all(isinstance(x, str) for x in arr[:, 1]):
            raise ValueError("values must be strings, as Prometheus writes them")
        t = arr[:, 0].astype(np.float64)
        v = arr[:, 1].astype(np.float64)
    except ValueError as exc:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        raise ExportError(f"{display}: {where} ({name}{{{inner}}}): {exc}") from exc
    return checked_series(name, labels, t, v, display)


def _got(value: Any) -> str:
    return "null" if value is None else repr(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value),
                                                                                      type(value).__name__)
