"""The fitted baseline of one model: thresholds plus the evidence behind them.

``baselines/<model>.yaml`` is written by ``driftgate fit``, committed, and reviewed like code: a
refit shows up as a diff of numbers *and* of the evidence (history window, sample counts, method,
backtest). ``driftgate render`` reads only this file and the spec, so rendering never refits.
Floats are rounded to 6 significant digits and keys are sorted, so an unchanged fit is byte-identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from gen.errors import BaselineError, Problem

FIT_VERSION = 5
SIG_DIGITS = 6


@dataclass(frozen=True)
class ThresholdFit:
    value: float
    method: str
    exceedance_probability: float
    band_low: float
    band_high: float
    tail_u: float | None
    tail_shape: float | None
    tail_scale: float | None
    tail_exceedances: int
    backtest_alerts: int  # episodes over the history at this threshold
    expected_alerts: float  # what the budget allows over the same history


@dataclass(frozen=True)
class Detection:
    """How fast a reference shift is caught at the median event count (see :mod:`gen.fit.delay`)."""

    shift: str  # e.g. "10% of mass into one bin", "error ratio x2"
    size: float
    delay_minutes: float | None  # None: never crosses the automatic threshold


@dataclass(frozen=True)
class WindowFit:
    window: str  # Prometheus duration, e.g. "15m"
    windows_total: int
    windows_decided: int  # windows with at least min_events events
    events_p05: float
    events_p50: float
    statistic_p50: float
    statistic_tail: float  # 99th percentile in the alerting direction (1st for direction: below)
    statistic_max: float
    noise_coefficient: float  # b: thresholds apply to stat - b * events^-power (see gen.fit.noise)
    noise_power: float
    auto: ThresholdFit
    manual: ThresholdFit
    smallest_shift: float | None  # smallest reference shift the automatic threshold catches
    detection: tuple[Detection, ...]
    seasonality_hour_of_day: float  # share of the statistic's variance explained by the hour of day
    seasonality_hour_of_week: float

@dataclass(frozen=True)
class SignalFit:
    name: str
    kind: str
    statistic: str
    compare_with: str  # drift: "baseline" or "last_week"
    les: tuple[str, ...]  # histogram kinds: bucket bounds as spelled in the exports
    probabilities: tuple[float, ...]  # distribution_drift: baseline share of each bin
    fast: WindowFit
    slow: WindowFit

    def window(self, which: str) -> WindowFit:
        return self.fast if which == "fast" else self.slow


@dataclass(frozen=True)
class Baseline:
    model: str
    spec: str
    input_hash: str
    fit_version: int
    history_start: str  # RFC 3339, UTC
    history_end: str
    history_days: float
    step_seconds: int
    minimum_days: float
    provisional: bool  # history shorter than the spec's minimum: every signal routes to manual
    budget_auto: str
    budget_manual: str
    auto_configurations: int  # signals x windows sharing the automatic budget
    manual_configurations: int
    signals: tuple[SignalFit, ...]

    def signal(self, name: str) -> SignalFit:
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)


def rfc3339(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rounded(x: float) -> float:
    return float(f"{x:.{SIG_DIGITS}g}")


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return rounded(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dumps(baseline: Baseline, header: str) -> str:
    body = yaml.safe_dump(_clean(asdict(baseline)), sort_keys=True, default_flow_style=False, width=1000,
                          allow_unicode=True)
    return header + body


def load(path: Path, display: str) -> Baseline:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError([Problem(display, 0, 0, "", "no baseline; run 'driftgate fit' (or 'make gen')")]) \
            from None
    except yaml.YAMLError as exc:
        raise BaselineError([Problem(display, 0, 0, "", f"not valid YAML: {exc}")]) from None
    try:
        return _baseline(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError([Problem(display, 0, 0, "", f"malformed baseline ({exc!r}); "
                                     f"refit with 'driftgate fit --force'")]) from None


def _threshold(d: dict[str, Any]) -> ThresholdFit:
    return ThresholdFit(**{k: d[k] for k in ThresholdFit.__dataclass_fields__})


def _window(d: dict[str, Any]) -> WindowFit:
    fields = {k: d[k] for k in WindowFit.__dataclass_fields__ if k not in ("auto", "manual", "detection")}
    detection = tuple(Detection(**x) for x in d["detection"])
    return WindowFit(**fields, auto=_threshold(d["auto"]), manual=_threshold(d["manual"]), detection=detection)


def _baseline(data: Any) -> Baseline:
    if not isinstance(data, dict):
        raise TypeError("expected a mapping")
    if data["fit_version"] != FIT_VERSION:
        raise ValueError(f"fit_version {data['fit_version']} is not {FIT_VERSION}")
    signals = tuple(
        SignalFit(name=s["name"], kind=s["kind"], statistic=s["statistic"], compare_with=s["compare_with"],
                  les=tuple(s["les"]),
                  probabilities=tuple(float(x) for x in s["probabilities"]), fast=_window(s["fast"]),
                  slow=_window(s["slow"]))
        for s in data["signals"])
    fields = {k: data[k] for k in Baseline.__dataclass_fields__ if k != "signals"}
    return Baseline(**fields, signals=signals)
