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


def lookback(t: FloatArray) -> float:
    """How old a sample an instant lookup of this series may return: Prometheus' lookback, or two of
    the series' own steps when the export is coarser than that (a downsampled history of a series the
    server scraped far more often: a 10-minute export would otherwise never have a value one step ago)."""
    if t.size < 2:
        return LOOKBACK
    return max(LOOKBACK, 2.0 * float(np.median(np.diff(t))))


def step_increments(s: Series, grid: FloatArray, step: float) -> tuple[FloatArray, FloatArray]:
    """What ``s`` counted in the rule evaluation step ending at each instant of ``grid`` (evenly ``step``
    apart, as a rule group evaluates; module docstring, stage 1); returns ``(value, present)`` (0/1).

    The instant values are looked up once, at the grid and one step before its start: the value one
    step ago at each instant is the previous instant's (left-open lookback, as in Prometheus 3.x)."""
    t, v = s.t, s.v
    if t.size == 0:
        return np.zeros(grid.size), np.zeros(grid.size)
    at = np.concatenate([[grid[0] - step], grid]) if grid.size else grid
    last = np.searchsorted(t, at, side="right") - 1  # the last sample at or before each instant
    idx = np.clip(last, 0, t.size - 1)
    have = (last >= 0) & (t[idx] > at - lookback(t))
    cur, prev = v[idx[1:]], v[idx[:-1]]
    # resets(x[step - 1ms]): drops between consecutive samples both inside [u - step + 1ms, u].
    drops = np.concatenate([[0], np.cumsum(np.diff(v) < 0)])
    first = np.searchsorted(t, grid - range_seconds(step), side="left")
    inside = np.where(last[1:] > first, drops[idx[1:]] - drops[np.clip(first, 0, t.size - 1)], 0)
    reset = (cur < prev) | (inside > 0)
    ok = have[1:] & have[:-1]
    value = np.where(ok, np.where(reset, cur, cur - prev), 0.0)
    return value, ok.astype(np.float64)


def lattice(eval_t: FloatArray, window: float, step: float) -> tuple[FloatArray, np.ndarray, int]:
    """The evaluation instants the windows ending at ``eval_t`` are made of: a grid ``step`` apart
    through ``eval_t[0]``; returns it, the grid index of each ``eval_t`` and the steps per window."""
    n = steps_in(window, step)
    k = np.rint((eval_t - eval_t[0]) / step).astype(np.int64)
    if not np.allclose(eval_t[0] + k * step, eval_t, rtol=0.0, atol=1e-6):
        raise ValueError("evaluation instants must lie on one grid of the rule evaluation step")
    grid = eval_t[0] + step * np.arange(-(n - 1), int(k.max()) + 1, dtype=np.float64)
    return grid, k + (n - 1), n


def window_sum(per_step: FloatArray, ends: np.ndarray, n: int) -> FloatArray:
    """Sum of ``per_step[e - n + 1 .. e]`` for each end index ``e`` (the grid starts n - 1 before)."""
    c = np.concatenate([[0.0], np.cumsum(per_step)])
    out: FloatArray = c[ends + 1] - c[ends + 1 - n]
    return out


# The per-step sums of the last few series lists fitted (a signal's windows, and signals reading one
# histogram, share one evaluation grid): computed once, not once per window. Keys hold the series
# themselves, so an id is never reused while its entry lives.
_STEP_SUMS: dict[tuple[tuple[int, ...], float, int, float], tuple[tuple[Series, ...], FloatArray, FloatArray]] = {}
_STEP_SUMS_KEPT = 64


def step_sums(series: list[Series], grid: FloatArray, step: float) -> tuple[FloatArray, FloatArray]:
    """Per evaluation of ``grid``: what ``series`` counted together, and whether any of them counted."""
    key = (tuple(id(s) for s in series), float(grid[0]), int(grid.size), float(step))
    hit = _STEP_SUMS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], series, strict=True)):
        return hit[1], hit[2]
    total = np.zeros(grid.size)
    present = np.zeros(grid.size)
    for s in series:
        value, ok = step_increments(s, grid, step)
        total += value
        present = np.maximum(present, ok)
    if len(_STEP_SUMS) >= _STEP_SUMS_KEPT:
        del _STEP_SUMS[next(iter(_STEP_SUMS))]
    _STEP_SUMS[key] = (tuple(series), total, present)
    return total, present


def summed_window(series: list[Series], eval_t: FloatArray, window: float,
                  step: float) -> tuple[FloatArray, FloatArray]:
    """``sum_over_time(sum(<step increments>)[window])`` over ``series`` at each ``eval_t`` (module
    docstring); also the number of evaluations in each window at which any of them counted (what
    ``count_over_time`` of the recorded step series gives: the version's age in steps)."""
    if eval_t.size == 0:
        return np.zeros(0), np.zeros(0)
    grid, ends, n = lattice(eval_t, window, step)
    total, present = step_sums(series, grid, step)
    return window_sum(total, ends, n), window_sum(present, ends, n)


def eval_grid(start: float, end: float, step: float, window: float) -> FloatArray:
    """Evaluation times aligned to ``step``, from the first full window to the last sample."""
    first = np.ceil((start + window) / step) * step
    if first > end:
        return np.zeros(0)
    return np.arange(first, end + step / 2, step, dtype=np.float64)
