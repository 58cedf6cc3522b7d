"""Classic Prometheus histograms from exports: bucket checks and windowed bin counts.

``<metric>_bucket`` series are grouped by ``le``; each ``le`` value is kept exactly as the export
spells it (``"0.1"``, ``"1.0"``, ``"+Inf"``), because the generated rules must match it verbatim.
Problems that would give a wrong number are errors naming file and series: a missing ``+Inf``
bucket, an ``le`` outside the grammar of :mod:`driftgate.exports.le` (which render checks a
baseline's buckets with too), buckets that are not cumulative (a smaller ``le`` holding
more observations than a larger one at the same instant).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from driftgate.errors import ExportError, quote
from driftgate.exports.le import le_problem, parse_le
from driftgate.exports.series import FloatArray, Series
from driftgate.fit.windows import summed_window


@dataclass(frozen=True)
class Buckets:
    les: tuple[str, ...]  # as spelled in the export, ordered by value, ending with "+Inf"
    bounds: FloatArray  # numeric upper bounds, ending with inf
    by_le: tuple[tuple[Series, ...], ...]  # series per le, same order


def collect_buckets(series: list[Series], metric: str) -> Buckets:
    """Group ``<metric>_bucket`` series by ``le`` and check they form a cumulative histogram."""
    if not series:
        raise ExportError(f"no series named {metric}_bucket in the exports")
    groups: dict[str, list[Series]] = {}
    for s in series:
        le = s.label("le")
        if le is None:
            raise ExportError(f"{s.source}: series {s.describe()} has no 'le' label; "
                              f"{metric}_bucket must be a classic histogram")
        groups.setdefault(le, []).append(s)
    parsed: dict[str, float] = {}
    for le in groups:
        problem = le_problem(le)  # the grammar render checks a baseline's les with (driftgate.exports.le)
        if problem is not None:
            s = groups[le][0]
            raise ExportError(f"{s.source}: series {s.describe()}: le={quote(le)}: {problem}")
        parsed[le] = parse_le(le)
    seen: dict[float, str] = {}
    for le, value in parsed.items():
        if value in seen:
            s = groups[le][0]
            raise ExportError(f"{s.source}: {metric}_bucket has two spellings of the same bucket: "
                              f"le={seen[value]!r} and le={le!r}")
        seen[value] = le
    if np.inf not in seen:
        s = series[0]
        raise ExportError(f"{s.source}: {metric}_bucket has no le=\"+Inf\" bucket; "
                          f"the total count of a histogram lives there")
    if len(seen) < 2:
        raise ExportError(f"{series[0].source}: {metric}_bucket has only the +Inf bucket; "
                          f"a distribution needs at least two buckets")
    les = tuple(sorted(groups, key=lambda le: parsed[le]))
    buckets = Buckets(les, np.array([parsed[le] for le in les]), tuple(tuple(groups[le]) for le in les))
    _check_cumulative(buckets, metric)
    return buckets


def _check_cumulative(b: Buckets, metric: str) -> None:
    """At every shared timestamp of one target, a larger ``le`` must hold at least as much."""
    by_target: dict[tuple[tuple[str, str], ...], dict[str, Series]] = {}
    for le, items in zip(b.les, b.by_le, strict=True):
        for s in items:
            key = tuple(kv for kv in s.labels if kv[0] != "le")
            by_target.setdefault(key, {})[le] = s
    for members in by_target.values():
        present = [le for le in b.les if le in members]
        if "+Inf" not in members and present[-1] != b.les[-1]:
            s = members[present[0]]
            raise ExportError(f"{s.source}: series {s.describe()}: this target has no +Inf bucket")
        if len(present) != len(b.les):
            # The rules sum by le over pods and versions: mixed layouts would make a union of bounds that
            # no series has, and the shares of the missing buckets would be taken from the others.
            s = members[present[0]]
            missing = [le for le in b.les if le not in members]
            raise ExportError(f"{s.source}: series {s.describe()}: {metric}_bucket has another bucket layout than "
                              f"the metric's other series (missing le={', '.join(missing)}); every series of a "
                              f"histogram must have the same buckets (a version with new bounds is a new metric)")
        for lo, hi in itertools.pairwise(present):
            a, c = members[lo], members[hi]
            common, ia, ic = np.intersect1d(a.t, c.t, assume_unique=True, return_indices=True)
            bad = a.v[ia] > c.v[ic] * (1 + 1e-9) + 1e-9
            if np.any(bad):
                at = float(common[bad][0])
                raise ExportError(f"{a.source}: {metric}_bucket is not cumulative: at {at:.0f} "
                                  f"{a.describe()} = {a.v[ia][bad][0]:g} exceeds "
                                  f"{c.describe()} = {c.v[ic][bad][0]:g}")


def windowed_cumulative(b: Buckets, eval_t: FloatArray, window: float, step: float) -> tuple[FloatArray, FloatArray]:
    """``sum by (le) (<what the rules count over window>)`` (:func:`driftgate.fit.windows.summed_window`,
    rule evaluations ``step`` apart) as a ``[time, le]`` matrix, plus the evaluations counted per window."""
    cols = []
    present = np.zeros(eval_t.size)
    for items in b.by_le:
        value, steps = summed_window(list(items), eval_t, window, step)
        cols.append(value)
        present = np.maximum(present, steps)
    return np.stack(cols, axis=1), present


def bins_from_cumulative(cum: FloatArray) -> FloatArray:
    """De-cumulate ``[time, le]`` into bins, clamping extrapolation skew at zero (as the rules do)."""
    bins = np.empty_like(cum)
    bins[:, 0] = cum[:, 0]
    bins[:, 1:] = cum[:, 1:] - cum[:, :-1]
    return np.maximum(bins, 0.0)


def bins_over(b: Buckets, end: float, span: float, step: float) -> FloatArray:
    """Per-bin counts of the one window ``(end - span, end]``: a whole history, or the latest window."""
    cum, _ = windowed_cumulative(b, np.array([end], dtype=np.float64), span, step)
    row: FloatArray = bins_from_cumulative(cum)[0]
    return row
