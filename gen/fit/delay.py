"""Detection delay and the smallest detectable shift, for reference shifts.

For a step change that starts at ``t0``, a sliding window of length ``W`` holds a share
``f = (t - t0) / W`` of shifted traffic. driftgate evaluates the expected statistic of that mixture
at the window's median event count ``n`` (no sampling noise: this is the delay of the *expected*
path), finds the first ``f`` whose excess crosses the automatic threshold, and reports
``f · W + for`` in minutes (the alert's delay; the Argo analysis adds its ``initialDelay``).

Reference shifts:

* distribution drift: a share ``s`` of the mass moves into the bin the baseline uses *most* (the
  hardest place to notice it; ``s = 1`` is an embedding bug that collapses every score, 0.15 a
  feature default that gives 15% of requests one score);
* ratios: the ratio multiplied by a factor (errors x1.5 ... x10; a KPI x0.95 ... x0.5);
* latency quantiles: not simulated here (the baseline keeps no within-bucket shape).

The smallest detectable shift is found by bisection on the full-window statistic.
"""

from __future__ import annotations

import numpy as np

from gen.baseline import Detection
from gen.fit import statistics as st
from gen.fit.noise import Noise
from gen.model import Direction, Signal, SignalKind

DRIFT_SHIFTS = (0.05, 0.15, 0.3, 0.5, 1.0)
ERROR_FACTORS = (1.5, 2.0, 5.0, 10.0)
KPI_FACTORS = (0.95, 0.9, 0.8, 0.5)
STEPS = 200


def _drift_value(signal: Signal, q: np.ndarray, n: float, share: float, f: float) -> float:
    target = np.zeros_like(q)
    target[int(np.argmax(q))] = 1.0
    mix = (1.0 - f) * q + f * ((1.0 - share) * q + share * target)
    return float(st.drift(signal.statistic, (n * mix / mix.sum())[None, :], q)[0])


def _ratio_value(r0: float, factor: float, f: float) -> float:
    return (1.0 - f) * r0 + f * r0 * factor


def detection(signal: Signal, q: np.ndarray, r0: float, n: float, noise: Noise, auto: float,
              for_minutes: float, window_minutes: float) -> tuple[float | None, tuple[Detection, ...]]:
    """``(smallest detectable shift, delays for the reference shifts)`` at ``n`` events per window."""
    below = signal.direction is Direction.BELOW
    sign = -1.0 if below else 1.0

    def crosses(value: float) -> bool:
        excess = value - sign * noise.term(n)
        return excess < auto if below else excess > auto

    sizes: tuple[float, ...]
    if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
        def value(size: float, f: float) -> float:
            return _drift_value(signal, q, n, size, f)
        sizes, label, lo, hi = DRIFT_SHIFTS, "{:.0%} of mass into one bin", 0.0, 1.0
    elif signal.kind in (SignalKind.ERROR_RATIO, SignalKind.KPI_RATIO) and r0 > 0:
        def value(size: float, f: float) -> float:
            return _ratio_value(r0, size, f)
        if below:
            sizes, label, lo, hi = KPI_FACTORS, "ratio x{:g}", 1.0, 0.0
        else:
            sizes, label, lo, hi = ERROR_FACTORS, "ratio x{:g}", 1.0, min(1.0 / r0, 1000.0)
    else:
        return None, ()
    out = []
    for size in sizes:
        delay = None
        for k in range(1, STEPS + 1):
            if crosses(value(size, k / STEPS)):
                delay = k / STEPS * window_minutes + for_minutes
                break
        out.append(Detection(label.format(size), float(size), delay))
    smallest = None
    if crosses(value(hi, 1.0)):
        a, b = lo, hi
        for _ in range(50):
            mid = (a + b) / 2
            a, b = (a, mid) if crosses(value(mid, 1.0)) else (mid, b)
        smallest = float(b)
    return smallest, tuple(out)


def seasonality(t: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Share of the variance of ``x`` explained by hour-of-day and by hour-of-week means."""
    ok = np.isfinite(x)
    t, x = t[ok], x[ok]
    if x.size < 48 or float(np.var(x)) == 0.0:
        return 0.0, 0.0
    out = []
    for period in (86400, 7 * 86400):
        slot = ((t % period) // 3600).astype(int)
        counts = np.bincount(slot)
        means = np.bincount(slot, weights=x) / np.maximum(counts, 1)
        explained = float(np.var(means[slot]) / np.var(x))
        out.append(min(max(explained, 0.0), 1.0))
    return out[0], out[1]
