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

A ratio compared with the stable version (``compare_with: stable``) is the canary's ratio minus the stable
version's: the shift moves the canary's alone (the stable version stays at its median ``r0``).

The smallest detectable shift is found by bisection on the full-window statistic.

**Canary rollouts** see it differently (:func:`canary`): the rules judge each version on its own
series (``sum by (<version_label>)``), and a canary's series start at zero when it starts. Its window
holds only canary traffic, all of it shifted from the first minute, but few events: ``n(t) = w · n₅₀ ·
t / W`` for a canary with the share ``w`` of the traffic (``analysis.canary_weight``), until the
window is full at ``t = W``. The statistic is then evaluated at ``f = 1`` and ``n(t)``, with the
noise term at ``n(t)``, from the first minute the window holds ``min_events`` (before that the rule
decides nothing). If the shift has not crossed by ``t = W`` it never will at the median traffic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from driftgate.baseline import Detection
from driftgate.fit import statistics as st
from driftgate.fit.noise import Noise
from driftgate.model import Direction, Signal, SignalKind

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


class _Shifts:
    """The reference shifts of one signal, its statistic under a shift, and the crossing test."""

    def __init__(self, signal: Signal, q: np.ndarray, r0: float, noise: Noise, auto: float) -> None:
        self.signal, self.q, self.r0, self.noise, self.auto = signal, q, r0, noise, auto
        self.below = signal.direction is Direction.BELOW
        self.sizes: tuple[float, ...] = ()
        self.label, self.lo, self.hi = "", 0.0, 0.0
        if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            self.sizes, self.label, self.lo, self.hi = DRIFT_SHIFTS, "{:.0%} of mass into one bin", 0.0, 1.0
        elif signal.kind in (SignalKind.ERROR_RATIO, SignalKind.KPI_RATIO) and r0 > 0:
            if self.below:
                self.sizes, self.label, self.lo, self.hi = KPI_FACTORS, "ratio x{:g}", 1.0, 0.0
            else:
                self.sizes, self.label, self.lo, self.hi = ERROR_FACTORS, "ratio x{:g}", 1.0, min(1.0 / r0, 1000.0)

    def value(self, size: float, f: float, n: float) -> float:
        """The expected statistic of a window with ``n`` events, a share ``f`` of them shifted by ``size``."""
        if self.signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            return _drift_value(self.signal, self.q, n, size, f)
        # Compared with the stable version the statistic is the canary's ratio minus the stable one's (r0).
        minus = self.r0 if self.signal.compare_with == "stable" else 0.0
        return _ratio_value(self.r0, size, f) - minus

    def crosses(self, size: float, f: float, n: float) -> bool:
        excess = self.value(size, f, n) - (-1.0 if self.below else 1.0) * self.noise.term(n)
        return excess < self.auto if self.below else excess > self.auto

    def delays(self, at: Callable[[int], tuple[float, float, float] | None],
               for_minutes: float) -> tuple[Detection, ...]:
        """Per reference shift, the first step ``k`` (1..STEPS) whose ``at(k) = (minutes, f, n)`` crosses
        (``None``: the rule does not decide at that step), as the alert's delay including ``for:``."""
        out = []
        for size in self.sizes:
            delay = None
            for k in range(1, STEPS + 1):
                point = at(k)
                if point is not None and self.crosses(size, point[1], point[2]):
                    delay = point[0] + for_minutes
                    break
            out.append(Detection(self.label.format(size), float(size), delay))
        return tuple(out)

    def smallest(self, n: float) -> float | None:
        """The smallest shift whose full window at ``n`` events crosses (bisection), or None."""
        if not self.crosses(self.hi, 1.0, n):
            return None
        a, b = self.lo, self.hi
        for _ in range(50):
            mid = (a + b) / 2
            a, b = (a, mid) if self.crosses(mid, 1.0, n) else (mid, b)
        return float(b)


def detection(signal: Signal, q: np.ndarray, r0: float, n: float, noise: Noise, auto: float,
              for_minutes: float, window_minutes: float) -> tuple[float | None, tuple[Detection, ...]]:
    """``(smallest detectable shift, delays for the reference shifts)`` at ``n`` events per window,
    for a step change of the whole model (a growing share ``f`` of the window is shifted)."""
    shifts = _Shifts(signal, q, r0, noise, auto)
    if not shifts.sizes:
        return None, ()
    delays = shifts.delays(lambda k: (k / STEPS * window_minutes, k / STEPS, n), for_minutes)
    return shifts.smallest(n), delays


def canary_counts(compare_with: str, weight: float, n50: float) -> tuple[float, float | None]:
    """``(n, m)``: a canary's own events in a full window and, for a two-sample comparison, the other side's,
    from the history's median count ``n50`` (what the noise term reads; ``m`` None: one sample).

    * ``baseline``: the canary holds its share of the traffic, ``w·n50``;
    * ``last_week``: ``n50`` is ``n·m/(n+m)`` of the whole model against its own window a week earlier, about
      ``N/2`` (``n ≈ m = N``): the canary's window holds ``w·N``, compared with last week's ``N``;
    * ``stable``: ``n50`` is already the two-sample count of a canary at the weight against the rest (``n =
      w·N``, ``m = (1 - w)·N``): the canary holds ``n50 / (1 - w)``, the stable side ``n50 / w``."""
    if compare_with == "last_week":
        return weight * 2.0 * n50, 2.0 * n50
    if compare_with == "stable" and 0.0 < weight < 1.0:
        return n50 / (1.0 - weight), n50 / weight
    return weight * n50, None


def canary(signal: Signal, q: np.ndarray, r0: float, n_full: float, noise: Noise, auto: float,
           for_minutes: float, window_minutes: float,
           stable: float | None = None) -> tuple[float | None, float | None, tuple[Detection, ...]]:
    """For a canary whose full window holds ``n_full`` events: ``(minutes until its window first holds
    min_events, smallest detectable shift once the window is full, delays for the reference shifts)``.
    None: never at the median traffic (see the module docstring). ``stable`` (``compare_with: stable``):
    the established versions' events in the window, ``m``; the noise term then reads ``n·m/(n+m)``."""
    if n_full < max(signal.min_events, 1):
        return None, None, ()
    first = window_minutes * signal.min_events / n_full  # the rule decides from here on
    shifts = _Shifts(signal, q, r0, noise, auto)
    if not shifts.sizes:
        return first, None, ()

    def counted(n: float) -> float:
        return n if stable is None else n * stable / (n + stable)

    def at(k: int) -> tuple[float, float, float] | None:
        t = k / STEPS * window_minutes  # the whole window shifted, n(t) events in it
        return (t, 1.0, counted(n_full * k / STEPS)) if t >= first else None

    return first, shifts.smallest(counted(n_full)), shifts.delays(at, for_minutes)


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
