"""The history of each signal's windowed statistic, computed exactly as the deployed rules will.

For every rule evaluation (the grid of ``prometheus.evaluation_interval``), the window ``(t - w, t]``
counts per series what the rules count (:mod:`driftgate.fit.windows`: per-evaluation increments,
summed over the window's evaluations) and gives:

* ``distribution_drift``: per-``le`` counts summed over pods, de-cumulated into bins, smoothed,
  compared with the baseline distribution (PSI / JS / TVD, see :mod:`driftgate.fit.statistics`);
* ``latency_quantile``: ``histogram_quantile(q, <per-le counts>)``;
* ``error_ratio`` / ``kpi_ratio``: counted numerator over counted denominator.

``events`` is the window's denominator (the histogram's ``+Inf`` increase, or the ratio's
denominator). A window with fewer than ``min_events`` events is *no decision* (NaN here), never a pass.
The baseline distribution is the smoothed share of every bin over the whole history.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from driftgate.baseline import rounded
from driftgate.errors import ExportError, FitError
from driftgate.exports.series import FloatArray, Series, SeriesStore, show_number
from driftgate.fit import statistics as st
from driftgate.fit.exclude import Spans, bins_outside, merged, overlapping
from driftgate.fit.histogram import Buckets, bins_from_cumulative, collect_buckets, windowed_cumulative
from driftgate.fit.windows import eval_grid, lattice, step_sums, summed_window, window_sum
from driftgate.model import ModelSpec, Signal, SignalKind
from driftgate.render.promql import selector


@dataclass(frozen=True)
class StatHistory:
    """One signal at one window length over the whole history."""

    t: FloatArray  # evaluation times
    value: FloatArray  # statistic; NaN where there was no decision
    events: FloatArray  # events in each window; NaN where the window overlaps an excluded span
    # compare_with: stable, ratios and quantiles: the stable side's own statistic (the ratio or quantile the
    # canary's is compared with), what the noise term and the reference shifts are computed at; else None.
    level: FloatArray | None = None

    @property
    def excluded_evaluations(self) -> int:
        """How many evaluations were left out for history.exclude (:mod:`driftgate.fit.exclude`)."""
        return int(np.isnan(self.events).sum())


@dataclass(frozen=True)
class SignalData:
    """What a signal's exports hold, resolved once per fit."""

    signal: Signal
    buckets: Buckets | None  # histogram kinds
    baseline_q: FloatArray  # drift: baseline bin probabilities; else empty
    numerator: list[Series]  # ratio kinds
    denominator: list[Series]
    # history.exclude, merged and clipped to the history: every window overlapping one is no decision.
    excluded: Spans = ()


def matchers(spec: ModelSpec, signal: Signal) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*spec.prometheus.selector, *signal.matchers)))


# Kubernetes' pod-template hash (the rollouts-pod-template-hash label Argo Rollouts sets): the decimal
# FNV-32a hash of the template, spelt with rand.SafeEncodeString's alphabet (no vowels, no 0/1/3).
POD_TEMPLATE_HASH = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}")
HINT = "docs/spec.md#the-version-label"


def check_contract(spec: ModelSpec, signal: Signal, metric: str, series: list[Series]) -> None:
    """The data contract the rules and the analysis rely on, checked before anything is fitted: every
    series carries the version label (the rules aggregate by it, the analysis selects the canary by
    it: a series without it is enforced for no version), with values the Rollout will pass."""
    label = spec.prometheus.version_label
    where = f"{spec.spec_path}: signal '{signal.name}' ({metric})"
    missing = [s for s in series if not s.label(label)]
    if missing:
        s = missing[0]
        more = f" (and {len(missing) - 1} more of its {len(series)} series)" if len(missing) > 1 else ""
        raise FitError(
            f"{where}: {s.source}: series {s.describe()}{more} has no '{label}' label "
            f"(prometheus.version_label): the rules group by it and the analysis selects the canary by it, so "
            f"this series would be enforced for no version. Scrape it with the label (a PodMonitor "
            f"'podTargetLabels: [rollouts-pod-template-hash]' gives rollouts_pod_template_hash) or set "
            f"prometheus.version_label to the label that is there; see {HINT}")
    if spec.prometheus.version_pod_label:
        return
    odd = [s for s in series if not POD_TEMPLATE_HASH.fullmatch(s.label(label) or "")]
    if odd:
        s = odd[0]
        raise FitError(
            f"{where}: {s.source}: series {s.describe()}: {label}={s.label(label)!r} is not a pod-template hash, "
            f"but the Rollout passes the canary's hash (podTemplateHashValue: Latest) and the analysis would "
            f"match nothing. If this label holds another version value, set prometheus.version_from: "
            f"{{pod_label: <the pod-template label that holds it>}}; see {HINT}")


