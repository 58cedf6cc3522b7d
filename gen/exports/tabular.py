"""Read metric history in *long format*: one sample per row, as CSV (``.csv``) or Parquet (``.parquet``).

Columns (names are exact and lowercase; any other column is an error)::

    timestamp  unix seconds (integer or decimal), or an RFC 3339 time with a timezone
               ("2026-10-20T00:00:00Z", "2026-10-20T02:00:00+02:00"); Parquet may also use a
               timestamp type with a timezone. Timezone-naive times are rejected (ambiguous).
    metric     Prometheus metric name, e.g. reco_score_bucket ([a-zA-Z_:][a-zA-Z0-9_:]*)
    value      the sample as a number; "NaN" (or an empty field / Parquet null) is a stale sample and
               is dropped, as in query_range JSON. "+Inf"/"-Inf" parse but are rejected per series.
    labels     EITHER one ``labels`` column holding a JSON object of string labels ({"pod": "a"}),
               OR one ``label_<name>`` column per label (label_le, label_pod, ...). Exactly one style.

For example (CSV, JSON labels; note the doubled quotes of CSV)::

    timestamp,metric,labels,value
    1792454400,reco_score_bucket,"{""job"":""reco-ranker"",""le"":""0.1""}",12
    1792454400,reco_score_bucket,"{""job"":""reco-ranker"",""le"":""+Inf""}",40
    2026-10-20T00:05:00Z,reco_score_bucket,"{""job"":""reco-ranker"",""le"":""0.1""}",15

or with label columns::

    timestamp,metric,label_job,label_le,value
    1792454400,reco_score_bucket,reco-ranker,0.1,12

An empty label value (empty CSV field, Parquet null, ``""`` in JSON) means the series does not carry
that label, as in Prometheus, so series with different label names can share one file. Rows are
grouped into series by (metric, labels) and sorted by timestamp; each series is then checked like
a query_range series (:func:`driftgate.exports.series.checked_series`: duplicate timestamps, infinite
values). Rows need not be in any order.

Errors name the file, the row (1-based data row, the header not counted), the column, what was
expected and what was found. Columns are converted with pyarrow compute kernels and numpy: there is
no Python loop over rows (only over distinct label sets and over series).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
from collections.abc import Collection, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

try:  # optional (pip install 'driftgate[tabular]'): only CSV, Parquet and prediction-log exports need it
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - exercised by the clean-venv install test
    pa = pc = pcsv = pq = None

from driftgate.errors import ExportError
from driftgate.exports.series import (
    DuplicateKey,
    FloatArray,
    Series,
    bad_timestamps,
    checked_series,
    read_export,
    timestamp_problem,
    unique_keys,
)
from driftgate.spec.names import LABEL_NAME, METRIC_NAME, describe_grammar

IntArray = npt.NDArray[np.int64]


def need_pyarrow(display: str) -> None:
    """A one-line error naming the file when pyarrow (an optional dependency) is not installed."""
    if pa is None:
        raise ExportError(f"{display}: reading CSV, Parquet and prediction-log exports needs pyarrow, "
                          "which is not installed: pip install 'driftgate[tabular]'")

MAX_HEADER_BYTES = 1_000_000
REQUIRED = ("timestamp", "metric", "value")
LABELS = "labels"
LABEL_PREFIX = "label_"
EXPECTED = "timestamp, metric, value, and either labels (a JSON object) or label_<name> columns"

# What a number may look like in a text column: decimal or exponent form, NaN and ±Inf (any case),
# as Prometheus writes sample values. Checked with a regex first so that the first bad row is known.
NUMBER = r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))"
FINITE_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_RFC3339_BODY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
RFC3339 = _RFC3339_BODY + r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"


# --------------------------------------------------------------------------------------------
# Files


def read_csv_table(path: Path, display: str, what: str, include: Collection[str] | None = None,
                   require: Collection[str] = (), root: Path | None = None) -> pa.Table:
    """Every column of a CSV file as strings (empty fields stay ``""``); only ``include`` if given.

    A column of ``require`` missing from the header is an error listing the header. The file is read
    through :func:`driftgate.exports.series.read_export` (regular files inside ``root`` only).
    """
    need_pyarrow(display)
    raw = read_export(path, display, what, root)
    end = raw.find(b"\n", 0, MAX_HEADER_BYTES)
    first = raw[:end + 1] if end != -1 else raw[:MAX_HEADER_BYTES]
    try:
        header = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")], strict=True), [])
    except UnicodeDecodeError as exc:
        raise ExportError(f"{display}: line 1: not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
    except csv.Error as exc:
        raise ExportError(f"{display}: line 1: not a valid CSV header ({exc}); expected {what}") from exc
    if not header or header == [""]:
        raise ExportError(f"{display}: the first line is empty; expected a header row naming the columns "
                          f"({what})")
    _check_unique(header, display)
    _check_required(header, require, display, what)
    wanted = [name for name in header if include is None or name in include]
    bad_rows: list[Any] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append(row)
        return "error"

    def read(threads: bool) -> pa.Table:
        return pcsv.read_csv(
            pa.BufferReader(raw),
            read_options=pcsv.ReadOptions(use_threads=threads),
            parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in wanted},
                                                include_columns=wanted, strings_can_be_null=False,
                                                null_values=[]))

    try:
        return read(True)
    except (pa.ArrowInvalid, OSError) as exc:
        if bad_rows and bad_rows[0].number is None:  # line numbers are only known single-threaded
            bad_rows.clear()
            with contextlib.suppress(pa.ArrowInvalid, OSError):
                read(False)
        if bad_rows and bad_rows[0].number is not None:
            row = bad_rows[0]
            raise ExportError(f"{display}: line {row.number}: expected {row.expected_columns} fields like the "
                              f"header, got {row.actual_columns}: {_short(row.text)}") from exc
        text = str(exc).replace("CSV parse error: ", "").replace("CSV conversion error to string: ", "")
        utf8 = re.match(r"In CSV column #([0-9]+): invalid UTF8 data", text)
        if utf8 and int(utf8.group(1)) < len(header):  # the index counts every column of the file
            raise ExportError(f"{display}: column {header[int(utf8.group(1))]!r}: not UTF-8 text; save the file "
                              f"as UTF-8") from exc
        raise ExportError(f"{display}: not a readable CSV file: {text}") from exc


def read_parquet_table(path: Path, display: str, what: str, include: Collection[str] | None = None,
                       require: Collection[str] = (), root: Path | None = None) -> pa.Table:
    """A Parquet file as an Arrow table (only the columns in ``include`` if given; ``require`` and
    ``root`` as for CSV)."""
    need_pyarrow(display)
    raw = read_export(path, display, what, root)
    try:
        names = list(pq.read_schema(pa.BufferReader(raw)).names)
    except (pa.ArrowException, OSError) as exc:
        raise ExportError(f"{display}: not a readable Parquet file ({_one_line(exc)}); expected {what}") from exc
    _check_unique(names, display)
    _check_required(names, require, display, what)
    try:
        return pq.read_table(pa.BufferReader(raw),
                             columns=None if include is None else [n for n in names if n in include])
    except (pa.ArrowException, OSError) as exc:
        raise ExportError(f"{display}: not a readable Parquet file ({_one_line(exc)}); expected {what}") from exc


def _one_line(exc: BaseException) -> str:
    """Arrow's messages may span lines ("Invalid data\\nDeserializing page header failed."): keep one."""
    return " ".join(str(exc).split())


