"""Excluded spans (``history.exclude``): stretches of the history that are not normal.

An incident left in the history is learnt as normal: a 25-minute 5% error incident puts the error gate
just above 5%. The fit therefore treats every evaluation whose window ``(t - w, t]`` overlaps an excluded
span ``[from, to)`` as *no decision*, exactly like a window below ``min_events``: it is left out of every
statistic computed from the windowed history (thresholds, tail, bootstrap band, noise terms, events per
window, seasonality) and out of the backtest. The mask is applied once, where the history is built
(:func:`driftgate.fit.signals.history`), so that no consumer can miss it. Samples read over the whole
history (the baseline distribution of a drift signal, a quantile's noise term) leave the spans out too
(:func:`outside`), and the excluded time is not history for ``history.minimum``.

With no span, nothing here changes a number: every function returns its input.
"""

from __future__ import annotations

import numpy as np

from driftgate.exports.series import FloatArray
from driftgate.fit.histogram import Buckets, bins_from_cumulative, bins_over, windowed_cumulative
from driftgate.fit.windows import steps_in
from driftgate.model import ExcludedSpan

Spans = tuple[tuple[float, float], ...]  # merged [start, end) pairs, sorted


def merged(spans: tuple[ExcludedSpan, ...], start: float | None = None, end: float | None = None) -> Spans:
    """The spans as sorted, disjoint ``[start, end)`` pairs (overlapping and touching ones joined), clipped to
    ``[start, end]`` when given (a span wholly outside is dropped)."""
    out: list[list[float]] = []
    for s in sorted(spans, key=lambda x: (x.start, x.end)):
        a, b = float(s.start), float(s.end)
        if start is not None:
            a = max(a, start)
        if end is not None:
            b = min(b, end)
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def seconds_inside(spans: tuple[ExcludedSpan, ...], start: float, end: float) -> float:
    """How much of the history ``[start, end]`` the spans cover (overlaps counted once)."""
    return float(sum(b - a for a, b in merged(spans, start, end)))


def overlapping(t: FloatArray, window: float, spans: Spans) -> np.ndarray:
    """Whether the window ``(t - window, t]`` ending at each ``t`` overlaps a span ``[a, b)``."""
    hit = np.zeros(t.shape, dtype=bool)
    for a, b in spans:
        hit |= (t - window < b) & (t > a)
    return hit


def bins_outside(b: Buckets, end: float, span: float, step: float, spans: Spans) -> FloatArray:
    """:func:`driftgate.fit.histogram.bins_over` (the per-bin counts of ``(end - span, end]``) without what was
    counted inside ``spans``: each span widened to the evaluation grid of ``end`` (``step`` apart) so that the
    rule-evaluation steps subtracted are exactly steps of the whole window."""
    if not spans:
        return bins_over(b, end, span, step)
    first = end - steps_in(span, step) * step  # the whole window counts the steps after this instant
    cum, _ = windowed_cumulative(b, np.array([end], dtype=np.float64), span, step)
    for a, z in spans:
        hi = end - np.floor((end - z) / step + 1e-9) * step
        lo = max(end - np.ceil((end - a) / step - 1e-9) * step, first)
        hi = min(hi, end)
        if hi <= lo:
            continue
        cut, _ = windowed_cumulative(b, np.array([hi], dtype=np.float64), hi - lo, step)
        cum = cum - cut
    row: FloatArray = bins_from_cumulative(np.maximum(cum, 0.0))[0]
    return row
