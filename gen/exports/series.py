"""One time series as read from an export, and the store that selects series by name and labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from driftgate.errors import ExportError

FloatArray = npt.NDArray[np.float64]
MAX_EXPORT_BYTES = 2_000_000_000  # per export file; documented in docs/exports.md


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
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


def checked_series(name: str, labels: dict[str, str], t: FloatArray, v: FloatArray, source: str) -> Series:
    """Validate one series' samples; raise :class:`ExportError` naming file and series."""
    desc = Series(name, tuple(sorted(labels.items())), t, v, source).describe()
    if t.size == 0:
        raise ExportError(f"{source}: series {desc}: no samples")
    if not np.all(np.isfinite(t)):
        raise ExportError(f"{source}: series {desc}: timestamps must be finite numbers")
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


def check_size(path: Path, display: str, what: str) -> None:
    """Raise unless ``path`` exists, is not empty and is at most :data:`MAX_EXPORT_BYTES`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExportError(f"{display}: cannot read export: {exc.strerror}") from exc
    if size == 0:
        raise ExportError(f"{display}: the export is empty; expected {what}")
    if size > MAX_EXPORT_BYTES:
        raise ExportError(f"{display}: the export is {size} bytes; the limit is {MAX_EXPORT_BYTES}")
