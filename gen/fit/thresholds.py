"""Thresholds fitted for a target false-rollback rate, not picked by hand.

A configuration (one signal at one window length ``w``) may fire falsely at ``r`` episodes per
second, its share of the model's budget. An excursion above a high level lasts ``d`` on average
(measured on the history, at most ``w``; see :func:`episode_seconds`), so the threshold is the
``1 - p`` quantile of the statistic's marginal distribution under normal traffic, with ``p = r * d``.

Method, chosen by how much history there is (``n`` = non-overlapping windows with a decision):

* ``empirical`` when ``n * p >= 5``: the plain quantile of all windows;
* ``pot_gpd`` otherwise (the usual case for a budget of one per quarter): peaks over threshold,
  as in SPOT (Siffer et al., KDD 2017). Exceedances of the 90th percentile ``u`` among
  non-overlapping windows are fitted with a generalised Pareto tail (``scipy.stats.genpareto``,
  location 0); the threshold is ``u + sigma/xi * ((p/zeta)^-xi - 1)`` with ``zeta`` the share of
  windows above ``u``. The shape ``xi`` is clipped to ``[0, 0.5]``: a few dozen exceedances cannot
  establish a *bounded* tail (a negative shape puts the threshold just above the largest value seen,
  and the backtest then fires), so the tail is assumed at least exponential; a wilder shape than
  0.5 is noise, and an extrapolation past 10x the observed range is not trusted.

The manual band is fitted differently, on the history's *episodes* (:func:`episode_threshold`,
method ``pot_episodes``): its budget is ~30x larger and meant to be used, and an at-least-exponential
tail over a bounded history put it above everything seen (0 held-out pages where 20 were budgeted).

Where the window fit's automatic threshold crosses its own history more often than the budget makes
plausible (:func:`contradicted`), :func:`held_by_history` refits it on the episodes with ``XI_BOUNDS``, or at
the most extreme evaluation.

A 1-day block bootstrap (days resampled with replacement, ``BOOTSTRAP_REPS`` draws, fixed seed)
gives the threshold's 90% band. ``direction: below`` (a KPI that must not drop) fits the negated
statistic. Example: 28 days of 1h windows, budget 1/quarter split over 8 configurations gives
``p <= r * w = 5.8e-5``, ``n = 672``: ``n * p < 0.04``, so the tail fit is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from driftgate.errors import FitError
from driftgate.exports.series import FloatArray

TAIL_QUANTILE = 0.90
MIN_EXCEEDANCES = 10
EMPIRICAL_MIN_EXPECTED = 5.0
XI_BOUNDS = (0.0, 0.5)  # the automatic tier: a tail at least exponential
MANUAL_XI_BOUNDS = (-0.25, 0.5)  # the manual tier's episode fit: bounded tails too, not steeper than -0.25
EPISODE_QUANTILE = 0.99  # the manual tier's episode fit starts at this quantile of the evaluations
BOOTSTRAP_REPS = 100
SEED = 20261125


@dataclass(frozen=True)
class Threshold:
    value: float
    method: str  # "empirical" | "pot_gpd"
    exceedance_probability: float
    band: tuple[float, float]
    tail_u: float | None
    tail_shape: float | None
    tail_scale: float | None
    tail_exceedances: int


def fit_thresholds(values: FloatArray, t: FloatArray, window: float, step: float, rates: list[float],
                   below: bool, what: str) -> list[Threshold]:
    """Thresholds for each false-alarm rate in ``rates`` (per second) on the windowed ``values``."""
    sign = -1.0 if below else 1.0
    ok = np.isfinite(values)
    x, tx = sign * values[ok], t[ok]
    episode = episode_seconds(sign * values, t, step, window)
    ps = [min(rate * episode, 0.5) for rate in rates]
    stride = max(1, round(window / step))
    thinned = x[::stride]
    if thinned.size < 2 * MIN_EXCEEDANCES:
        raise FitError(f"{what}: only {thinned.size} non-overlapping windows with enough events; "
                       f"need at least {2 * MIN_EXCEEDANCES}")
    tail = _tail(thinned)
    bands = _bootstrap(x, tx, stride, ps)
    out = []
    for p, band in zip(ps, bands, strict=True):
        value, method = _level(x, thinned, tail, p)
        lo, hi = sorted((sign * band[0], sign * band[1]))
        out.append(Threshold(sign * value, method, p, (lo, hi), None if tail is None else sign * tail[0],
                             None if tail is None else tail[1], None if tail is None else tail[2],
                             0 if tail is None else tail[3]))
    return out


def episode_seconds(x: FloatArray, t: FloatArray, step: float, window: float) -> float:
    """How long the statistic stays above a high level once it crosses it (clamped to ``[step, window]``).

    False rollbacks are *episodes*: upcrossings of the threshold. If an excursion lasts ``d``, a
    per-evaluation exceedance probability ``p`` gives ``p / d`` episodes per second, so the budget
    ``rate`` needs ``p = rate * d``. Assuming ``d = window`` (a spike held for one window) over-states
    ``d`` by 3-10x in practice (measured by bench/quality.py), and the alerts then fire that much
    more often than promised. ``d`` is measured at the 99th percentile (the 90th when that level
    has fewer than 5 excursions), on the evaluation grid; NaN (no decision) ends an excursion.
    """
    finite = np.isfinite(x)
    if finite.sum() < 10:
        return window
    for q in (0.99, 0.90):
        level = float(np.quantile(x[finite], q))
        hot = finite & (x > level)
        starts = hot & ~np.concatenate([[False], hot[:-1]])
        gaps = np.concatenate([[True], np.diff(t) > 1.5 * step])  # a gap in the grid starts a new run
        runs = int(np.count_nonzero(starts | (hot & gaps)))
        if runs >= 5:
            return float(np.clip(step * np.count_nonzero(hot) / runs, step, window))
    return window


def _tail(thinned: FloatArray) -> tuple[float, float, float, int] | None:
    """GPD fit ``(u, xi, sigma, n_exceedances)`` over the 90th percentile, or None when degenerate."""
    u = float(np.quantile(thinned, TAIL_QUANTILE))
    excess = thinned[thinned > u] - u
    if excess.size < MIN_EXCEEDANCES or float(np.ptp(thinned)) == 0.0:
        return None
    xi, sigma = gpd_fit(excess)
    return u, xi, sigma, int(excess.size)


def gpd_fit(excess: FloatArray, bounds: tuple[float, float] = XI_BOUNDS) -> tuple[float, float]:
    """Maximum-likelihood generalised Pareto ``(xi, sigma)`` (location 0), ``xi`` within ``bounds``.

    Grimshaw's profile likelihood: with ``theta = xi / sigma`` the MLE of ``xi`` given ``theta`` is
    ``mean(log1p(theta * x))``, leaving one dimension, which is searched on a log grid and refined by
    golden section (vectorised; scipy's generic ``genpareto.fit`` spent 95% of a fit's time in
    Nelder-Mead overhead for the same answer). With ``bounds[0] >= 0`` (the automatic tier) shapes
    below 0 are not estimated: the tail is taken as exponential (``xi = 0``, ``sigma = mean``), see
    the module docstring. With ``bounds[0] < 0`` (the manual tier, ``MANUAL_XI_BOUNDS``) a bounded tail
    is estimated too, over ``-1 / max(x) < theta < 0``; a shape clipped at ``bounds[0]`` keeps the
    mean excess (``sigma = mean (1 - xi)``).
    """
    x = np.asarray(excess, dtype=np.float64)
    n, mean = x.size, float(x.mean())
    best_xi, best_sigma, best_ll = 0.0, mean, -n * np.log(mean) - n  # the exponential tail

    def profile(theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        xi = np.log1p(np.outer(theta, x)).mean(axis=1)
        return xi, -n * np.log(xi / theta) - n * (1.0 + xi)

    def search(to_theta: Callable[[FloatArray], FloatArray], grid: FloatArray) -> None:
        """Refine the grid's best point (grid: a monotone parameter mapped to theta) by golden section."""
        nonlocal best_xi, best_sigma, best_ll
        _, lls = profile(to_theta(grid))
        i = int(np.argmax(lls))
        if not lls[i] > best_ll:
            return
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        golden = (np.sqrt(5.0) - 1.0) / 2.0
        for _ in range(40):
            a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
            la, lb = profile(to_theta(np.array([a, b])))[1]
            lo, hi = (lo, b) if la >= lb else (a, hi)
        theta = to_theta(np.array([(lo + hi) / 2.0]))
        xi_arr, ll_arr = profile(theta)
        if float(ll_arr[0]) > best_ll:
            best_xi, best_sigma, best_ll = float(xi_arr[0]), float(xi_arr[0]) / float(theta[0]), float(ll_arr[0])

    search(np.exp, np.log(np.logspace(-4, 4, 161) / mean))
    if bounds[0] < 0.0 and float(x.max()) > 0.0:
        # theta = -(1 - e^-g) / max(x) for g = e^lg > 0: spans (-1 / max(x), 0), dense near both ends.
        top = float(x.max())
        with np.errstate(divide="ignore", invalid="ignore"):
            search(lambda lg: np.expm1(-np.exp(lg)) / top, np.log(np.logspace(-4, 1.2, 121)))
    xi_clipped = float(np.clip(best_xi, *bounds))
    if xi_clipped != best_xi:  # keep the tail's scale consistent with the clipped shape
        if best_xi > 0:
            best_sigma = best_sigma * (1.0 + xi_clipped) / (1.0 + best_xi)
        elif xi_clipped < 0:
            best_sigma = mean * (1.0 - xi_clipped)
        else:
            best_sigma = mean
    return xi_clipped, best_sigma


