"""What the rules count per window, exactly as Prometheus 2.x and 3.x compute it, vectorised.

The rules (:mod:`driftgate.render.rules`) count in two stages, so that no rule reads a window's worth
of raw samples at every evaluation:

1. **per rule evaluation** (every ``step`` = the rule group's interval), per raw series, what it
   counted since the previous evaluation (:func:`driftgate.render.rules.step_counted`):
   ``x - x offset step`` (the instant values now and one step ago: the last sample at or before each
   instant within Prometheus' 5-minute lookback), or, when the counter dropped in between (a drop
   from the previous value, or ``resets()`` inside the step's range), ``x``: the counter restarted
   from zero and counted ``x`` since. Nothing when either instant has no sample. Summed per version
   and ``le`` *after* the per-series step, so a pod restart is a counter reset, not a fake drop of the
   sum; recorded once.
2. **per window** ``w``: ``sum_over_time`` of the recorded step series over ``[t - w + 1ms, t]``
   (left-open on both Prometheus versions), i.e. the ``n = floor((w - 1ms) / step) + 1`` evaluations
   ``t, t - step, ..., t - (n - 1) step``. The instants of consecutive evaluations are exactly one step
   apart (Prometheus aligns a group's evaluations to its interval), so the steps telescope: without a
   reset a window counts ``x(t) - x(t - n step)``, each increment of the counter in exactly one step.

A window counts the events between the sample at or before its start and its last sample: every
increment once, in consecutive windows too. The cost in Prometheus is a few samples per raw series per
evaluation plus one recorded sample per step of the window, whatever the window.

An export coarser than the lookback is read with a lookback of two of its steps (:func:`lookback`).
Known difference from a live server: a series that disappears gets a staleness marker there, so its
instant value is gone at once, where the exports keep it for the lookback (5 minutes). Its step
increments are 0 either way (the value no longer moves), so the counts are the same. A server run with
another ``--query.lookback-delta`` differs only where a series has a gap longer than the lookback.
"""

from __future__ import annotations

import numpy as np

from driftgate.exports.series import FloatArray, Series

RANGE_SHORTENING = 0.001  # seconds: the 1 ms by which every rendered range is shorter than its window
LOOKBACK = 300.0  # Prometheus' default --query.lookback-delta: how old an instant vector's sample may be


def range_seconds(window: float) -> float:
    """The span a rule's range selector covers for a window of ``window`` seconds."""
    return window - RANGE_SHORTENING


def steps_in(window: float, step: float) -> int:
    """How many recorded evaluations (``step`` apart, one at the window's end) a window holds."""
    return int(np.floor(range_seconds(window) / step + 1e-9)) + 1


def repaired(v: FloatArray) -> FloatArray:
    """Cumulative values with counter resets undone: ``R[i] = V[i] + sum of V[j-1] at resets j <= i``."""
    if v.size < 2:
        return v.copy()
    drops = np.zeros_like(v)
    d = np.diff(v)
    drops[1:] = np.where(d < 0, v[:-1], 0.0)
    return v + np.cumsum(drops)


def lookback(t: FloatArray) -> float:
    """How old a sample an instant lookup of this series may return: Prometheus' lookback, or two of
    the series' own steps when the export is coarser than that (a downsampled history of a series the
    server scraped far more often: a 10-minute export would otherwise never have a value one step ago)."""
    if t.size < 2:
        return LOOKBACK
    return max(LOOKBACK, 2.0 * float(np.median(np.diff(t))))


def _instant(t: FloatArray, u: FloatArray, back: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the sample an instant vector selector returns at each ``u`` (the last at or before
    ``u``, no older than ``back``: left-open, as in Prometheus 3.x), and whether there is one."""
    idx = np.searchsorted(t, u, side="right") - 1
    ok = idx >= 0
    idx = np.clip(idx, 0, t.size - 1)
    return idx, ok & (t[idx] > u - back)


def step_increments(s: Series, u: FloatArray, step: float) -> tuple[FloatArray, FloatArray]:
    """What ``s`` counted in the rule evaluation step ending at each ``u`` (module docstring, stage 1);
    returns ``(value, present)`` (present is 0/1)."""
    t, v = s.t, s.v
    if t.size == 0:
        return np.zeros(u.size), np.zeros(u.size)
    back = lookback(t)
    now, ok_now = _instant(t, u, back)
    then, ok_then = _instant(t, u - step, back)
    cur, prev = v[now], v[then]
    # resets(x[step - 1ms]): drops between consecutive samples both inside [u - step + 1ms, u].
    drops = np.concatenate([[0], np.cumsum(np.diff(v) < 0)])
    first = np.searchsorted(t, u - range_seconds(step), side="left")
    last = np.searchsorted(t, u, side="right") - 1
    inside = np.where(last > first, drops[np.clip(last, 0, t.size - 1)] - drops[np.clip(first, 0, t.size - 1)], 0)
    reset = (cur < prev) | (inside > 0)
    ok = ok_now & ok_then
    value = np.where(ok, np.where(reset, cur, cur - prev), 0.0)
    return value, ok.astype(np.float64)


def _lattice(eval_t: FloatArray, window: float, step: float) -> tuple[FloatArray, np.ndarray, int]:
    """The evaluation instants the windows ending at ``eval_t`` are made of: a grid ``step`` apart
    through ``eval_t[0]``; returns it, the grid index of each ``eval_t`` and the steps per window."""
    n = steps_in(window, step)
    k = np.rint((eval_t - eval_t[0]) / step).astype(np.int64)
    if not np.allclose(eval_t[0] + k * step, eval_t, rtol=0.0, atol=1e-6):
        raise ValueError("evaluation instants must lie on one grid of the rule evaluation step")
    grid = eval_t[0] + step * np.arange(-(n - 1), int(k.max()) + 1, dtype=np.float64)
    return grid, k + (n - 1), n


def _window_sum(per_step: FloatArray, ends: np.ndarray, n: int) -> FloatArray:
    """Sum of ``per_step[e - n + 1 .. e]`` for each end index ``e`` (the grid starts n - 1 before)."""
    c = np.concatenate([[0.0], np.cumsum(per_step)])
    out: FloatArray = c[ends + 1] - c[ends + 1 - n]
    return out


def summed_window(series: list[Series], eval_t: FloatArray, window: float,
                  step: float) -> tuple[FloatArray, FloatArray]:
    """``sum_over_time(sum(<step increments>)[window])`` over ``series`` at each ``eval_t`` (module
    docstring); also the number of evaluations in each window at which any of them counted (what
    ``count_over_time`` of the recorded step series gives: the version's age in steps)."""
    if eval_t.size == 0:
        return np.zeros(0), np.zeros(0)
    grid, ends, n = _lattice(eval_t, window, step)
    total = np.zeros(grid.size)
    present = np.zeros(grid.size)
    for s in series:
        value, ok = step_increments(s, grid, step)
        total += value
        present = np.maximum(present, ok)
    return _window_sum(total, ends, n), _window_sum(present, ends, n)


def eval_grid(start: float, end: float, step: float, window: float) -> FloatArray:
    """Evaluation times aligned to ``step``, from the first full window to the last sample."""
    first = np.ceil((start + window) / step) * step
    if first > end:
        return np.zeros(0)
    return np.arange(first, end + step / 2, step, dtype=np.float64)
