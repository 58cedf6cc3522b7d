"""``driftgate fit``: from a spec and its exports to a :class:`driftgate.baseline.Baseline`.

The budget is split evenly: the automatic budget over the auto-tier signals x 2 windows, the
manual-review budget over all signals x 2 windows. A history shorter than ``history.minimum``
still produces thresholds, marked *provisional*: render then routes every signal to manual
rollback, never silently to an automatic one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from driftgate.baseline import FIT_VERSION, Baseline, SignalFit, ThresholdFit, WindowFit, rfc3339
from driftgate.errors import ExportError, FitError
from driftgate.exports.load import load_store
from driftgate.exports.predictions import MAX_SIDECAR_BYTES, SIDECAR_SUFFIX, sidecar_path
from driftgate.exports.series import MAX_EXPORT_BYTES, FloatArray, Series, SeriesStore
from driftgate.fit.delay import canary, canary_counts, detection, seasonality
from driftgate.fit.evidence import Evidence, ExcludedEvidence, SignalEvidence, hourly, versions_in
from driftgate.fit.exclude import bins_outside, seconds_inside
from driftgate.fit.histogram import bins_over
from driftgate.fit.inputs import fit_inputs
from driftgate.fit.noise import Noise, noise_for, quantile_sd
from driftgate.fit.signals import SignalData, Stable, StatHistory, history, resolve
from driftgate.fit.thresholds import Threshold, episode_threshold, episodes, fit_thresholds, held_by_history
from driftgate.fsio import FileRefused, read_bytes, refusal
from driftgate.model import Direction, ModelSpec, SignalKind, Statistic, Tier

PREDICTION_SUFFIXES = (".predictions.csv", ".predictions.parquet")  # the exports with a sidecar


def input_hash(root: Path, spec: ModelSpec) -> str:
    """Hash of everything a fit depends on: :func:`fit_inputs` and the export bytes."""
    relevant = {"fit_version": FIT_VERSION, "inputs": fit_inputs(spec), "exports": list(spec.exports)}
    h = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode())
    for rel in spec.exports:
        # A prediction log's sidecar (bucket bounds, step) is part of the input too.
        for path, limit, what in ((root / rel, MAX_EXPORT_BYTES, "export"),
                                  (sidecar_path(root / rel), MAX_SIDECAR_BYTES, "sidecar")):
            if what == "sidecar" and (not rel.lower().endswith(PREDICTION_SUFFIXES)
                                      or refusal(path, root) == "file not found"):
                continue
            # Regular files inside the repository only: a FIFO would block, a link out is not read.
            try:
                data = read_bytes(path, rel if what == "export" else rel + SIDECAR_SUFFIX, limit, root, what)
            except FileRefused as exc:
                raise ExportError(str(exc)) from None
            h.update(path.name.encode() + b"\0")
            h.update(data)
    return "sha256:" + h.hexdigest()


def fit_model(root: Path, spec: ModelSpec) -> Baseline:
    return fit_model_full(root, spec)[0]


def fit_model_full(root: Path, spec: ModelSpec) -> tuple[Baseline, Evidence]:
    """The baseline and the evidence the plan's pictures are drawn from."""
    store = load_store(root, spec)
    start, end = store.time_range()
    _check_two_samples(store, spec.spec_path)
    # The statistic is computed at every rule evaluation, as the rules record it (driftgate.fit.windows).
    step = float(spec.prometheus.evaluation_interval.seconds)
    _check_continuous(store, start, end)
    n_auto = 2 * max(1, sum(1 for s in spec.signals if s.tier is Tier.AUTO))
    n_manual = 2 * len(spec.signals)
    auto_rate = spec.budget.rate_per_second / n_auto
    manual_rate = spec.manual_budget.rate_per_second / n_manual
    fits = []
    evidence = Evidence(spec.name, excluded=tuple(
        ExcludedEvidence(rfc3339(x.start), rfc3339(x.end), x.reason) for x in spec.exclude),
        versions=versions_in((s for name in store.names for s in store.select(name, ())),
                             spec.prometheus.version_label))
    for_minutes = spec.alert_for_seconds / 60
    for sig in spec.signals:
        data = resolve(spec, sig, store, start, end)
        windows = []
        traces = []
        for which, w in sig.windows.items():
            what = f"{spec.spec_path}: signal '{sig.name}' window {which} ({w})"
            wide = _wide_spacing(data, float(w.seconds), w.text)
            if wide:  # no window holds two samples: Prometheus' increase() would never have a value
                raise FitError(f"{what}: {wide}")
            hist = history(data, float(w.seconds), start, end, step, what,
                           Stable(spec.analysis.canary_weight, float(spec.release.horizon.seconds),
                                  spec.prometheus.version_label))
            try:
                wfit, decision = _window_fit(hist, data, w.text, float(w.seconds), step, auto_rate, manual_rate,
                                             for_minutes, spec.analysis.canary_weight, what)
            except FitError as exc:  # too few decided windows: say so when the samples leave a long gap
                note = _gap_note(data, float(w.seconds), w.text)
                if not note:
                    raise
                raise FitError(f"{exc}; {note}", exc.hint) from None
            windows.append(wfit)
            traces.append(hourly(hist.t, decision, sig.direction is Direction.BELOW, hist.value, hist.events))
        recent: tuple[float, ...] = ()
        if data.buckets is not None and sig.kind is SignalKind.DISTRIBUTION_DRIFT:
            recent = tuple(float(b) for b in bins_over(data.buckets, end, float(sig.windows.slow.seconds), step))
        evidence.signals[sig.name] = SignalEvidence(traces[0], traces[1], recent)
        fits.append(SignalFit(
            name=sig.name, kind=sig.kind.value, statistic=sig.statistic.value, compare_with=sig.compare_with,
            les=data.buckets.les if data.buckets is not None else (),
            probabilities=tuple(float(x) for x in data.baseline_q), fast=windows[0], slow=windows[1]))
    days = (end - start) / 86400.0
    excluded = seconds_inside(spec.exclude, start, end)  # not history: history.minimum counts without it
    baseline = Baseline(
        model=spec.name, spec=spec.spec_path, input_hash=input_hash(root, spec), fit_version=FIT_VERSION,
        history_start=rfc3339(start), history_end=rfc3339(end), history_days=days, step_seconds=int(step),
        minimum_days=spec.min_history.seconds / 86400.0,
        provisional=end - start - excluded < spec.min_history.seconds, excluded_days=excluded / 86400.0,
        budget_auto=spec.budget.text, budget_manual=spec.manual_budget.text,
        auto_configurations=n_auto, manual_configurations=n_manual, signals=tuple(fits),
        fit_inputs=fit_inputs(spec))
    return baseline, evidence