def _level(x: FloatArray, thinned: FloatArray, tail: tuple[float, float, float, int] | None,
           p: float) -> tuple[float, str]:
    if thinned.size * p >= EMPIRICAL_MIN_EXPECTED:
        return float(np.quantile(x, 1 - p)), "empirical"
    if tail is None:
        # Degenerate tail (e.g. a constant statistic): the largest value seen, honestly labelled.
        return float(np.max(x)), "max_observed"
    u, xi, sigma, n = tail
    ratio = p / (n / thinned.size)
    level = u - sigma * np.log(ratio) if abs(xi) < 1e-9 else u + sigma / xi * (ratio ** (-xi) - 1.0)
    span = float(np.max(thinned) - np.min(thinned))
    return min(float(level), float(np.max(thinned)) + 10 * span), "pot_gpd"


def _bootstrap(x: FloatArray, tx: FloatArray, stride: int, ps: list[float]) -> list[tuple[float, float]]:
    day = np.floor(tx / 86400.0)
    days, idx = np.unique(day, return_inverse=True)
    if days.size < 3:
        return [(v, v) for v in (_level(x, x[::stride], _tail(x[::stride]), p)[0] for p in ps)]
    blocks = [np.flatnonzero(idx == i) for i in range(days.size)]
    rng = np.random.default_rng(SEED)
    draws: list[list[float]] = [[] for _ in ps]
    for _ in range(BOOTSTRAP_REPS):
        pick = rng.integers(0, days.size, days.size)
        sample = np.concatenate([x[blocks[i]] for i in pick])
        thinned = sample[::stride]
        tail = _tail(thinned)
        for i, p in enumerate(ps):
            draws[i].append(_level(sample, thinned, tail, p)[0])
    out = []
    for d in draws:
        lo, hi = np.quantile(np.array(d), [0.05, 0.95])
        out.append((float(lo), float(hi)))
    return out


