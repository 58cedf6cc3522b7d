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
    return parse_query_range(doc, display)


def parse_query_range(doc: Any, display: str) -> list[Series]:
    if not isinstance(doc, dict):
        raise ExportError(f"{display}: expected a JSON object with 'status' and 'data', got {_kind(doc)}")
    if doc.get("status") != "success":
        raise ExportError(f"{display}: status: expected 'success', got {doc.get('status')!r}"
                          + (f" (error: {doc.get('error')})" if doc.get("error") else ""))
    data = doc.get("data")
    if not isinstance(data, dict):
        raise ExportError(f"{display}: data: expected an object, got {_kind(data)}")
    if data.get("resultType") != "matrix":
        raise ExportError(f"{display}: data.resultType: expected 'matrix' (a query_range response), "
                          f"got {data.get('resultType')!r}")
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
    if not isinstance(metric, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in metric.items()):
        raise ExportError(f"{display}: {where}.metric: expected an object of string labels")
    labels = dict(metric)
    name = labels.pop("__name__", None)
    if not name:
        raise ExportError(f"{display}: {where}.metric: the series has no __name__; export bare selectors "
                          f"(e.g. reco_score_bucket{{job=\"x\"}}), not expressions")
    values = item.get("values")
    if not isinstance(values, list) or not values:
        raise ExportError(f"{display}: {where}.values: expected a non-empty list of [timestamp, \"value\"] "
                          f"pairs, got {_kind(values)}")
    try:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("each sample must be a [timestamp, \"value\"] pair")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in arr[:, 0]):
            raise ValueError("timestamps must be numbers")
        if not all(isinstance(x, str) for x in arr[:, 1]):
            raise ValueError("values must be strings, as Prometheus writes them")
        t = arr[:, 0].astype(np.float64)
        v = arr[:, 1].astype(np.float64)
    except ValueError as exc:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        raise ExportError(f"{display}: {where} ({name}{{{inner}}}): {exc}") from exc
    return checked_series(name, labels, t, v, display)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value),
                                                                                      type(value).__name__)
