"""Read all export files of one model into a :class:`SeriesStore`, by file type.

The reader is chosen by the longest registered suffix the file name ends with (case-insensitive),
so ``x.predictions.csv`` is a prediction log while ``x.csv`` is a long-format CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from driftgate.errors import ExportError
from driftgate.exports.predictions import read_predictions
from driftgate.exports.promjson import read_query_range
from driftgate.exports.series import Series, SeriesStore
from driftgate.exports.tabular import read_long_csv, read_long_parquet
from driftgate.model import ModelSpec

# Each reader takes (path, display, root): the file, its repository-relative name for messages, and the
# repository (files are read only when they are regular files inside it; see driftgate.fsio).
Reader = Callable[[Path, str, Path | None], list[Series]]
READERS: dict[str, Reader] = {
    ".json": read_query_range,
    ".csv": read_long_csv,
    ".parquet": read_long_parquet,
    ".predictions.csv": read_predictions,
    ".predictions.parquet": read_predictions,
}


def reader_for(rel: str) -> Reader:
    """The reader registered for the longest suffix ``rel`` ends with; an error naming the file otherwise."""
    name = Path(rel).name.lower()
    matches = [suffix for suffix in READERS if name.endswith(suffix) and len(name) > len(suffix)]
    if not matches:
        suffix = Path(rel).suffix.lower()
        raise ExportError(f"{rel}: unsupported export type {suffix!r}; expected one of "
                          f"{', '.join(sorted(READERS))}")
    return READERS[max(matches, key=len)]


def load_store(root: Path, spec: ModelSpec) -> SeriesStore:
    series: list[Series] = []
    for rel in spec.exports:
        series.extend(reader_for(rel)(root / rel, rel, root))
    return SeriesStore(series)