def episode_threshold(values: FloatArray, t: FloatArray, window: float, rate: float, span: float,
                      below: bool, bounds: tuple[float, float] = MANUAL_XI_BOUNDS) -> Threshold | None:
    """The manual tier's threshold, fitted on *episodes*: the level the statistic crosses ``rate * span``
    times over the history (``span`` seconds of evaluations), or None when the history holds too few
    episodes to fit (the caller then uses :func:`fit_thresholds`).

    Peaks over threshold with runs declustering (Coles 2001, 5.3): the evaluations above ``u`` (the
    ``EPISODE_QUANTILE`` of the evaluations) form episodes, a new one after the statistic was below ``u``
    for longer than one window (or a gap); each episode's peak over ``u`` is fitted with a generalised
    Pareto tail, the shape estimated within ``MANUAL_XI_BOUNDS`` (bounded tails included: the automatic
    tier's "at least exponential" puts a manual band above everything a bounded history held, and it
    never pages). With ``N`` episodes, the threshold is the level a peak exceeds with probability
    ``rate * span / N`` (the ``exceedance_probability`` recorded; ``tail_exceedances`` is ``N``). No
    episode duration enters: the episodes are counted, not inferred from a per-window probability.
    The 90% band resamples the peaks (``BOOTSTRAP_REPS`` draws, fixed seed). ``bounds``: the shape's
    (the automatic tier's fallback, :func:`contradicted`, keeps its at-least-exponential ``XI_BOUNDS``)."""
    sign = -1.0 if below else 1.0
    x = sign * np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if finite.sum() < 2 * MIN_EXCEEDANCES or float(np.ptp(x[finite])) == 0.0:
        return None
    u = float(np.quantile(x[finite], EPISODE_QUANTILE))
    idx = np.flatnonzero(finite & (x > u))
    if idx.size == 0:
        return None
    starts = np.flatnonzero(np.concatenate([[True], np.diff(t[idx]) > window]))
    peaks = np.maximum.reduceat(x[idx], starts) - u
    target = rate * span
    if peaks.size < MIN_EXCEEDANCES or 2.0 * target > peaks.size:
        return None
    p = target / peaks.size
    cap = float(np.max(x[finite])) + 10.0 * float(np.ptp(x[finite]))

    def level(excess: FloatArray) -> tuple[float, float, float]:
        xi, sigma = gpd_fit(excess, bounds)
        at = u - sigma * np.log(p) if abs(xi) < 1e-9 else u + sigma / xi * (p ** (-xi) - 1.0)
        return min(float(at), cap), xi, sigma

    value, xi, sigma = level(peaks)
    rng = np.random.default_rng(SEED)
    draws = [level(peaks[rng.integers(0, peaks.size, peaks.size)])[0] for _ in range(BOOTSTRAP_REPS)]
    lo, hi = sorted(sign * float(q) for q in np.quantile(np.array(draws), [0.05, 0.95]))
    return Threshold(sign * value, "pot_episodes", p, (lo, hi), sign * u, xi, sigma, int(peaks.size))