def _check_two_samples(store: SeriesStore, where: str) -> None:
    if not any(s.t.size > 1 for name in store.names for s in store.select(name, ())):
        raise FitError(f"{where}: history.exports: no series has two or more samples, so no increase can be "
                       f"computed; export a longer range")


def _check_continuous(store: SeriesStore, start: float, end: float) -> None:
    """The first (last) instant of the history must not stand alone, further than half the history (and a
    day) from any other sample: that is a stray timestamp (a sample from 1970 among 2026's) or the only
    sample left among stale ones, and the fit would count the gap as history (history_days, and so the
    provisional flag, would be wrong). Gaps inside the history (a version that was away and came back) are
    no-decision windows, not an error."""
    span = end - start
    limit = max(0.5 * span, 86400.0)
    series = [s for name in store.names for s in store.select(name, ()) if s.t.size]
    for edge in (start, end):
        # The sample of each series nearest to the edge that is not the edge itself.
        near = [float(x[0]) for s in series
                if (x := (s.t[s.t > start][:1] if edge == start else s.t[s.t < end][-1:])).size]
        if not near:
            continue
        other = min(near, key=lambda x: abs(x - edge))
        if abs(other - edge) <= limit:
            continue
        alone = next(x for x in series if edge in (float(x.t[0]), float(x.t[-1])))
        lo, hi = sorted((edge, other))
        raise FitError(f"{alone.source}: series {alone.describe()}: the sample at {rfc3339(edge)} is {_span(hi - lo)} "
                       f"from any other sample of the exports (from {rfc3339(lo)} to {rfc3339(hi)}), more than half "
                       f"of the history ({_span(span)}): a stray timestamp, or the only sample left among stale (NaN) "
                       f"ones? The fit would count the gap as history; export one continuous range")


