"""Read Prometheus HTTP API ``query_range`` responses (``resultType: matrix``).

The shape is the one ``GET /api/v1/query_range`` returns::

    {"status": "success",
     "data": {"resultType": "matrix",
              "result": [{"metric": {"__name__": "x", "pod": "a"}, "values": [[1700000000, "12"], ...]}]}}

Each series must carry ``__name__`` (export bare selectors such as ``reco_score_bucket{job="x"}``).
Sample values are strings, as Prometheus writes them (``"NaN"``, ``"+Inf"`` included); NaN samples
are dropped, anything else that is not a number is an error naming the file and the series.

Two readers, one result. The **fast path** (:func:`_fast`) never builds the JSON object tree of the
samples: it cuts each ``"values":[[...]]`` block out of the bytes (``bytes.find``), decodes the rest
(status, labels) with :mod:`json`, and parses each block with numpy's text parser after checking,
by counting delimiters, that it is exactly ``[number,"string"]`` pairs as Prometheus writes them.
That is what keeps a fit of a large export near the cost of reading the file, and its memory near
the file's size (bench/perf.py: the object tree of ``json.load`` is 10x the file). Whatever the
fast path does not recognise exactly (whitespace between tokens, a non-number, a missing block)
makes it give up, and the **json path** reads the file the ordinary way and produces the precise
error, so both paths agree on every file.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from driftgate.errors import ExportError, quote
from driftgate.exports.series import (
    DuplicateKey,
    Series,
    checked_series,
    describe,
    read_export,
    show_number,
    unique_keys,
)

WHAT = "a Prometheus query_range JSON response"


def read_query_range(path: Path, display: str, root: Path | None = None) -> list[Series]:
    raw = read_export(path, display, WHAT, root)
    if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Windows tools write one): not part of the JSON
        raw = raw[3:]
    fast = _fast(raw, display)
    if fast is not None:
        return fast
    try:
        doc = json.loads(raw, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        raise ExportError(f"{display}: the key {quote(exc.key)} appears twice in one JSON object (a label given "
                          f"twice?); expected {WHAT} as Prometheus writes it") from None
    except UnicodeDecodeError as exc:
        raise ExportError(f"{display}: not UTF-8 JSON: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ExportError(f"{display}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                          f"expected a Prometheus query_range response") from exc
    except RecursionError:  # json's decoder recurses per nesting level: deep nesting is not a bug here
        raise ExportError(f"{display}: the JSON nests too deeply to be a Prometheus query_range response") \
            from None
    except ValueError:  # an integer of more than 4300 digits (Python's conversion limit)
        raise ExportError(f"{display}: a number in the JSON has thousands of digits; expected {WHAT} "
                          f"(timestamps in seconds, values as strings)") from None
    return parse_query_range(doc, display)


def parse_query_range(doc: Any, display: str) -> list[Series]:
    if not isinstance(doc, dict):
        raise ExportError(f"{display}: expected a JSON object with 'status' and 'data', got {_kind(doc)}")
    if doc.get("status") != "success":
        raise ExportError(f"{display}: status: expected 'success', got {_got(doc.get('status'))}"
                          + (f" (error: {note(doc.get('error'))})" if doc.get("error") else ""))
    partial = partial_response(doc)
    if partial:
        raise ExportError(f"{display}: {partial}; the data may be incomplete or wrong, so it is not fitted: "
                          f"export the range again once the query answers without warnings")
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


_OPEN, _CLOSE = b'"values":[[', b"]]"


class _GiveUp(Exception):
    """The fast path does not recognise the input exactly: read it with the json path instead."""


def _fast(raw: bytes, display: str) -> list[Series] | None:
    """The series of a compact (Prometheus-written) response without a JSON tree of its samples."""
    pieces: list[bytes] = []
    blocks: list[tuple[int, int]] = []  # offsets into raw: a block is sliced (copied) only while parsed
    pos = 0
    while (start := raw.find(_OPEN, pos)) != -1:
        end = raw.find(_CLOSE, start + len(_OPEN))
        if end == -1:
            return None
        # (A quote inside a JSON string is escaped, so the opener cannot sit inside a label value.)
        pieces += [raw[pos:start], b'"values":{"$block":%d}' % len(blocks)]
        blocks.append((start + len(_OPEN), end))
        pos = end + len(_CLOSE)
    if not blocks:
        return None
    pieces.append(raw[pos:])
    try:
        skeleton = json.loads(b"".join(pieces), object_pairs_hook=unique_keys)
        del pieces
        items = _items(skeleton)
        if len(items) != len(blocks):
            raise _GiveUp
        for item in items:
            ref = item["values"] if isinstance(item, dict) else None
            if not (isinstance(ref, dict) and set(ref) == {"$block"} and type(ref["$block"]) is int):
                raise _GiveUp
            lo, hi = blocks[ref["$block"]]
            item["values"] = _pairs(raw[lo:hi])
        return parse_query_range(skeleton, display)
    except (_GiveUp, ValueError, TypeError, KeyError, IndexError, RecursionError, ExportError, Warning):
        return None  # the json path decides, with its own error messages


def _items(doc: Any) -> list[Any]:
    try:
        result = doc["data"]["result"]
    except (TypeError, KeyError):
        raise _GiveUp from None
    if not isinstance(result, list):
        raise _GiveUp
    return result


class _Pairs:
    """Timestamps and values already parsed by the fast path (what ``_series`` would compute)."""

    def __init__(self, t: np.ndarray, v: np.ndarray) -> None:
        self.t, self.v = t, v


def _pairs(block: bytes) -> _Pairs:
    """``1700000000,"12"],[1700000060,"13"`` (the inside of ``[[...]]``) as two float arrays."""
    pairs = block.count(b"],[") + 1
    # Exactly [number,"string"] pairs, as Prometheus writes them: one '[' and one ']' between pairs,
    # one comma inside each, each value opened by ',"' and closed by '"]' (or the block's end).
    if not (block.count(b"[") == block.count(b"]") == pairs - 1 and block.count(b",") == 2 * pairs - 1
            and block.count(b',"') == pairs and block.count(b'"],[') == pairs - 1 and block.endswith(b'"')
            and block.count(b'"') == 2 * pairs):
        raise _GiveUp
    flat = block.translate(None, b'[]"')
    if flat.translate(None, _NUMBER_BYTES):
        raise _GiveUp  # hex, underscores, words: Python's float() and numpy's parser disagree there
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) at the first token it cannot parse
        numbers = np.fromstring(flat, dtype=np.float64, sep=",")
    if numbers.size != 2 * pairs:
        raise _GiveUp
    return _Pairs(numbers[0::2].copy(), numbers[1::2].copy())


_NUMBER_BYTES = b"0123456789.,+-eENaInf"


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
    if isinstance(values, _Pairs):
        return checked_series(name, labels, values.t, values.v, display)
    if values is None and item.get("histograms") is not None:
        raise ExportError(f"{display}: {where} ({describe(name, labels)}): a native histogram series "
                          f"('histograms' instead of 'values'); driftgate reads classic histograms: export the "
                          f"<metric>_bucket series (with le labels)")
    if not isinstance(values, list) or not values:
        raise ExportError(f"{display}: {where}.values: expected a non-empty list of [timestamp, \"value\"] "
                          f"pairs, got {'an empty list' if values == [] else _kind(values)}")
    desc = describe(name, labels)
    try:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("each sample must be a [timestamp, \"value\"] pair")
        # Type checks as one C-level pass per column (set(map(type, ...))): a per-sample isinstance()
        # loop cost as much as the JSON decode itself (bench/perf.py).
        if not set(map(type, arr[:, 0])) <= {int, float}:
            bad = next(x for x in arr[:, 0] if type(x) not in (int, float))
            raise ValueError(f"timestamps must be numbers, got {_short_json(bad)}")
        if set(map(type, arr[:, 1])) != {str}:
            i = next(i for i, x in enumerate(arr[:, 1]) if type(x) is not str)
            raise ValueError(f"sample {i + 1}: values must be strings, as Prometheus writes them "
                             f"(\"12\", \"0.5\", \"NaN\"), got {_short_json(arr[i, 1])}")
        t = _timestamps(arr[:, 0])
        v = _values(arr[:, 1], t)
    except ValueError as exc:
        raise ExportError(f"{display}: {where} ({desc}): {exc}") from exc
    return checked_series(name, labels, t, v, display)


# Keys a Prometheus-compatible server sets on a partial answer. Prometheus, Thanos and Mimir report a
# partial or possibly wrong result as "warnings" (Prometheus 3's "infos" are notes and are fine);
# VictoriaMetrics sets "isPartial": true.
_PARTIAL_FLAGS = ("isPartial", "partial", "partialResponse", "partial_response")
MAX_NOTE = 200


def partial_response(doc: dict[str, Any], redact: Callable[[str], str] | None = None) -> str | None:
    """Why a successful ``query_range`` response cannot be trusted as complete (warnings, a partial
    flag), or None. Shared by the export reader and ``driftgate export``'s client (which passes its
    ``redact``: a server may echo a credential in a warning)."""
    warnings_ = doc.get("warnings")
    if warnings_ not in (None, [], ""):
        items = warnings_ if isinstance(warnings_, list) else [warnings_]
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        return f"the response carries warnings, the mark of a partial answer: {note(items[0], redact)}{more}"
    for key in _PARTIAL_FLAGS:
        if doc.get(key) not in (None, False):
            return f"the response is marked partial ({key}: {note(doc.get(key), redact)})"
    return None


def note(value: Any, redact: Callable[[str], str] | None = None) -> str:
    """A server's text (a warning, an error) as a message shows it: quoted with every non-ASCII or
    invisible character escaped, redacted when ``redact`` is given, then cut to :data:`MAX_NOTE` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True, default=str)
    if redact is not None:
        text = redact(text)
    text = " ".join(text.split())
    return quote(text if len(text) <= MAX_NOTE else text[:MAX_NOTE - 3] + "...")