# A float64 counter counts by ones up to 2**53; above it increments are lost (and increase() arithmetic
# on values near 1e308 overflows). No request or bucket counter gets there: it is a unit mistake or garbage.
MAX_COUNTER = float(2**53)


def check_counters(series: list[Series]) -> None:
    """Every series a signal reads is a raw counter (``_bucket``, numerator, denominator): its samples are
    never negative and stay below :data:`MAX_COUNTER`. A counter reset (a drop to a smaller value) is fine."""
    for s in series:
        bad = (s.v < 0) | (s.v > MAX_COUNTER)
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        value, at = float(s.v[i]), show_number(float(s.t[i]))
        if value < 0:
            raise ExportError(f"{s.source}: series {s.describe()}: sample at {at}: the counter is "
                              f"{show_number(value)}; expected a raw counter, which is never negative (a gauge, a "
                              f"delta or a rate() exported by mistake?)")
        raise ExportError(f"{s.source}: series {s.describe()}: sample at {at}: the counter is {value:g}, above "
                          f"2^53 ({MAX_COUNTER:.0f}), where a float64 counter can no longer count by ones; "
                          f"expected a raw event counter (a unit mistake or corrupt data?)")


def _side(series: list[Series], matchers: tuple[tuple[str, str, str], ...]) -> list[Series]:
    """The series a ratio side's own matchers select, as Prometheus does: ``=`` exact, ``=~`` fully
    anchored; a missing label is the empty string."""
    def ok(s: Series) -> bool:
        for label, op, value in matchers:
            have = s.label(label) or ""
            if (op == "=" and have != value) or (op == "=~" and re.fullmatch(value, have) is None):
                return False
        return True
    return [s for s in series if ok(s)]


def resolve(spec: ModelSpec, signal: Signal, store: SeriesStore, start: float, end: float) -> SignalData:
    sel = matchers(spec, signal)
    excluded = merged(spec.exclude, start, end)
    where = f"signal '{signal.name}'"
    if signal.is_histogram:
        series = store.select(f"{signal.metric}_bucket", sel)
        if not series:
            raise FitError(f"{spec.spec_path}: {where}: no series {signal.metric}_bucket{_show(sel)} in the "
                           f"exports; exported metrics: {', '.join(store.names) or 'none'}")
        check_contract(spec, signal, f"{signal.metric}_bucket", series)
        check_counters(series)
        buckets = collect_buckets(series, signal.metric)
        q = np.zeros(0)
        if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            whole = float(end - start)
            # The baseline distribution is what normal looks like: the excluded spans' samples left out.
            totals = bins_outside(buckets, end, whole + 1.0, float(spec.prometheus.evaluation_interval.seconds),
                                  excluded)
            if totals.sum() <= 0:
                raise FitError(f"{spec.spec_path}: {where}: {signal.metric}_bucket never increased in the "
                               f"history; there is no distribution to learn")
            # Rounded exactly as the baseline file and the rendered constants carry them, so the fitted
            # history is the statistic Prometheus will compute, not a 1e-4-relative neighbour of it.
            q = np.array([rounded(float(x)) for x in st.baseline_probabilities(totals)])
        return SignalData(signal, buckets, q, [], [], excluded)
    num = _side(store.select(signal.metric, sel), signal.numerator_matchers)
    den = _side(store.select(signal.denominator, sel), signal.denominator_matchers)
    for metric, found, more in ((signal.metric, num, signal.numerator_matchers),
                                (signal.denominator, den, signal.denominator_matchers)):
        if not found:
            shown = selector(metric, sel, more)
            raise FitError(f"{spec.spec_path}: {where}: no series {shown} in the exports; "
                           f"exported metrics: {', '.join(store.names) or 'none'}")
        check_contract(spec, signal, metric, found)
        check_counters(found)
    return SignalData(signal, None, np.zeros(0), num, den, excluded)


WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Stable:
    """What ``compare_with: stable`` needs from the spec: the simulated canary's share of the traffic, the age
    below which a version is a release (``release.horizon``) and the label that names versions."""

    weight: float = 0.15
    horizon: float = 86400.0
    version_label: str = "rollouts_pod_template_hash"


def history(data: SignalData, window: float, start: float, end: float, step: float,
            what: str = "", stable: Stable | None = None) -> StatHistory:
    """The signal's statistic at every rule evaluation of the history (``stable``: for ``compare_with:
    stable``, see :func:`stable_history`)."""
    sig = data.signal
    decided = None
    level = None
    t = eval_grid(start, end, step, window)
    if t.size == 0:
        where = what or f"signal '{sig.name}'"
        raise FitError(f"{where}: the history ({(end - start) / 3600:.1f}h) is shorter than one "
                       f"{window / 60:g}m window")
    if sig.compare_with == "stable":
        value, n, m, level = stable_history(data, t, window, step, stable or Stable())
        decided = (n >= sig.min_events) & (m >= sig.min_events)  # as the rules guard both sides
        with np.errstate(divide="ignore", invalid="ignore"):
            events = np.where(n + m > 0, n * m / (n + m), 0.0)  # what the noise term scales with
    elif data.buckets is not None:
        cum, _ = windowed_cumulative(data.buckets, t, window, step)
        events = cum[:, -1]
        if sig.kind is SignalKind.DISTRIBUTION_DRIFT and sig.compare_with == "last_week":
            # The same window one week earlier, all versions together, smoothed like the rules do.
            before, _ = windowed_cumulative(data.buckets, t - WEEK, window, step)
            q = st.smoothed(bins_from_cumulative(before))
            value = st.drift(sig.statistic, bins_from_cumulative(cum), q)
            # No week before, or too few events in it (a scrape gap): no decision, like the rules.
            value = np.where((t - WEEK - window >= start) & (before[:, -1] >= sig.min_events), value, np.nan)
            # Two samples (this window's n events against last week's m): the noise term scales with
            # n·m/(n+m), as the rules record it; the guard is on the version's own n (and m, above).
            n, m = cum[:, -1], before[:, -1]
            decided = np.isfinite(value) & (n >= sig.min_events)
            with np.errstate(divide="ignore", invalid="ignore"):
                events = np.where(n + m > 0, n * m / (n + m), 0.0)
        elif sig.kind is SignalKind.DISTRIBUTION_DRIFT:
            value = st.drift(sig.statistic, bins_from_cumulative(cum), data.baseline_q)
        else:
            value = st.histogram_quantile(sig.quantile, cum, data.buckets.bounds)
    else:
        num, _ = summed_window(data.numerator, t, window, step)
        events, _ = summed_window(data.denominator, t, window, step)
        value = st.ratio(num, events)
    value = np.where(events >= sig.min_events if decided is None else decided, value, np.nan)
    if data.excluded:
        # history.exclude (driftgate.fit.exclude): a window overlapping an excluded span is not normal, nor is
        # one compared with such a window a week earlier. No decision, and its events are not counted either:
        # every statistic, threshold and backtest of the fit is computed from these two arrays.
        out = overlapping(t, window, data.excluded)
        if sig.kind is SignalKind.DISTRIBUTION_DRIFT and sig.compare_with == "last_week":
            out |= overlapping(t - WEEK, window, data.excluded)
        value = np.where(out, np.nan, value)
        events = np.where(out, np.nan, events)
    if level is not None:
        level = np.where(np.isfinite(value), level, np.nan)
    return StatHistory(t, value, events, level)


