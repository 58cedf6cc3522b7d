"""Raw prediction logs binned into the cumulative histogram series Prometheus would have scraped.

A prediction log has one row per prediction (``*.predictions.csv`` or ``*.predictions.parquet``)::

    timestamp,score,version
    2026-10-20T00:00:03.25Z,0.734,5f7c9b8d6
    1792454404.5,0.112,5f7c9b8d6

``timestamp`` is unix seconds or RFC 3339 with a timezone (as in the long format,
:mod:`driftgate.exports.tabular`), ``score`` a number (a missing or NaN score is an error naming its row),
``version`` optional (e.g. the pod-template hash of the ReplicaSet that served it). Other columns are
ignored, so a log can carry request ids and features.

The histogram is not in the log, so each log needs a *sidecar* ``<log file>.meta.json`` next to it
(``reco.predictions.csv`` → ``reco.predictions.csv.meta.json``)::

    {"metric": "reco_score", "buckets": [0.1, 0.2, 0.5, 1], "step": 60, "labels": {"job": "reco-ranker"}}

``metric`` is the histogram's base name (the series are ``<metric>_bucket``), ``buckets`` the finite
upper bounds in increasing order (``+Inf`` is added), ``step`` the sample spacing in seconds and
``labels`` (optional) the labels every series carries: include the spec's ``prometheus.selector``.

Output, per version (label ``rollouts_pod_template_hash`` = the version; no such label without a
``version`` column): one cumulative counter ``<metric>_bucket{le="<bound>"}`` per bound and
``le="+Inf"``, sampled at every multiple of ``step`` from the last one *before* the version's first
prediction (value 0, so every prediction shows up in ``increase()``) to the first one at or after its
last. The sample at time ``T`` counts the predictions with ``timestamp <= T`` and ``score <= le``, as a
scrape at ``T`` would: a score equal to a bound falls in that bound's bucket, a score above every
finite bound only in ``+Inf``. ``le`` is spelled like the Go Prometheus client (``0.1``, ``1``,
``2.5``, ``1e+06``), so the fitter handles these series exactly like scraped ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # optional: see driftgate.exports.tabular.need_pyarrow
    import pyarrow as pa
except ImportError:  # pragma: no cover - exercised by the clean-venv install test
    pa = None

from driftgate.errors import ExportError
from driftgate.exports.goformat import format_le
from driftgate.exports.series import DuplicateKey, Series, checked_series, unique_keys
from driftgate.exports.tabular import (
    as_table,
    float_values,
    need_pyarrow,
    read_csv_table,
    read_parquet_table,
    string_codes,
    unix_seconds,
)
from driftgate.fsio import FileRefused, read_bytes, refusal
from driftgate.spec.names import LABEL_NAME, METRIC_NAME, describe_grammar

SIDECAR_SUFFIX = ".meta.json"
VERSION_LABEL = "rollouts_pod_template_hash"
COLUMNS = ("timestamp", "score", "version")
MAX_SIDECAR_BYTES = 1_000_000
# Samples × buckets per version; above it the step is too fine for the span of the log.
MAX_CELLS = 20_000_000
MAX_BUCKETS = 1_000  # finite bounds in a sidecar; classic histograms have tens
# The sample spacing: from Prometheus' resolution (a millisecond) to one day.
MIN_STEP, MAX_STEP = 0.001, 86_400.0
SIDECAR_EXAMPLE = ('{"metric": "reco_score", "buckets": [0.1, 0.2, 0.5, 1], "step": 60, '
                   '"labels": {"job": "reco-ranker"}}')


@dataclass(frozen=True)
class Binning:
    """What a sidecar says: the histogram a prediction log is binned into."""

    metric: str
    bounds: tuple[float, ...]
    step: float
    labels: tuple[tuple[str, str], ...]


def check_binning(metric: Any, bounds: Any, step: Any, labels: Any, where: str) -> Binning:
    """Validate histogram parameters (from a sidecar or a caller); errors name ``where`` and the key."""
    if not isinstance(metric, str) or not METRIC_NAME.fullmatch(metric + "_bucket"):
        raise ExportError(f"{where}: metric: expected the histogram's base name, "
                          f"{describe_grammar(METRIC_NAME)}, got {_show(metric)}")
    if metric.endswith("_bucket"):
        raise ExportError(f"{where}: metric: give the base name without _bucket "
                          f"({metric.removesuffix('_bucket')!r}); the series are <metric>_bucket")
    if not isinstance(bounds, list | tuple) or not bounds:
        raise ExportError(f"{where}: buckets: expected a non-empty list of finite upper bounds, got {_show(bounds)}")
    if len(bounds) > MAX_BUCKETS:
        raise ExportError(f"{where}: buckets: expected at most {MAX_BUCKETS} bounds, got {len(bounds)}; a "
                          f"classic histogram has tens of buckets")
    values: list[float] = []
    for i, b in enumerate(bounds):
        value = _finite(b)
        if value is None:
            raise ExportError(f"{where}: buckets[{i}]: expected a finite number (+Inf is added), got {_show(b)}")
        if i and not value > values[-1]:
            raise ExportError(f"{where}: buckets[{i}]: bounds must be strictly increasing, got {_show(b)} after "
                              f"{_show(bounds[i - 1])}")
        values.append(value)
    seconds = _finite(step)
    if seconds is None or not seconds > 0:
        raise ExportError(f"{where}: step: expected a positive number of seconds, got {_show(step)}")
    if not MIN_STEP <= seconds <= MAX_STEP:
        raise ExportError(f"{where}: step: expected the sample spacing in seconds, from {MIN_STEP:g} (a "
                          f"millisecond) to {MAX_STEP:g} (a day), e.g. the scrape interval 60; got {_show(step)}")
    if not isinstance(labels, dict):
        raise ExportError(f"{where}: labels: expected an object of string labels, got {_show(labels)}")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_NAME.fullmatch(key) or key in ("__name__", "le"):
            raise ExportError(f"{where}: labels: expected {describe_grammar(LABEL_NAME)} other than __name__ "
                              f"and le, got {_show(key)}")
        if not isinstance(value, str) or not value:
            raise ExportError(f"{where}: labels.{key}: expected a non-empty string, got {_show(value)}")
    return Binning(metric, tuple(values), seconds, tuple(sorted(labels.items())))


def _finite(value: Any) -> float | None:
    """``value`` as a finite float when it is a JSON number (not a boolean) that fits one, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # an int of 400 digits overflows
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def bin_predictions(frame: pd.DataFrame | pa.Table, *, metric: str, bounds: list[float], step: float,
                    labels: dict[str, str], source: str) -> list[Series]:
    """Bin a prediction log (columns ``timestamp``, ``score``, optional ``version``) into
    ``<metric>_bucket`` series; see the module docstring. Errors name ``source`` and the row."""
    spec = check_binning(metric, bounds, step, labels, source)
    return _binned(as_table(frame, source), spec, source)


