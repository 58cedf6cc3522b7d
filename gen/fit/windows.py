"""Windowed increases exactly as driftgate's rules compute them in Prometheus 2.x and 3.x, vectorised.

For each evaluation time ``t`` the samples in ``[t - w + 1ms, t]`` are used: the rules render every
range 1 ms shorter than its window (:func:`driftgate.render.promql.range_selector`), which is
left-open ``(t - w, t]`` on both Prometheus 2.x (closed ranges) and 3.x (left-open ranges) for
millisecond timestamps. A sample exactly at the window's start is therefore *not* in the window, on
either version. Per series (``driftgate.render.rules.counted``): without a counter reset in the
window, the plain delta ``max_over_time - min_over_time`` (last minus first sample, no
extrapolation); with one, ``increase(x[w])``: resets repaired (a drop means the counter restarted
from zero, so the previous value is added back), then the delta extrapolated to the window edges
the way ``extrapolatedRate`` does (by at most half an average sample interval, and never below
zero for a counter). Series are summed only *after* their increases are taken: summing first would
turn a pod restart into a fake reset of the sum.

A window with fewer than two samples of a series contributes nothing for that series, like
Prometheus (which drops the series from the result).
"""

from __future__ import annotations

import numpy as np

from driftgate.exports.series import FloatArray, Series

RANGE_SHORTENING = 0.001  # seconds: the 1 ms by which every rendered range is shorter than its window


def range_seconds(window: float) -> float:
    """The span a rule's range selector covers for a window of ``window`` seconds."""
    return window - RANGE_SHORTENING


def repaired(v: FloatArray) -> FloatArray:
    """Cumulative values with counter resets undone: ``R[i] = V[i] + sum of V[j-1] at resets j <= i``."""
    if v.size < 2:
        return v.copy()
    drops = np.zeros_like(v)
    d = np.diff(v)
    drops[1:] = np.where(d < 0, v[:-1], 0.0)
    return v + np.cumsum(drops)


def increase(s: Series, eval_t: FloatArray, window: float) -> tuple[FloatArray, FloatArray]:
    """What ``s`` counted in ``window`` at each ``eval_t`` (see the module docstring); returns
    ``(value, present)`` (present is 0/1)."""
    t, v = s.t, s.v
    r = repaired(v)
    window = range_seconds(window)
    i0 = np.searchsorted(t, eval_t - window, side="left")
    i1 = np.searchsorted(t, eval_t, side="right") - 1
    n = i1 - i0 + 1
    ok = n >= 2
    i0c = np.clip(i0, 0, t.size - 1)
    i1c = np.clip(i1, 0, t.size - 1)
    result = np.where(ok, r[i1c] - r[i0c], 0.0)
    sampled = np.where(ok, t[i1c] - t[i0c], 1.0)
    avg = sampled / np.maximum(n - 1, 1)
    to_start = t[i0c] - (eval_t - window)
    to_end = eval_t - t[i1c]
    first = v[i0c]
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first >= 0), sampled * (first / np.where(result > 0, result, 1.0)),
                           np.inf)
    to_start = np.minimum(to_start, to_zero)
    threshold = avg * 1.1
    span = sampled + np.where(to_start < threshold, to_start, avg / 2) + np.where(to_end < threshold,
                                                                                 to_end, avg / 2)
    value = np.where(ok, result * (span / sampled), 0.0)
    # Without a reset in the window: the plain delta, no extrapolation (max_over_time - min_over_time).
    resets = np.concatenate([[0], np.cumsum(np.diff(v) < 0)])
    value = np.where(resets[i1c] == resets[i0c], result, value)
    return value, ok.astype(np.float64)


def summed_increase(series: list[Series], eval_t: FloatArray, window: float) -> tuple[FloatArray, FloatArray]:
    """``sum(increase(x[window]))`` over ``series``; ``present`` is 1 where any series had a value."""
    total = np.zeros(eval_t.size)
    present = np.zeros(eval_t.size)
    for s in series:
        value, ok = increase(s, eval_t, window)
        total += value
        present = np.maximum(present, ok)
    return total, present


def eval_grid(start: float, end: float, step: float, window: float) -> FloatArray:
    """Evaluation times aligned to ``step``, from the first full window to the last sample."""
    first = np.ceil((start + window) / step) * step
    if first > end:
        return np.zeros(0)
    return np.arange(first, end + step / 2, step, dtype=np.float64)