# One side of a canary-against-stable comparison, per window: a histogram's cumulative counts ``[time, le]``,
# or a ratio's (numerator, denominator).
Side = FloatArray | tuple[FloatArray, FloatArray]


def compared(sig: Signal, bounds: FloatArray | None, canary: Side,
             stable: Side) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    """The canary's statistic against the stable side's, as the rules compute it (:mod:`driftgate.render.rules`,
    ``compare_with: stable``): drift, the divergence of the canary's smoothed bins from the stable side's;
    a quantile or a ratio, the canary's value *minus* the stable side's. Returns it, both sides' event
    counts and (quantiles and ratios) the stable side's own value."""
    if isinstance(canary, tuple) or isinstance(stable, tuple):
        assert isinstance(canary, tuple) and isinstance(stable, tuple)
        (nc, dc), (ns, ds) = canary, stable
        ours = st.ratio(ns, ds)
        return st.ratio(nc, dc) - ours, dc, ds, ours
    n, m = canary[:, -1], stable[:, -1]
    if sig.kind is SignalKind.DISTRIBUTION_DRIFT:
        value = st.drift(sig.statistic, bins_from_cumulative(canary), st.smoothed(bins_from_cumulative(stable)))
        return value, n, m, None
    assert bounds is not None
    ours = st.histogram_quantile(sig.quantile, stable, bounds)
    return st.histogram_quantile(sig.quantile, canary, bounds) - ours, n, m, ours


def stable_history(data: SignalData, t: FloatArray, window: float, step: float,
                   how: Stable) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    """``compare_with: stable`` at every evaluation ``t``: the history split at random into a simulated canary
    and the rest (:func:`split_buckets`, :func:`split_ratio`), and where the history holds a real release
    beside established versions, the real pair instead (:func:`version_pairs`). Returns the statistic (see
    :func:`compared`), both sides' counts and the stable side's own value (quantiles and ratios)."""
    sig = data.signal
    bounds = data.buckets.bounds if data.buckets is not None else None
    if data.buckets is not None:
        c, s = split_buckets(data.buckets, t, window, step, sig, how.weight)
        value, n, m, level = compared(sig, bounds, np.cumsum(c, axis=1), np.cumsum(s, axis=1))
    else:
        nc, dc, ns, ds = split_ratio(data.numerator, data.denominator, t, window, step, sig, how.weight)
        value, n, m, level = compared(sig, None, (nc, dc), (ns, ds))
    real = version_pairs(data, t, window, step, how)
    if real is not None:
        at, pv, pn, pm, pl = real
        value, n, m = np.where(at, pv, value), np.where(at, pn, n), np.where(at, pm, m)
        if level is not None and pl is not None:
            level = np.where(at, pl, level)
    return value, n, m, level


