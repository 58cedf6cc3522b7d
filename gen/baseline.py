"""The fitted baseline of one model: thresholds plus the evidence behind them.

``baselines/<model>.yaml`` is written by ``driftgate fit``, committed, and reviewed like code: a
refit shows up as a diff of numbers *and* of the evidence (history window, sample counts, method,
backtest). ``driftgate render`` reads only this file and the spec, so rendering never refits.
Floats are rounded to 6 significant digits and keys are sorted, so an unchanged fit is byte-identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from driftgate.errors import BaselineError, Problem

FIT_VERSION = 12
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
    """How fast a reference shift is caught at the median event count (see :mod:`driftgate.fit.delay`)."""

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
    noise_coefficient: float  # b: thresholds apply to stat - b * events^-power (see driftgate.fit.noise)
    noise_power: float
    auto: ThresholdFit
    manual: ThresholdFit
    smallest_shift: float | None  # smallest reference shift the automatic threshold catches
    detection: tuple[Detection, ...]
    seasonality_hour_of_day: float  # share of the statistic's variance explained by the hour of day
    seasonality_hour_of_week: float
    # A canary at analysis.canary_weight of the median traffic, on its own series (driftgate.fit.delay.canary).
    # Defaults: what a baseline of fit_version < 8 (read by 'driftgate review' at an older BASE) lacks.
    canary_events: float = 0.0  # events in its full window
    canary_decides_after_minutes: float | None = None  # until its window holds min_events (None: never)
    canary_smallest_shift: float | None = None
    canary_detection: tuple[Detection, ...] = ()


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
    # The spec's fit inputs as fitted (driftgate.fit.run.fit_inputs): key path -> JSON value. Empty in a
    # baseline of fit_version < 11 (read by 'driftgate review' at an older BASE).
    fit_inputs: dict[str, str] = dataclasses.field(default_factory=dict)

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


REFIT = "refit with 'driftgate fit --force'"


def load(path: Path, display: str, any_fit_version: bool = False) -> Baseline:
    """Read and check a baseline file; every problem names its key path (``signals[0].fast.auto.value``).

    The file is read like a spec (:func:`driftgate.spec.yamlload.load_yaml`: size, nesting and alias limits,
    duplicate keys are errors) and checked against the dataclasses above, field by field: a value of the
    wrong type, NaN or infinite, a missing or unknown key would otherwise reach the renderers and end
    in a traceback, or in a rule that can never fire.

    ``any_fit_version`` (``driftgate review`` reading BASE, which may predate a driftgate upgrade): a
    baseline of another fit_version is read as far as it goes: keys this version does not know are
    skipped, and keys it added since, which all have defaults, take them; everything else is checked.
    """
    from driftgate.spec.reader import Reader
    from driftgate.spec.yamlload import load_yaml

    if not path.is_file():
        raise BaselineError([Problem(display, 0, 0, "", "no baseline; run 'driftgate fit' (or 'make gen')")])
    problems: list[Problem] = []
    data, marks = load_yaml(path, display, problems)
    if problems:
        raise BaselineError(problems, hint=REFIT)
    r = Reader(marks)
    if not any_fit_version and isinstance(data, dict) and "fit_version" in data and data["fit_version"] != FIT_VERSION:
        r.error(("fit_version",), f"written by another version of driftgate (fit_version {data['fit_version']!r}, "
                                  f"this one reads {FIT_VERSION})")
        raise BaselineError(r.problems, hint=REFIT)
    baseline = _convert(Baseline, data, (), r, any_fit_version)
    if isinstance(baseline, Baseline):
        _check_signals(baseline, r)
    if r.problems or not isinstance(baseline, Baseline):
        raise BaselineError(r.problems, hint=REFIT)
    return baseline


_BAD = object()  # a value that failed its check (the problem is already recorded)


def _convert(tp: Any, value: Any, path: tuple[str | int, ...], r: Any, lenient: bool = False) -> Any:
    """``value`` as the annotated type ``tp`` (a dataclass, ``tuple[X, ...]``, ``X | None``, or a scalar);
    ``lenient``: unknown keys skipped, missing keys with a default take it (see :func:`load`)."""
    from driftgate.spec.reader import show

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            r.error(path, f"expected a mapping, got {show(value)}")
            return _BAD
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        names = list(fields)
        unknown = set() if lenient else set(value) - set(names)
        for key in sorted(unknown, key=str):
            r.error((*path, key), f"unknown key '{key}' (not written by this version of driftgate)")
        out = {}
        for name in names:
            if name in value:
                out[name] = _convert(hints[name], value[name], (*path, name), r, lenient)
            elif lenient and (fields[name].default is not dataclasses.MISSING
                              or fields[name].default_factory is not dataclasses.MISSING):
                continue  # the dataclass default
            else:
                r.error(path, f"missing required key '{name}'")
                out[name] = _BAD
        if any(v is _BAD for v in out.values()) or unknown:
            return _BAD
        return tp(**out)  # type: ignore[operator]  # tp is a dataclass type here
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        if not isinstance(value, dict):
            r.error(path, f"expected a mapping, got {show(value)}")
            return _BAD
        pairs = {}
        for k, v in value.items():
            if not isinstance(k, str):
                r.error(path, f"expected string keys, got {show(k)}")
                return _BAD
            pairs[k] = _convert(args[1], v, (*path, k), r, lenient)
        return _BAD if any(v is _BAD for v in pairs.values()) else pairs
    if origin is tuple:
        if not isinstance(value, list):
            r.error(path, f"expected a list, got {show(value)}")
            return _BAD
        items = [_convert(args[0], v, (*path, i), r, lenient) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path, r, lenient)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            r.error(path, f"expected a number, got {show(value)}")
            return _BAD
        if not math.isfinite(value):  # a NaN threshold never fires; an infinite one cannot be rendered
            r.error(path, f"expected a finite number, got {value!r}")
            return _BAD
        return float(value)
    for scalar, word in ((bool, "true or false"), (int, "an integer"), (str, "a string")):
        if tp is scalar:
            if not isinstance(value, scalar) or (scalar is int and isinstance(value, bool)):
                r.error(path, f"expected {word}, got {show(value)}")
                return _BAD
            return value
    return value  # an annotation this loader does not know: passed through unchecked


def _check_signals(baseline: Baseline, r: Any) -> None:
    """What the rules need of a histogram fit: bucket bounds ending with +Inf, one share per bin."""
    for i, s in enumerate(baseline.signals):
        where: tuple[str | int, ...] = ("signals", i)
        if s.les and s.les[-1] != "+Inf":
            r.error((*where, "les"), f"expected bucket bounds ending with '+Inf', got {list(s.les)!r}")
        if s.probabilities and len(s.probabilities) != len(s.les):
            r.error((*where, "probabilities"), f"expected one share per bucket ({len(s.les)}), "
                                               f"got {len(s.probabilities)}")
        for j, q in enumerate(s.probabilities):
            if not 0.0 < q <= 1.0:  # the drift rules divide by it and take its logarithm
                r.error((*where, "probabilities", j), f"expected a share in (0, 1], got {q!r}")
        if s.kind == "distribution_drift" and not s.probabilities:
            r.error((*where, "probabilities"), "expected the baseline shares of a distribution_drift signal")