# The characters of a sample value as Prometheus writes it (Go's strconv.FormatFloat, read back by
# strconv.ParseFloat): ASCII digits, sign, point, exponent, and the letters of NaN/Inf/Infinity.
# Python's float() also reads non-ASCII digits ("١٢", "１２"), digit separators ("1_000") and
# surrounding whitespace: a string with any other character is refused before float() sees it.
_VALUE_CHARS = str.maketrans("", "", "0123456789+-.eEnNaAiIfFtTyY")
VALUE_GRAMMAR = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))")


def _timestamps(column: np.ndarray) -> np.ndarray:
    """JSON numbers as float64; an integer too large for a float is an error, not an OverflowError."""
    try:
        return column.astype(np.float64)
    except OverflowError:
        i = next(i for i, x in enumerate(column) if isinstance(x, int) and abs(x) >= 2**1024)
        raise ValueError(f"sample {i + 1}: timestamp {_short_json(column[i])} is too large for a number of "
                         f"seconds") from None


def _values(column: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sample value strings as float64, each in Prometheus' grammar (a C-level check of the characters
    first; the slow per-sample search only to name the first bad one)."""
    if not "".join(column).translate(_VALUE_CHARS):
        try:
            return column.astype(np.float64)
        except ValueError:
            pass
    i = next((i for i, x in enumerate(column) if not VALUE_GRAMMAR.fullmatch(x)), 0)
    at = f" (at {show_number(float(t[i]))})" if np.isfinite(t[i]) else ""
    raise ValueError(f"sample {i + 1}{at}: expected a number as Prometheus writes it (\"12\", \"0.5\", "
                     f"\"1e+06\", \"NaN\", \"+Inf\"; ASCII digits, no spaces or separators), got "
                     f"{_short_json(column[i])}")


def _short_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _got(value: Any) -> str:
    return "null" if value is None else repr(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value),
                                                                                      type(value).__name__)