def _binned(table: pa.Table, spec: Binning, source: str) -> list[Series]:
    names = list(table.column_names)
    for col in ("timestamp", "score"):
        if col not in names:
            raise ExportError(f"{source}: missing column {col!r}; expected columns timestamp, score and "
                              f"optionally version; found: {', '.join(names) or 'none'}")
    if table.num_rows == 0:
        raise ExportError(f"{source}: the prediction log has no rows")
    t = unix_seconds(table, "timestamp", source)
    score = float_values(table, "score", source, missing="error")
    base = dict(spec.labels)
    if "version" in names:
        if VERSION_LABEL in base:
            raise ExportError(f"{source}: labels set {VERSION_LABEL} and the log has a version column; "
                              f"the version column fills {VERSION_LABEL}, drop one of them")
        table = _version_as_text(table)
        version_codes, versions = string_codes(table, "version", source, required=True, expected="a version")
    else:
        version_codes, versions = np.zeros(t.size, dtype=np.int64), [""]

    bounds = np.asarray(spec.bounds, dtype=np.float64)
    les = [format_le(b) for b in spec.bounds] + ["+Inf"]
    width = len(les)
    bucket = np.searchsorted(bounds, score, side="left")  # first bound >= score; len(bounds) = +Inf only
    boundary = np.ceil(t / spec.step).astype(np.int64)  # first sample time k*step >= t
    name = f"{spec.metric}_bucket"
    out: list[Series] = []
    for code, version in enumerate(versions):
        rows = version_codes == code
        b = boundary[rows]
        first = int(b.min()) - 1
        k = b - first
        n = int(k.max()) + 1
        if n * width > MAX_CELLS:
            which = f"version {version!r}: " if version else ""
            raise ExportError(f"{source}: {which}{n} samples of {width} buckets at step {spec.step:g}s exceed "
                              f"{MAX_CELLS} cells; use a larger step (or check for stray timestamps)")
        counts = np.bincount(k * width + bucket[rows], minlength=n * width).reshape(n, width)
        cumulative = np.cumsum(np.cumsum(counts, axis=0), axis=1).astype(np.float64).T.copy()
        grid = (first + np.arange(n, dtype=np.float64)) * spec.step
        series_labels = dict(base)
        if version:
            series_labels[VERSION_LABEL] = version
        for j, le in enumerate(les):
            out.append(checked_series(name, {**series_labels, "le": le}, grid, cumulative[j], source))
    return out