def _window_fit(hist: StatHistory, data: SignalData, text: str, window: float, step: float, auto_rate: float,
                manual_rate: float, for_minutes: float, canary_weight: float,
                what: str) -> tuple[WindowFit, FloatArray]:
    sig = data.signal
    values = hist.value
    decided = np.isfinite(values)
    if not decided.any():
        counted = hist.events[np.isfinite(hist.events)]  # (an excluded window's events are NaN)
        most = float(np.max(counted)) if counted.size else 0.0  # how far off min_events is
        raise FitError(f"{what}: no window in the history has {sig.min_events} events (min_events; the most in "
                       f"any window is {most:.0f}); "
                       f"lower min_events or use a longer window")
    below = sig.direction is Direction.BELOW
    sign = -1.0 if below else 1.0
    # The level the ratio's noise term and reference shifts are computed at: the ratio's median, or compared
    # with the stable version (the statistic a difference), the stable side's median ratio.
    level = _q(hist.level, 0.5) if hist.level is not None and np.isfinite(hist.level).any() else None
    r0 = 0.0 if sig.statistic is not Statistic.RATIO else level if level is not None else float(np.nanmedian(values))
    bins = len(data.baseline_q)
    qsd = _quantile_sd(data, hist, step)
    noise = noise_for(sig, bins, min(auto_rate * window, 0.5), r0, qsd)
    # Each tier's noise term is the noise quantile at its own probability: the manual band's, at the manual
    # rate, is smaller, so a drift band floored at zero still pages at the manual budget, not the automatic one.
    mnoise = noise_for(sig, bins, min(manual_rate * window, 0.5), r0, qsd)
    excess, excess_m = _excess(values, hist.events, noise, sign), _excess(values, hist.events, mnoise, sign)
    # The budget's time: the history's evaluations, less those whose window overlaps an excluded span.
    span = float(hist.t[-1] - hist.t[0] + window) - hist.excluded_evaluations * step
    drift = sig.kind is SignalKind.DISTRIBUTION_DRIFT

    def floored(th: Threshold) -> Threshold:
        # A drift statistic minus its expected sampling noise is the shift beyond noise: a threshold below
        # zero (the noise term over-covers a short or steady history, so even its largest window sits
        # below it) would fire for a healthy version with more events than the history had. Floored at
        # zero: never more alerts than the fitted value allows on the history, and none for "no shift".
        return dataclasses.replace(th, value=0.0, method="zero_floor") if drift and th.value < 0 else th

    def manual_on(x: FloatArray) -> Threshold:
        """The manual band fitted on ``x``: on the history's episodes where it has enough of them
        (driftgate.fit.thresholds.episode_threshold), else the window fit; floored like any drift threshold
        (a floored band records the window fit's tail, which the baseline's checks read it as)."""
        th = episode_threshold(x, hist.t, window, manual_rate, span, below)
        if th is None or (drift and th.value < 0):
            (windowed,) = fit_thresholds(x, hist.t, window, step, [manual_rate], below, what)
            th = windowed if th is None else dataclasses.replace(windowed, value=0.0, method="zero_floor")
        return floored(th)

    # (Each rate's fit is independent of the others': the bootstrap draws the same days for every rate.)
    (auto,) = fit_thresholds(excess, hist.t, window, step, [auto_rate], below, what)
    auto = floored(auto)
    auto = floored(held_by_history(auto, excess, hist.t, window, auto_rate, span, below))
    manual = manual_on(excess_m)
    if mnoise != noise:
        # The manual band's line (a_m + b_m n^-k) must never be beyond the automatic one (a + b n^-k) at a count
        # the signal decides at (n >= min_events): a_m <= a + min(0, b - b_m) min_events^-k (mirrored for below).
        gap = min(0.0, noise.coefficient - mnoise.coefficient) * (float(sig.min_events) ** -noise.power
                                                                     if noise.power else 1.0)
        if (manual.value < auto.value - gap) if below else (manual.value > auto.value + gap):
            # Its own line would cross the automatic one: the automatic term it is, the band clamped below.
            mnoise, excess_m = noise, excess
            manual = manual_on(excess)
    manual_value = max(manual.value, auto.value) if below else min(manual.value, auto.value)
    stride = max(1, round(window / step))
    n50 = _q(hist.events, 0.5)
    smallest, detected = detection(sig, data.baseline_q, r0, n50, noise, auto.value, for_minutes, window / 60)
    n_canary, n_stable = canary_counts(sig.compare_with, canary_weight, n50)
    first, canary_smallest, canary_detected = canary(sig, data.baseline_q, r0, n_canary, noise, auto.value,
                                                     for_minutes, window / 60, n_stable)
    by_day, by_week = seasonality(hist.t, values)
    wfit = WindowFit(
        window=text, windows_total=int(values[::stride].size), windows_decided=int(decided[::stride].sum()),
        events_p05=_q(hist.events, 0.05), events_p50=n50,
        statistic_p50=_q(values, 0.5), statistic_tail=_q(values, 0.01 if below else 0.99),
        statistic_max=float(np.nanmax(values)) if not below else float(np.nanmin(values)),
        noise_coefficient=noise.coefficient, noise_power=noise.power,
        auto=_result(auto, auto.value, excess, below, auto_rate * span),
        manual=_result(manual, manual_value, excess_m, below, manual_rate * span),
        smallest_shift=smallest, detection=detected, canary_events=n_canary,
        canary_decides_after_minutes=first, canary_smallest_shift=canary_smallest, canary_detection=canary_detected,
        seasonality_hour_of_day=by_day, seasonality_hour_of_week=by_week,
        manual_noise_coefficient=mnoise.coefficient, stable_p50=level)
    return wfit, excess