def plausible_episodes(expected: float, level: float = 0.01) -> int:
    """The most episodes a calibrated threshold shows on its own history with probability ``1 - level``: the
    smallest ``k`` with ``P(Poisson(expected) > k) < level``."""
    from scipy import stats

    return int(stats.poisson.isf(level, expected)) if expected > 0 else 0


def contradicted(seen: int, expected: float) -> bool:
    """Whether ``seen`` episodes on the history the threshold was fitted on contradict the budget's
    ``expected`` (more than :func:`plausible_episodes`): the tail model missed the history's own peaks. The
    window fit samples one evaluation per window and extrapolates from a few dozen of them; a statistic
    whose peaks are short (shorter than its window) hides them between the samples, and the threshold then
    fires on the history itself far more often than promised (bench/compare_stable.py, last_week at low
    traffic: 5 episodes in the fit's own history where 0.05 were budgeted)."""
    return seen > plausible_episodes(expected)


def held_by_history(th: Threshold, values: FloatArray, t: FloatArray, window: float, rate: float, span: float,
                    below: bool) -> Threshold:
    """An automatic threshold ``th`` (fitted by :func:`fit_thresholds` on ``values``) that the history itself
    contradicts (:func:`contradicted`) refitted on the history's episodes (every evaluation's peaks, not one
    sample per window) with the automatic tier's at-least-exponential ``XI_BOUNDS``; with too few episodes, or
    where that fit is contradicted too, the most extreme evaluation (``max_observed``). Only where that is
    stricter; ``th`` itself otherwise."""
    expected = rate * span
    if not contradicted(episodes(values, th.value, below), expected):
        return th
    again = episode_threshold(values, t, window, rate, span, below, XI_BOUNDS)
    if again is None or contradicted(episodes(values, again.value, below), expected):
        top = float(np.nanmin(values) if below else np.nanmax(values))
        band = (min(th.band[0], top), th.band[1]) if below else (th.band[0], max(th.band[1], top))
        again = Threshold(top, "max_observed", th.exceedance_probability, band, None, None, None, 0)
    return again if ((again.value < th.value) if below else (again.value > th.value)) else th


def episodes(values: FloatArray, threshold: float, below: bool) -> int:
    """How many separate times the statistic crossed into alert territory (upcrossings)."""
    hot = values < threshold if below else values > threshold
    hot = np.where(np.isfinite(values), hot, False)
    return int(np.count_nonzero(hot[1:] & ~hot[:-1]) + (1 if hot.size and hot[0] else 0))