def _rng(sig: Signal, window: float) -> np.random.Generator:
    """Seeded by the signal's name and window: refits of the same history split it the same way."""
    seed = int.from_bytes(hashlib.sha256(f"{sig.name}/{window:g}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def split_buckets(b: Buckets, t: FloatArray, window: float, step: float, sig: Signal,
                  weight: float) -> tuple[FloatArray, FloatArray]:
    """A history of one version split at random into a simulated canary and the stable version: every rule
    evaluation's increments, bin by bin, each event to the canary with probability ``weight`` (as a traffic
    split routes requests). Returns both sides' bin counts per window ``[time, bin]``."""
    grid, ends, n_steps = lattice(t, window, step)
    cum = np.stack([step_sums(list(items), grid, step)[0] for items in b.by_le], axis=1)
    counts = np.rint(bins_from_cumulative(cum)).astype(np.int64)  # per evaluation, per bin
    canary = _rng(sig, window).binomial(counts, weight)
    rest = counts - canary
    c = np.stack([window_sum(canary[:, k].astype(np.float64), ends, n_steps) for k in range(counts.shape[1])], 1)
    s = np.stack([window_sum(rest[:, k].astype(np.float64), ends, n_steps) for k in range(counts.shape[1])], 1)
    return c, s


# numpy's hypergeometric sampler takes populations below 10**9; no rule evaluation step counts that many.
_HYPERGEOMETRIC_MAX = 10**9 - 1


def split_ratio(numerator: list[Series], denominator: list[Series], t: FloatArray, window: float, step: float,
                sig: Signal, weight: float) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """A ratio's history split at random into a simulated canary and the stable version: at every rule
    evaluation each counted request goes to the canary with probability ``weight`` (binomial), and the
    numerator's events (errors, clicks), which are requests of the denominator, follow the requests they
    belong to (hypergeometric: the canary's share of the step's errors is that of its requests, with the
    right variance). Where a step counted more numerator than denominator events (a ratio that is no
    subset), the numerator is split on its own. Returns the canary's and the stable version's numerator
    and denominator per window."""
    grid, ends, n_steps = lattice(t, window, step)
    a = np.rint(np.maximum(step_sums(numerator, grid, step)[0], 0.0)).astype(np.int64)
    d = np.rint(np.maximum(step_sums(denominator, grid, step)[0], 0.0)).astype(np.int64)
    rng = _rng(sig, window)
    dc = rng.binomial(d, weight)
    nested = (a <= d) & (d <= _HYPERGEOMETRIC_MAX)
    good = np.where(nested, a, 0)
    bad = np.where(nested, d - a, 0)
    ac = np.where(nested, rng.hypergeometric(good, bad, np.where(nested, dc, 0)), rng.binomial(a, weight))
    sums = [window_sum(x.astype(np.float64), ends, n_steps) for x in (ac, dc, a - ac, d - dc)]
    return sums[0], sums[1], sums[2], sums[3]


def version_pairs(data: SignalData, t: FloatArray, window: float, step: float, how: Stable
                  ) -> tuple[np.ndarray, FloatArray, FloatArray, FloatArray, FloatArray | None] | None:
    """The history's own canary-against-stable pairs, as the rules compute them: at each evaluation, the
    young versions (first sample less than ``how.horizon`` earlier) each against the established versions'
    pooled counts over the same window; where several are young, the one with the most events. Returns where
    such a pair decides (both sides at least ``min_events``), its statistic, both counts and the stable side's
    own value (:func:`compared`); None when the history holds one version."""
    sig = data.signal
    by_version: dict[str, list[Series]] = {}
    first: dict[str, float] = {}
    groups = [list(items) for items in data.buckets.by_le] if data.buckets is not None else \
        [data.numerator, data.denominator]
    for items in groups:
        for x in items:
            v = x.label(how.version_label) or ""
            by_version.setdefault(v, [])
            if x.t.size:
                first[v] = min(first.get(v, np.inf), float(x.t[0]))
    if len(by_version) < 2:
        return None

    def side(v: str) -> FloatArray:
        """A version's counts per window: cumulative by le, or (numerator, denominator) side by side."""
        if data.buckets is not None:
            mine = [x for items in data.buckets.by_le for x in items if (x.label(how.version_label) or "") == v]
            return windowed_cumulative(collect_buckets(mine, sig.metric), t, window, step)[0]
        cols = [summed_window([x for x in xs if (x.label(how.version_label) or "") == v], t, window, step)[0]
                for xs in (data.numerator, data.denominator)]
        return np.stack(cols, axis=1)

    sides = {v: side(v) for v in by_version if v in first}
    width = next(iter(sides.values())).shape[1]
    pooled, best = np.zeros((t.size, width)), np.zeros((t.size, width))
    for v, counts in sides.items():
        young = t - first[v] < how.horizon
        pooled += np.where(young[:, None], 0.0, counts)
        more = young & (counts[:, -1] > best[:, -1])
        best = np.where(more[:, None], counts, best)
    n, m = best[:, -1], pooled[:, -1]
    at = (n >= sig.min_events) & (m >= sig.min_events)
    if not at.any():
        return None
    bounds = data.buckets.bounds if data.buckets is not None else None
    if data.buckets is not None:
        value, n, m, level = compared(sig, bounds, best, pooled)
    else:
        value, n, m, level = compared(sig, None, (best[:, 0], best[:, 1]), (pooled[:, 0], pooled[:, 1]))
    return at, value, n, m, level


def _show(sel: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sel) + "}"