def _check_required(names: Sequence[str], require: Collection[str], display: str, what: str) -> None:
    for column in require:
        if column not in names:
            raise ExportError(f"{display}: missing column {column!r}; expected {what}; "
                              f"found: {', '.join(names) or 'none'}")


def _check_unique(names: Sequence[str], display: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ExportError(f"{display}: column {name!r} appears twice in the header")
        seen.add(name)


def as_table(frame: pa.Table | pd.DataFrame, source: str) -> pa.Table:
    """A pandas DataFrame (index ignored) as an Arrow table; a table is returned unchanged."""
    need_pyarrow(source)
    if isinstance(frame, pa.Table):
        return frame
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ExportError(f"{source}: the frame cannot be converted column by column ({exc}); "
                          f"give each column one type") from exc


# --------------------------------------------------------------------------------------------
# Columns


def row_error(source: str, row: int, column: str, message: str) -> ExportError:
    """``<source>: row <n>, column '<column>': <message>`` for the 0-based ``row``."""
    return ExportError(f"{source}: row {row + 1}, column {column!r}: {message}")


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _first(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.argmax(mask))


def _value_at(arr: pa.Array, row: int) -> str:
    """The value of ``arr`` at ``row`` as a message shows it: text quoted, a timestamp as its ISO time (or
    its raw ticks when the time is beyond what Python's datetime holds), a date or decimal as written."""
    t = arr.type
    if pa.types.is_timestamp(t):
        if not arr[row].is_valid:
            return "a missing value"
        ticks = int(arr.cast(pa.int64())[row].as_py())
        return _ticks_text(ticks, t.unit, t.tz is not None)
    try:
        value = arr[row].as_py()
    except (OverflowError, ValueError, pa.ArrowException):  # e.g. a date32 of year 300000
        return _short(f"{arr.cast(pa.string(), safe=False)[row].as_py()!r}") if pa.types.is_date(t) \
            else f"(a value of type {t})"
    if isinstance(value, str):
        return _short(repr(value))
    if isinstance(value, dt.date | Decimal):
        return _short(str(value))
    return _short(repr(value))


def _ticks_text(ticks: int, unit: str, zoned: bool) -> str:
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    whole, frac = divmod(ticks, per_second)
    if not -62_135_596_800 <= whole < 253_402_300_800:  # years 1..9999: what datetime can show
        return f"{ticks} ({unit} since the epoch)"
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=whole)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S") if stamp.year >= 1000 else stamp.isoformat(timespec="seconds")
    if frac:
        text += "." + f"{frac:0{len(str(per_second)) - 1}d}".rstrip("0")
    return text + ("Z" if zoned else "")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _plain_strings(arr: pa.Array) -> pa.Array | None:
    """``arr`` as an Arrow ``string`` array (nulls kept), or None when it does not hold text."""
    t = arr.type
    if pa.types.is_dictionary(t):
        if not (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            return None
        return arr.cast(t.value_type).cast(pa.string())
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return arr.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    return None


def string_codes(table: pa.Table, name: str, source: str, *, required: bool,
                 expected: str) -> tuple[IntArray, list[str]]:
    """Dictionary-encode a text column: ``(code per row, distinct values)``; missing values become ``""``.

    With ``required`` a missing or empty value is an error naming its row.
    """
    raw = _column(table, name)
    arr = _plain_strings(raw)
    if arr is None:
        raise row_error(source, 0, name, f"expected text ({expected}), got {_value_at(raw, 0)} "
                                         f"(a column of type {raw.type})")
    filled = pc.fill_null(arr, "")
    if required:
        empty = np.asarray(pc.equal(filled, "").to_numpy(zero_copy_only=False), dtype=bool)
        if empty.any():
            raise row_error(source, _first(empty), name, f"expected {expected}, got an empty value")
    encoded = pc.dictionary_encode(filled)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(x) for x in encoded.dictionary.to_pylist()]