def _excess(values: FloatArray, events: FloatArray, noise: Noise, sign: float) -> FloatArray:
    """The statistic less its noise term ``b·n^-k`` (plus, for ``direction: below``); NaN without events."""
    if not noise.coefficient:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = values - sign * np.where(events > 0, noise.coefficient / events**noise.power, np.nan)
    return out


def _series_of(data: SignalData) -> list[Series]:
    return [s for items in data.buckets.by_le for s in items] if data.buckets is not None else \
        [*data.numerator, *data.denominator]


def _wide_spacing(data: SignalData, window: float, text: str) -> str:
    """A series of the signal whose samples are further apart (median) than the window, named; or ""."""
    spaced = [(float(np.median(np.diff(s.t))), s) for s in _series_of(data) if s.t.size > 1]
    wide = [(gap, s) for gap, s in spaced if gap > window]
    if not wide:
        return ""
    gap, s = max(wide, key=lambda e: e[0])
    return (f"{s.source}: series {s.describe()} has one sample every {_span(gap)} (median), more than the "
            f"{text} window, so no window holds two samples and no increase can be computed; export at a "
            f"step well below the window (the scrape interval)")


def _gap_note(data: SignalData, window: float, text: str) -> str:
    """Where the signal's series leave a gap longer than the window (no window there holds two samples),
    naming the file, the series and the gap; "" when there is none."""
    longest = None
    for s in _series_of(data):
        if s.t.size > 1:
            d = np.diff(s.t)
            i = int(np.argmax(d))
            if d[i] > window and (longest is None or d[i] > longest[0]):
                longest = (float(d[i]), s, float(s.t[i]), float(s.t[i + 1]))
    if longest is None:
        return ""
    gap, s, a, b = longest
    return (f"{s.source}: series {s.describe()} has no sample for {_span(gap)} (from {rfc3339(a)} to {rfc3339(b)}), "
            f"longer than the {text} window: export a range without the gap, or fill it")


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 60:.0f}m"


def _quantile_sd(data: SignalData, hist: StatHistory, step: float) -> float:
    """How noisy a quantile signal is per event (:func:`driftgate.fit.noise.quantile_sd` of the history)."""
    sig = data.signal
    if sig.kind is not SignalKind.LATENCY_QUANTILE or data.buckets is None or sig.quantile is None:
        return 0.0
    span = float(hist.t[-1] - hist.t[0]) + 1.0
    return quantile_sd(sig.quantile, bins_outside(data.buckets, float(hist.t[-1]), span, step, data.excluded),
                       data.buckets.bounds)


def _q(x: FloatArray, q: float) -> float:
    return float(np.nanquantile(x, q))


def _result(th: Threshold, value: float, values: FloatArray, below: bool, expected: float) -> ThresholdFit:
    return ThresholdFit(
        value=value, method=th.method, exceedance_probability=th.exceedance_probability,
        band_low=th.band[0], band_high=th.band[1], tail_u=th.tail_u, tail_shape=th.tail_shape,
        tail_scale=th.tail_scale, tail_exceedances=th.tail_exceedances,
        backtest_alerts=episodes(values, value, below), expected_alerts=expected)
