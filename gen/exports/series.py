"""One time series as read from an export, and the store that selects series by name and labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from driftgate.errors import ExportError
from driftgate.fsio import FileRefused, read_bytes

FloatArray = npt.NDArray[np.float64]
MAX_EXPORT_BYTES = 2_000_000_000  # per export file; documented in docs/exports.md
# Unix seconds of a sample: from 1970-01-01 up to (not including) 2200-01-01. Outside it a timestamp is
# a unit mistake or garbage, and would end in an overflow when a date is formatted (year 33715).
MIN_UNIX_SECONDS = 0.0
MAX_UNIX_SECONDS = 7_258_118_400.0  # 2200-01-01T00:00:00Z
# From here on a "unix seconds" value is (far) more likely milliseconds, microseconds or nanoseconds.
_UNITS = ((1e17, "nanoseconds", "1000000000"), (1e14, "microseconds", "1000000"), (1e11, "milliseconds", "1000"))


@dataclass(frozen=True)
class Series:
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted, without __name__
    t: FloatArray  # unix seconds, strictly increasing
    v: FloatArray  # finite sample values (NaN/stale samples removed)
    source: str  # export file the series came from

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def describe(self) -> str:
        return describe(self.name, self.labels)


def describe(name: str, labels: tuple[tuple[str, str], ...] | dict[str, str]) -> str:
    """``name{k="v",...}`` with label values escaped as in PromQL (a newline in a value cannot break a
    message into paragraphs; quotes and backslashes stay readable)."""
    items = sorted(labels.items()) if isinstance(labels, dict) else labels
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def timestamp_problem(x: float, shown: str | None = None, unit: str = "") -> str | None:
    """Why ``x`` is not a plausible unix time in seconds (a phrase naming the likely cause), or None.

    ``shown``: the value as the file spells it (default: the number). ``unit``: "" for a plain number
    (whose unit may be wrong: a large one is reported as milliseconds, microseconds or nanoseconds),
    "text" for a date and time (RFC 3339), "typed" for a timestamp-typed column (its unit is known, so a
    far-future time is a unit mistake made before it was stored)."""
    what = shown if shown is not None else f"timestamp {show_number(x)}"
    if not np.isfinite(x):
        return f"expected a finite unix time in seconds, got {what}"
    if not unit:
        for above, name, factor in _UNITS:
            if x >= above:
                return f"{what} looks like {name} since the epoch; expected unix seconds (divide by {factor})"
    if x < MIN_UNIX_SECONDS:
        return f"{what} is before 1970-01-01; expected a time from 1970 to 2200 (a sign or offset mistake?)"
    if x >= MAX_UNIX_SECONDS:
        cause = " (milliseconds or finer stored as seconds?)" if unit == "typed" and x >= _UNITS[-1][0] else \
            "" if unit == "text" else " (a unit or offset mistake?)"
        return f"{what} is after 2200-01-01; expected a time from 1970 to 2200{cause}"
    return None


def bad_timestamps(t: FloatArray) -> npt.NDArray[np.bool_]:
    """Which of ``t`` :func:`timestamp_problem` refuses (vectorised)."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(t) | (t < MIN_UNIX_SECONDS) | (t >= MAX_UNIX_SECONDS)


def show_number(x: float) -> str:
    """A sample or timestamp as a message shows it: integral values without '.0', others in full."""
    if not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    return repr(float(x))


def checked_series(name: str, labels: dict[str, str], t: FloatArray, v: FloatArray, source: str) -> Series:
    """Validate one series' samples; raise :class:`ExportError` naming file and series."""
    desc = describe(name, tuple(sorted(labels.items())))
    if t.size == 0:
        raise ExportError(f"{source}: series {desc}: no samples")
    if not np.all(np.isfinite(t)):
        raise ExportError(f"{source}: series {desc}: timestamps must be finite numbers")
    bad = bad_timestamps(t)
    if bad.any():
        i = int(np.argmax(bad))
        raise ExportError(f"{source}: series {desc}: sample {i + 1}: {timestamp_problem(float(t[i]))}")
    dt = np.diff(t)
    if np.any(dt == 0):
        at = float(t[1:][dt == 0][0])
        raise ExportError(f"{source}: series {desc}: duplicate timestamp {at:.3f}")
    if np.any(dt < 0):
        at = float(t[1:][dt < 0][0])
        raise ExportError(f"{source}: series {desc}: timestamps are not in increasing order at {at:.3f}")
    keep = ~np.isnan(v)
    if np.any(np.isinf(v[keep])):
        raise ExportError(f"{source}: series {desc}: infinite sample value")
    if not keep.any():  # (an empty series used to reach the fit and fail there with an IndexError)
        raise ExportError(f"{source}: series {desc}: every sample is NaN (stale); export a range in which "
                          f"the series has data, or leave the series out")
    return Series(name, tuple(sorted(labels.items())), t[keep], v[keep], source)


class SeriesStore:
    """All series of a model's exports, indexed by metric name."""

    def __init__(self, series: list[Series]) -> None:
        self._by_name: dict[str, list[Series]] = {}
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        for s in series:
            key = (s.name, s.labels)
            if key in seen:
                where = "appears twice in this file" if seen[key] == s.source else f"also appears in {seen[key]}"
                raise ExportError(f"{s.source}: series {s.describe()} {where}")
            seen[key] = s.source
            self._by_name.setdefault(s.name, []).append(s)
        for items in self._by_name.values():
            items.sort(key=lambda s: s.labels)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def select(self, name: str, matchers: tuple[tuple[str, str], ...]) -> list[Series]:
        return [s for s in self._by_name.get(name, []) if all(s.label(k) == v for k, v in matchers)]

    def time_range(self) -> tuple[float, float]:
        starts = [float(s.t[0]) for items in self._by_name.values() for s in items if s.t.size]
        ends = [float(s.t[-1]) for items in self._by_name.values() for s in items if s.t.size]
        if not starts:
            raise ExportError("the exports contain no samples")
        return min(starts), max(ends)


class DuplicateKey(ValueError):
    """A JSON object with the same key twice (Python's reader would silently keep the last one)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` for :func:`json.loads`: a key given twice is an error, not a silent overwrite
    (two values of one label, two steps in a sidecar)."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def read_export(path: Path, display: str, what: str, root: Path | None = None) -> bytes:
    """The bytes of an export file: a regular, non-empty file of at most :data:`MAX_EXPORT_BYTES` (inside
    ``root`` when given). A FIFO, a directory, a symlink out of the repository or a dangling one is
    refused without being read (:mod:`driftgate.fsio`); ``what`` says what the file should hold."""
    try:
        raw = read_bytes(path, display, MAX_EXPORT_BYTES, root, what="export")
    except FileRefused as exc:
        raise ExportError(str(exc)) from None
    if not raw:
        raise ExportError(f"{display}: the export is empty; expected {what}")
    return raw