def float_values(table: pa.Table, name: str, source: str, *, missing: str) -> FloatArray:
    """A numeric column (or text holding numbers) as float64.

    ``missing="nan"``: nulls and empty text are NaN; ``missing="error"``: they, and NaN, are errors.
    """
    raw = _column(table, name)
    t = raw.type
    expected = "a number" + (" (NaN or empty for a stale sample)" if missing == "nan" else "")
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = np.asarray(raw.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        arr = _plain_strings(raw)
        if arr is None:
            raise row_error(source, 0, name, f"expected {expected}, got {_value_at(raw, 0)} "
                                             f"(a column of type {t})")
        filled = pc.fill_null(arr, "")
        empty = np.asarray(pc.equal(filled, "").to_numpy(zero_copy_only=False), dtype=bool)
        ok = np.asarray(pc.match_substring_regex(filled, f"^(?:{NUMBER})$").to_numpy(zero_copy_only=False),
                        dtype=bool)
        bad = ~ok & ~empty
        if bad.any():
            row = _first(bad)
            raise row_error(source, row, name, f"expected {expected}, got {_value_at(raw, row)}")
        numbers = pc.if_else(pc.equal(filled, ""), "NaN", filled).cast(pa.float64())
        values = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
    if missing == "error":
        nan = np.isnan(values)
        if nan.any():
            row = _first(nan)
            found = "NaN" if raw[row].as_py() not in (None, "") else "a missing value"
            if isinstance(raw[row].as_py(), str) and found == "NaN":
                found = _value_at(raw, row)
            raise row_error(source, row, name, f"expected a number, got {found}")
    return values


def unix_seconds(table: pa.Table, name: str, source: str) -> FloatArray:
    """A timestamp column as unix seconds: numbers, RFC 3339 text with a timezone, or an Arrow
    timestamp type with a timezone. Missing and timezone-naive values are errors naming the row."""
    raw = _column(table, name)
    t = raw.type
    expected = "unix seconds or an RFC 3339 time with a timezone (2026-10-20T00:00:00Z)"
    if raw.null_count:
        row = _first(np.asarray(raw.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        raise row_error(source, row, name, f"expected {expected}, got a missing value")
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise row_error(source, 0, name, f"{_value_at(raw, 0)} has no timezone (the column type is {t}); "
                                             f"store UTC times with tz='UTC' (pandas: .dt.tz_localize('UTC'))")
        seconds = _epoch_seconds(raw.cast(pa.int64()), t.unit)
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        seconds = np.asarray(raw.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        arr = _plain_strings(raw)
        if arr is None:
            raise row_error(source, 0, name, f"expected {expected}, got {_value_at(raw, 0)} (a column of type {t})")
        seconds = _text_seconds(raw, arr, name, source, expected)
    bad = bad_timestamps(seconds)
    if bad.any():
        row = _first(bad)
        if not np.isfinite(seconds[row]):
            raise row_error(source, row, name, f"expected {expected}, got {_value_at(raw, row)}")
        if pa.types.is_timestamp(t):
            unit = "typed"
        elif isinstance(raw[row].as_py(), str) and not re.fullmatch(FINITE_NUMBER, raw[row].as_py()):
            unit = "text"  # an RFC 3339 time: its unit is not in doubt
        else:
            unit = ""
        raise row_error(source, row, name, str(timestamp_problem(float(seconds[row]), _value_at(raw, row), unit)))
    return seconds


def _epoch_seconds(ticks: pa.Array, unit: str) -> FloatArray:
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    n = np.asarray(ticks.to_numpy(zero_copy_only=False), dtype=np.int64)
    whole, frac = np.divmod(n, per_second)
    out: FloatArray = whole.astype(np.float64) + frac.astype(np.float64) / per_second
    return out


def _text_seconds(raw: pa.Array, arr: pa.Array, name: str, source: str, expected: str) -> FloatArray:
    def matches(pattern: str) -> npt.NDArray[np.bool_]:
        return np.asarray(pc.match_substring_regex(arr, f"^(?:{pattern})$").to_numpy(zero_copy_only=False),
                          dtype=bool)

    numeric = matches(FINITE_NUMBER)
    if numeric.all():
        return np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    zoned = matches(RFC3339)
    bad = ~numeric & ~zoned
    if bad.any():
        row = _first(bad)
        naive = bool(matches(_RFC3339_BODY)[row])
        if naive:
            raise row_error(source, row, name, f"{_value_at(raw, row)} has no timezone; write Z (UTC) or an "
                                               f"offset such as +02:00, e.g. 2026-10-20T00:00:00Z")
        raise row_error(source, row, name, f"expected {expected}, got {_value_at(raw, row)}")
    seconds = np.full(len(arr), np.nan)
    if numeric.any():
        seconds[numeric] = np.asarray(pc.filter(arr, pa.array(numeric)).cast(pa.float64())
                                      .to_numpy(zero_copy_only=False), dtype=np.float64)
    # RFC 3339 allows any number of fraction digits; nanoseconds are all a time holds here.
    zoned_text = pc.replace_substring_regex(pc.filter(arr, pa.array(zoned)), r"(\.[0-9]{9})[0-9]+", r"\1")
    texts = pc.utf8_upper(zoned_text).to_numpy(zero_copy_only=False)  # t, z
    stamps = pd.to_datetime(pd.Series(texts, dtype=object), utc=True, format="ISO8601", errors="coerce")
    invalid = np.asarray(stamps.isna().to_numpy(), dtype=bool)
    if invalid.any():
        row = int(np.flatnonzero(zoned)[_first(invalid)])
        offset = re.search(r"([+-])([0-9]{2}):([0-9]{2})$", str(arr[row].as_py()))
        if offset and (int(offset.group(2)) > 23 or int(offset.group(3)) > 59):
            raise row_error(source, row, name, f"{_value_at(raw, row)}: the UTC offset {offset.group(0)} is out of "
                                               f"range; expected -23:59 to +23:59 (RFC 3339), e.g. +02:00")
        raise row_error(source, row, name, f"{_value_at(raw, row)} is not a valid date and time")
    parsed = pa.array(stamps)
    seconds[zoned] = _epoch_seconds(parsed.cast(pa.int64()), parsed.type.unit)
    return seconds


# --------------------------------------------------------------------------------------------
# Long format


def read_long_csv(path: Path, display: str, root: Path | None = None) -> list[Series]:
    """Read a long-format CSV export (see the module docstring)."""
    return parse_long(read_csv_table(path, display, f"a long-format CSV file with columns {EXPECTED}",
                                     root=root), display)


def read_long_parquet(path: Path, display: str, root: Path | None = None) -> list[Series]:
    """Read a long-format Parquet export (see the module docstring)."""
    table = read_parquet_table(path, display, f"a long-format Parquet file with columns {EXPECTED}", root=root)
    return parse_long(table, display)


def parse_long(frame: pa.Table | pd.DataFrame, display: str) -> list[Series]:
    """Group the rows of a long-format table into checked series, in (metric, labels) order."""
    table = as_table(frame, display)
    names = list(table.column_names)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ExportError(f"{display}: missing column {missing[0]!r}; expected columns {EXPECTED}; "
                          f"found: {', '.join(names) or 'none'}")
    label_cols = [c for c in names if c.startswith(LABEL_PREFIX)]
    if LABELS in names and label_cols:
        raise ExportError(f"{display}: both a 'labels' column and label_ columns ({', '.join(label_cols)}); "
                          f"use exactly one label style")
    if LABELS not in names and not label_cols:
        raise ExportError(f"{display}: no labels: expected a 'labels' column (a JSON object) or label_<name> "
                          f"columns such as label_job, label_le")
    extra = [c for c in names if c not in REQUIRED and c != LABELS and c not in label_cols]
    if extra:
        raise ExportError(f"{display}: unexpected column {extra[0]!r}; expected columns {EXPECTED} "
                          f"(label columns are prefixed: label_{extra[0]})")
    for col in label_cols:
        label = col[len(LABEL_PREFIX):]
        if not LABEL_NAME.fullmatch(label) or label == "__name__":
            raise ExportError(f"{display}: column {col!r}: expected label_ followed by "
                              f"{describe_grammar(LABEL_NAME)} (not __name__), got {label!r}")
    if table.num_rows == 0:
        raise ExportError(f"{display}: the export has a header but no data rows")

    metric_codes, metrics = string_codes(table, "metric", display, required=True,
                                         expected="a Prometheus metric name")
    bad_metric = [i for i, m in enumerate(metrics) if not METRIC_NAME.fullmatch(m)]
    if bad_metric:
        row = _first(np.isin(metric_codes, bad_metric))
        raise row_error(display, row, "metric", f"expected {describe_grammar(METRIC_NAME)}, "
                                                f"got {_short(repr(metrics[int(metric_codes[row])]))}")
    t = unix_seconds(table, "timestamp", display)
    v = float_values(table, "value", display, missing="nan")

    keys: list[IntArray] = [metric_codes]
    label_names: list[str] = []
    label_values: list[list[str]] = []
    label_sets: list[dict[str, str]] = []
    if label_cols:
        for col in label_cols:
            codes, values = string_codes(table, col, display, required=False, expected="a label value")
            keys.append(codes)
            label_names.append(col[len(LABEL_PREFIX):])
            label_values.append(values)
    else:
        codes, label_sets = _json_label_sets(table, display)
        keys.append(codes)

    group = _group_ids(keys)
    order = np.lexsort((t, group))  # by series, then time
    group_sorted = group[order]
    starts = np.flatnonzero(np.concatenate([[True], group_sorted[1:] != group_sorted[:-1]]))
    ends = np.append(starts[1:], order.size)
    t_sorted = t[order]
    v_sorted = v[order]
    out: list[Series] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        row = int(order[a])
        if label_cols:
            labels = {label_names[j]: label_values[j][int(keys[j + 1][row])] for j in range(len(label_names))}
            labels = {k: val for k, val in labels.items() if val}
        else:
            labels = dict(label_sets[int(keys[1][row])])
        out.append(checked_series(metrics[int(keys[0][row])], labels, t_sorted[a:b], v_sorted[a:b], display))
    return out


def _group_ids(keys: list[IntArray]) -> IntArray:
    """One integer per row, equal for equal tuples of codes (ordered like the tuples)."""
    sizes = [int(k.max()) + 1 for k in keys]
    if float(np.prod(np.array(sizes, dtype=np.float64))) < 2.0**62:
        group = keys[0].copy()
        for k, size in zip(keys[1:], sizes[1:], strict=True):
            group *= size
            group += k
        return group
    _, inverse = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)
    out: IntArray = inverse.reshape(-1).astype(np.int64)
    return out


def _json_label_sets(table: pa.Table, display: str) -> tuple[IntArray, list[dict[str, str]]]:
    """Parse each *distinct* ``labels`` text once; ``(label-set id per row, label sets)``.

    Texts that differ only in key order or spacing map to the same label set.
    """
    codes, texts = string_codes(table, LABELS, display, required=False, expected="a JSON object")
    ids: dict[tuple[tuple[str, str], ...], int] = {}
    text_to_set = np.empty(len(texts), dtype=np.int64)
    sets: list[dict[str, str]] = []
    for i, text in enumerate(texts):
        problem, labels = _parse_labels(text)
        if problem:
            row = _first(codes == i)
            raise row_error(display, row, LABELS, f"{problem}, got {_short(repr(text))}")
        key = tuple(sorted(labels.items()))
        if key not in ids:
            ids[key] = len(sets)
            sets.append(labels)
        text_to_set[i] = ids[key]
    return text_to_set[codes], sets


def _parse_labels(text: str) -> tuple[str, dict[str, str]]:
    if not text.strip():
        return "", {}
    try:
        doc = json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        return f"label {exc.key!r} appears twice; expected an object of string labels, each once", {}
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at character {exc.pos + 1}); expected an object of string labels", {}
    except RecursionError:  # deeply nested JSON: a clear error, not a traceback
        return "the JSON nests too deeply; expected an object of string labels", {}
    if not isinstance(doc, dict):
        return "expected a JSON object of string labels such as {\"pod\": \"a\"}", {}
    for key, value in doc.items():
        if not isinstance(value, str):
            return f"label {key!r}: expected a string value, got {json.dumps(value)}", {}
        if key == "__name__":
            return "'__name__' is not a label here; the metric name goes in the 'metric' column", {}
        if not LABEL_NAME.fullmatch(key):
            return f"label {key!r}: expected {describe_grammar(LABEL_NAME)}", {}
    return "", {k: val for k, val in doc.items() if val}