def _version_as_text(table: pa.Table) -> pa.Table:
    col = table.column("version")
    if pa.types.is_integer(col.type):
        return table.set_column(table.column_names.index("version"), "version", col.cast(pa.string()))
    return table


def sidecar_path(path: Path) -> Path:
    """``reco.predictions.csv`` → ``reco.predictions.csv.meta.json``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path, display: str, root: Path | None = None) -> Binning:
    """Read and check the sidecar of the prediction log ``path`` (``display`` names the log; only a regular
    file inside ``root`` when given)."""
    meta = sidecar_path(path)
    shown = display + SIDECAR_SUFFIX
    if refusal(meta, root) == "file not found":
        raise ExportError(f"{display}: a prediction log needs a sidecar {shown} giving the histogram, e.g. "
                          f"{SIDECAR_EXAMPLE}", hint="see docs/exports.md")
    try:  # a FIFO, a directory, a symlink out of the repository or a dangling one: refused, never read
        raw = read_bytes(meta, shown, MAX_SIDECAR_BYTES, root, what="sidecar")
    except FileRefused as exc:
        raise ExportError(str(exc)) from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Windows editors write one)
        raw = raw[3:]
    try:
        doc = json.loads(raw.decode("utf-8"), parse_float=_parse_float, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        raise ExportError(f"{shown}: the key {exc.key!r} appears twice in one object; expected each key once, "
                          f"like {SIDECAR_EXAMPLE}") from None
    except UnicodeDecodeError as exc:
        raise ExportError(f"{shown}: not UTF-8 JSON: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ExportError(f"{shown}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); expected an object "
                          f"like {SIDECAR_EXAMPLE}") from exc
    except RecursionError:  # deeply nested JSON: a clear error, not a traceback
        raise ExportError(f"{shown}: the JSON nests too deeply; expected an object like {SIDECAR_EXAMPLE}") \
            from None
    except ValueError:  # an integer of more than 4300 digits (Python's conversion limit)
        raise ExportError(f"{shown}: a number in the JSON has thousands of digits; expected an object like "
                          f"{SIDECAR_EXAMPLE}") from None
    if not isinstance(doc, dict):
        raise ExportError(f"{shown}: expected a JSON object like {SIDECAR_EXAMPLE}, got {_show(doc)}")
    allowed = ("metric", "buckets", "step", "labels")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise ExportError(f"{shown}: unknown key {unknown[0]!r}; expected {', '.join(allowed)}")
    for key in allowed[:3]:
        if key not in doc:
            raise ExportError(f"{shown}: missing key {key!r}; expected an object like {SIDECAR_EXAMPLE}")
    return check_binning(doc["metric"], doc["buckets"], doc["step"], doc.get("labels", {}), shown)


def read_predictions(path: Path, display: str, root: Path | None = None) -> list[Series]:
    """Read ``*.predictions.csv`` / ``*.predictions.parquet`` with its sidecar and bin it."""
    need_pyarrow(display)
    spec = read_sidecar(path, display, root)
    what = "a prediction log with columns timestamp, score and optionally version"
    if path.name.lower().endswith(".parquet"):
        table = read_parquet_table(path, display, what, include=COLUMNS, require=COLUMNS[:2], root=root)
    else:
        table = read_csv_table(path, display, what, include=COLUMNS, require=COLUMNS[:2], root=root)
    return _binned(table, spec, display)


class _Overflowed(float):
    """A JSON number too large for a float (``1e400``): infinite, but shown as the sidecar spells it."""

    text: str


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isinf(value):
        return value
    out = _Overflowed(text)
    out.text = text
    return out


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _show(value: Any) -> str:
    """A sidecar value as a message shows it (JSON, cut after 80 characters)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, _Overflowed):
        return f"{_short(value.text)} (too large for a 64-bit float)"
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = repr(value)
    return _short(text)
