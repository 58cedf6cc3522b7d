"""Read all export files of one model into a :class:`SeriesStore`, by file type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gen.errors import ExportError
from gen.exports.promjson import read_query_range
from gen.exports.series import Series, SeriesStore
from gen.model import ModelSpec

READERS: dict[str, Callable[[Path, str], list[Series]]] = {
    ".json": read_query_range,
}


def load_store(root: Path, spec: ModelSpec) -> SeriesStore:
    series: list[Series] = []
    for rel in spec.exports:
        suffix = Path(rel).suffix.lower()
        reader = READERS.get(suffix)
        if reader is None:
            raise ExportError(f"{rel}: unsupported export type {suffix!r}; expected one of "
                              f"{', '.join(sorted(READERS))}")
        series.extend(reader(root / rel, rel))
    return SeriesStore(series)
