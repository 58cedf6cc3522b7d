"""The fitted baseline of one model: thresholds plus the evidence behind them.

``baselines/<model>.yaml`` is written by ``driftgate fit``, committed, and reviewed like code: a
refit shows up as a diff of numbers *and* of the evidence (history window, sample counts, method,
backtest). ``driftgate render`` reads only this file and the spec, so rendering never refits.
Floats are rounded to 6 significant digits and keys are sorted, so an unchanged fit is byte-identical.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from driftgate.errors import BaselineError, Problem

FIT_VERSION = 16
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
    # The manual band's own noise term (the noise quantile at the manual probability); None in a baseline
    # written before it existed (read by 'driftgate review' at an older BASE): the automatic one's.
    manual_noise_coefficient: float | None = None
    # compare_with: stable, ratios and quantiles (the statistic is the canary's value minus the stable version's):
    # the stable side's median value, the ratio the noise term and the reference shifts are computed at. None
    # for every other signal.
    stable_p50: float | None = None

    def noise_of(self, tier: str) -> float:
        """``b`` of ``tier``'s threshold line ``value + b·n^-power`` ("auto" or "manual")."""
        if tier == "manual" and self.manual_noise_coefficient is not None:
            return self.manual_noise_coefficient
        return self.noise_coefficient


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
    # The days of the history inside history.exclude's spans (driftgate.fit.exclude): not history for
    # history.minimum. Written only when > 0 (OMITTED_WHEN_ZERO), so a fit without spans is unchanged.
    excluded_days: float = 0.0

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


# Fields written only when they hold something; a file without them reads their default.
OMITTED_WHEN_ZERO: dict[Any, frozenset[str]] = {Baseline: frozenset({"excluded_days"})}


def dumps(baseline: Baseline, header: str) -> str:
    doc = asdict(baseline)
    for name in OMITTED_WHEN_ZERO[Baseline]:
        if not doc[name]:
            del doc[name]
    body = yaml.safe_dump(_clean(doc), sort_keys=True, default_flow_style=False, width=1000,
                          allow_unicode=True)
    return header + body


REFIT = "refit with 'driftgate fit --force'"


def load(path: Path, display: str, any_fit_version: bool = False, root: Path | None = None) -> Baseline:
    """Read and check a baseline file; every problem names its key path (``signals[0].fast.auto.value``).

    The file is read like a spec (:func:`driftgate.spec.yamlload.load_yaml`: size, nesting and alias limits,
    duplicate keys are errors) and checked against the dataclasses above, field by field: a value of the
    wrong type, NaN or infinite, a missing or unknown key would otherwise reach the renderers and end
    in a traceback, or in a rule that can never fire.

    Then what the values mean (:func:`check_meaning`): every field against what the fit writes into it
    (shares summing to 1, thresholds on the signal's side of its history, noise terms as the fit computes
    them, counts, windows and fit inputs that agree with each other), each problem on its key's line.

    ``any_fit_version`` (``driftgate review`` reading BASE, which may predate a driftgate upgrade): a
    baseline of another fit_version is read as far as it goes: keys this version does not know are
    skipped, and keys it added since, which all have defaults, take them; everything else is checked,
    except what the values mean, which the other version's fit decided.
    """
    from driftgate.spec.reader import Reader
    from driftgate.spec.yamlload import load_yaml

    if not path.is_symlink() and not path.exists():
        raise BaselineError([Problem(display, 0, 0, "", "no baseline; run 'driftgate fit' (or 'make gen')")])
    problems: list[Problem] = []
    data, marks = load_yaml(path, display, problems, root)  # a FIFO, a folder, a link out: refused
    if problems:
        raise BaselineError(problems, hint=REFIT)
    r = Reader(marks)
    if not any_fit_version and isinstance(data, dict) and "fit_version" in data and data["fit_version"] != FIT_VERSION:
        r.error(("fit_version",), f"written by another version of driftgate (fit_version {data['fit_version']!r}, "
                                  f"this one reads {FIT_VERSION})")
        raise BaselineError(r.problems, hint=REFIT)
    baseline = _convert(Baseline, data, (), r, any_fit_version)
    if r.problems or not isinstance(baseline, Baseline):
        raise BaselineError(r.problems, hint=REFIT)
    # What the numbers mean (see check_meaning). A baseline of another fit_version ('driftgate review' of an
    # older BASE) was written under other invariants, which this version does not know: its shape only.
    if baseline.fit_version == FIT_VERSION:
        check_meaning(baseline, r)
    if r.problems:
        raise BaselineError(r.problems)  # every message says how to repair it
    return baseline


_BAD = object()  # a value that failed its check (the problem is already recorded)


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(tp: Any) -> dict[str, Any]:
    """The resolved annotations of a dataclass (``typing.get_type_hints`` is slow; the classes do not change)."""
    if tp not in _HINTS:
        _HINTS[tp] = typing.get_type_hints(tp)
    return _HINTS[tp]


def _convert(tp: Any, value: Any, path: tuple[str | int, ...], r: Any, lenient: bool = False) -> Any:
    """``value`` as the annotated type ``tp`` (a dataclass, ``tuple[X, ...]``, ``X | None``, or a scalar);
    ``lenient``: unknown keys skipped, missing keys with a default take it (see :func:`load`)."""
    from driftgate.spec.reader import show

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            r.error(path, f"expected a mapping, got {show(value)}")
            return _BAD
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        names = list(fields)
        unknown = set() if lenient else set(value) - set(names)
        for key in sorted(unknown, key=str):
            r.error((*path, key), f"unknown key '{key}' (not written by this version of driftgate)")
        out = {}
        for name in names:
            if name in value:
                out[name] = _convert(hints[name], value[name], (*path, name), r, lenient)
            elif (lenient and (fields[name].default is not dataclasses.MISSING
                               or fields[name].default_factory is not dataclasses.MISSING)) \
                    or name in OMITTED_WHEN_ZERO.get(tp, ()):
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


# ------------------------------------------------------------------------------------ what the numbers mean
#
# A baseline that has the right shape can still say something the fit never writes: shares summing to 3.6,
# a negative noise term, a threshold on the wrong side of everything the history held. The renderers would
# turn it into rules that fire for every window or never. ``check_meaning`` checks every field against the
# invariants the fit guarantees (driftgate.fit.run, .thresholds, .noise, .delay, .signals), from a table:
# every field of every dataclass above has its rules in FIELD_RULES (tests/test_baseline_meaning.py keeps
# it that way), so a field a future fit adds is refused by the test until it says what it may hold.
#
# Numbers are compared with the slack of their rounding to SIG_DIGITS significant digits (see _le).

RESTORE = "refit with 'driftgate fit --force' or restore the file"
# Shares are rounded to 6 significant digits, each by at most 5e-6 of itself: their sum by at most 5e-6.
SHARE_SUM_TOLERANCE = 1e-5
_SLACK = 1e-5  # relative: two numbers rounded to 6 significant digits
HOUR_SECONDS = 3600.0
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
METHODS = ("empirical", "pot_gpd", "pot_episodes", "max_observed", "zero_floor")  # driftgate.fit.thresholds, .run
STATISTICS = {"distribution_drift": ("psi", "js", "tvd"), "latency_quantile": ("quantile",),
              "error_ratio": ("ratio",), "kpi_ratio": ("ratio",)}
# The noise term's power by statistic (driftgate.fit.noise): b/n for PSI and JS, b/sqrt(n) otherwise; a
# quantile signal whose rank falls in the +Inf bucket has no term (0, 0).
NOISE_POWERS = {"psi": (1.0,), "js": (1.0,), "tvd": (0.5,), "ratio": (0.5,), "quantile": (0.5, 0.0)}
HISTOGRAM_KINDS = ("distribution_drift", "latency_quantile")


def _n(x: float | None) -> str:
    return "null" if x is None else f"{x:.6g}"


def _le(a: float, b: float, slack: float = _SLACK) -> bool:
    """``a <= b`` up to the rounding of both to SIG_DIGITS digits."""
    return a <= b + slack * (abs(a) + abs(b)) + 1e-300


def _close(a: float, b: float, slack: float = _SLACK) -> bool:
    return _le(a, b, slack) and _le(b, a, slack)


# ---------------------------------------------------------------- the fit inputs, parsed


@dataclass(frozen=True)
class _SignalFacts:
    """What the fit inputs say about one signal (what its numbers were fitted for)."""

    direction: str  # "above" | "below"
    tier: str
    min_events: int


@dataclass(frozen=True)
class _Facts:
    """The fit inputs that were read without a problem, parsed (a key that is absent or has a problem: None)."""

    alert_for_minutes: float | None
    canary_weight: float | None
    minimum_seconds: float | None
    windows: dict[str, dict[str, str]]  # signal -> {"fast": "1h", "slow": "2h"}
    signals: dict[str, _SignalFacts]
    same_signals: bool  # the fit inputs are of the baseline's signals, no more, no fewer
    # history.exclude as [start, end) unix seconds (() when not recorded); None when it has a problem.
    excluded: tuple[tuple[float, float], ...] | None = ()


def _text(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError("expected a non-empty string without surrounding spaces")
    return value


def _json(value: str) -> Any:
    import json

    try:
        return json.loads(value)
    except ValueError:
        raise ValueError("expected JSON text") from None


def _json_number(low: float, high: float, integer: bool = False, low_open: bool = False) -> Callable[[str], float]:
    def parse(value: str) -> float:
        x = _json(value)
        if isinstance(x, bool) or not isinstance(x, int | float) or (integer and not isinstance(x, int)) \
                or not math.isfinite(x) or not (low < x if low_open else low <= x) or not x <= high:
            what = "a whole number" if integer else "a number"
            raise ValueError(f"expected {what} in {'(' if low_open else '['}{low:g}, {high:g}] written as JSON")
        return float(x)
    return parse


def _json_labels(value: str) -> dict[str, Any]:
    x = _json(value)
    if not isinstance(x, dict) or not all(isinstance(k, str) for k in x):
        raise ValueError("expected a JSON object of label matchers")
    return x


def _duration(minimum: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        from driftgate.validate.durations import parse_prom_duration

        seconds = float(parse_prom_duration(value))
        if seconds < minimum:
            raise ValueError(f"expected a duration of at least {minimum:g}s")
        return seconds
    return parse


def _budget(value: str) -> float:
    """A budget's rate per second (the spec's grammar, driftgate.spec.load.parse_budget)."""
    from driftgate.spec.load import parse_budget

    return float(parse_budget(value).rate_per_second)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value
    return parse


def _version_from(value: str) -> str:
    if value != "pod_template_hash" and not re.fullmatch(r"pod_label [A-Za-z0-9_./-]+", value):
        raise ValueError("expected 'pod_template_hash' or 'pod_label <label>'")
    return value


def _windows(value: str) -> dict[str, str]:
    x = _json(value)
    if not isinstance(x, dict) or set(x) != {"fast", "slow"} or not all(isinstance(v, str) for v in x.values()):
        raise ValueError('expected a JSON object {"fast": <duration>, "slow": <duration>}')
    for v in x.values():
        _duration(60)(v)
    return x


# Every fit input driftgate.fit.inputs.fit_inputs writes: key (for a signal: the part after 'signals.<name>.')
# -> (parser, the signal kinds that have it, required). A parser raises ValueError saying what it expected.
ALL_KINDS = ("distribution_drift", "latency_quantile", "error_ratio", "kpi_ratio")
RATIO_KINDS = ("error_ratio", "kpi_ratio")
def _budget_input(value: str) -> float:
    try:
        return _budget(value)
    except ValueError as exc:
        raise ValueError(f"expected a budget such as 1/quarter ({exc})") from None


MODEL_INPUTS: dict[str, Callable[[str], Any]] = {
    "alerts.for": _duration(1),
    "analysis.canary_weight": _json_number(0.0, 1.0, low_open=True),
    "budget.auto": _budget_input,
    "budget.manual": _budget_input,
    "history.minimum": _duration(3600),
    "prometheus.selector": _json_labels,
    "prometheus.version_label": _text,
    "prometheus.version_from": _version_from,
}


def _spans(value: str) -> tuple[tuple[float, float], ...]:
    """history.exclude as the fit records it (driftgate.fit.inputs): a JSON list of {from, to, reason}, UTC."""
    x = _json(value)
    if not isinstance(x, list) or not x:
        raise ValueError('expected a non-empty JSON list of {"from": <time>, "to": <time>, "reason": <text>}')
    out = []
    for item in x:
        if not isinstance(item, dict) or set(item) != {"from", "to", "reason"} \
                or not all(isinstance(item[k], str) and _RFC3339.fullmatch(item[k]) for k in ("from", "to")) \
                or not isinstance(item["reason"], str) or not item["reason"].strip():
            raise ValueError('expected spans {"from": <RFC 3339 UTC time>, "to": <RFC 3339 UTC time>, "reason": '
                             '<non-empty text>}')
        try:
            a, b = _unix(item["from"]), _unix(item["to"])
        except ValueError:
            raise ValueError(f"expected real times, got {item['from']!r} -> {item['to']!r}") from None
        if not a < b:
            raise ValueError(f"expected each span to end after it starts, got {item['from']} -> {item['to']}")
        out.append((a, b))
    return tuple(out)


# Fit inputs written only when the spec has them (absent: baselines fitted before the key existed stay current).
OPTIONAL_MODEL_INPUTS: dict[str, Callable[[str], Any]] = {
    "history.exclude": _spans,
}
SIGNAL_INPUTS: dict[str, tuple[Callable[[str], Any], tuple[str, ...], bool]] = {
    "kind": (_choice(*ALL_KINDS), ALL_KINDS, True),
    "statistic": (_choice("psi", "js", "tvd", "quantile", "ratio"), ALL_KINDS, True),
    "direction": (_choice("above", "below"), ALL_KINDS, True),
    "tier": (_choice("auto", "manual"), ALL_KINDS, True),
    "min_events": (_json_number(1, 1e9, integer=True), ALL_KINDS, True),
    "windows": (_windows, ALL_KINDS, True),
    "matchers": (_json_labels, ALL_KINDS, True),
    "metric": (_text, HISTOGRAM_KINDS, True),
    "numerator": (_text, RATIO_KINDS, True),
    "denominator": (_text, RATIO_KINDS, True),
    "numerator_labels": (_json_labels, RATIO_KINDS, False),  # written only when the spec has them
    "denominator_labels": (_json_labels, RATIO_KINDS, False),
    "quantile": (_json_number(0.0, 0.9999, low_open=True), ("latency_quantile",), True),
    "compare_with": (_choice("baseline", "last_week", "stable"), ALL_KINDS, True),
}


def _facts(b: Baseline, r: Any, failed: set[tuple[str | int, ...]]) -> _Facts | None:
    """The fit inputs parsed and checked against the signals they belong to (None: none recorded); the keys
    with a problem are added to ``failed``."""
    if not b.fit_inputs:
        r.error(("fit_inputs",), f"no fit inputs; expected the spec's fit inputs as fitted (render, check and "
                                 f"review compare them with the spec); {RESTORE}")
        return None
    names = [s.name for s in b.signals]
    # A repeated signal name is reported at signals[i].name; its inputs cannot be told apart. A signal whose
    # kind is not the one it was fitted as: reported once, here, and its inputs not read further.
    kinds = {s.name: s.kind for s in b.signals if names.count(s.name) == 1}
    for i, s in enumerate(b.signals):
        fitted = b.fit_inputs.get(f"signals.{s.name}.kind")
        if s.name in kinds and fitted is not None and fitted != s.kind and s.kind in ALL_KINDS:
            r.error(("signals", i, "kind"), f"{s.kind!r}, but the fit inputs record signal '{s.name}' as "
                                            f"{fitted!r} (fit_inputs.signals.{s.name}.kind); expected the kind it "
                                            f"was fitted as; {RESTORE}")
            failed.add(("signals", i, "kind"))
            del kinds[s.name]
    by_signal: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}
    for key, text in b.fit_inputs.items():
        where = ("fit_inputs", key)
        parser: Callable[[str], Any] | None = MODEL_INPUTS.get(key) or OPTIONAL_MODEL_INPUTS.get(key)
        if parser is None and key.startswith("signals."):
            name, _, field = key[len("signals."):].partition(".")
            by_signal.setdefault(name, []).append(key)
            if name not in kinds:
                continue  # reported once for the signal
            rule = SIGNAL_INPUTS.get(field)
            if rule is not None and kinds[name] in rule[1]:
                parser = rule[0]
        if parser is None:
            r.error(where, f"not a fit input this version of driftgate records; {RESTORE}")
            continue
        try:
            parsed[key] = parser(text)
        except ValueError as exc:
            r.error(where, f"{text!r}: {exc}; {RESTORE}")
            failed.add(where)
    for name, keys in sorted(by_signal.items()):
        if name not in names:
            count = f"{len(keys)} key{'s' if len(keys) > 1 else ''}"
            line, col = r.marks.at(("fit_inputs", keys[0]))
            r.problems.append(Problem(r.marks.file, line, col, f"fit_inputs.signals.{name}.*",
                                      f"the fit inputs of a signal '{name}' ({count}), which the baseline has no "
                                      f"fit of; expected those of its signals ({', '.join(names)}); {RESTORE}"))
    for key in MODEL_INPUTS:
        if key not in b.fit_inputs:
            r.error(("fit_inputs",), f"missing fit input '{key}'; {RESTORE}")
    for i, s in enumerate(b.signals):
        if s.name not in kinds or (*("signals", i), "kind") in failed:
            continue
        if s.name not in by_signal:
            r.error(("signals", i, "name"), f"{s.name!r}, a signal the fit inputs have nothing of; expected a "
                                            f"signal the fit was run for ({', '.join(sorted(by_signal)) or 'none'}); "
                                            f"{RESTORE}")
            failed.add(("signals", i, "name"))
            continue
        for field, (_, has, required) in SIGNAL_INPUTS.items():
            key = f"signals.{s.name}.{field}"
            if required and s.kind in has and key not in b.fit_inputs:
                r.error(("fit_inputs",), f"missing fit input '{key}'; {RESTORE}")
        # The inputs the numbers were fitted for must be this signal's (the fit writes both from one spec).
        p = f"signals.{s.name}."
        for field, have in (("kind", s.kind), ("statistic", s.statistic), ("compare_with", s.compare_with)):
            if p + field in parsed and parsed[p + field] != have:
                r.error(("fit_inputs", p + field), f"{parsed[p + field]!r}, but signals[{i}].{field} is {have!r}; "
                                                   f"expected the same (the fit writes both from the spec); {RESTORE}")
                failed.add(("fit_inputs", p + field))
                del parsed[p + field]
    signals = {}
    for s in b.signals:
        p = f"signals.{s.name}."
        if s.name in kinds and all(p + k in parsed for k in ("direction", "tier", "min_events")):
            signals[s.name] = _SignalFacts(parsed[p + "direction"], parsed[p + "tier"], int(parsed[p + "min_events"]))
    for_seconds = parsed.get("alerts.for")
    windows = {name: parsed[f"signals.{name}.windows"] for name in kinds if f"signals.{name}.windows" in parsed}
    excluded = parsed.get("history.exclude", None if "history.exclude" in b.fit_inputs else ())
    return _Facts(None if for_seconds is None else for_seconds / 60.0, parsed.get("analysis.canary_weight"),
                  parsed.get("history.minimum"), windows, signals, set(by_signal) == set(names), excluded)


# ---------------------------------------------------------------- where a rule looks


@dataclass
class _At:
    """What a rule sees around the value it checks: the baseline, the signal, window and threshold it is
    in (when it is in one), and which keys already failed (a rule that derives from them is skipped)."""

    b: Baseline
    facts: _Facts | None
    failed: set[tuple[str | int, ...]]
    sig: SignalFit | None = None
    sig_path: tuple[str | int, ...] = ()
    which: str = ""
    win: WindowFit | None = None
    win_path: tuple[str | int, ...] = ()
    tier: str = ""
    th: ThresholdFit | None = None
    th_path: tuple[str | int, ...] = ()
    listing: str = ""  # "detection" | "canary_detection"
    det: Detection | None = None

    @property
    def sf(self) -> _SignalFacts | None:
        return None if self.facts is None or self.sig is None else self.facts.signals.get(self.sig.name)

    def bad(self, *names: str) -> bool:
        """Whether any of the window's (or, outside a window, the signal's) keys ``names`` failed."""
        base = self.win_path or self.sig_path
        return any((*base, n) in self.failed for n in names)

    def bad_top(self, *names: str) -> bool:
        return any((n,) in self.failed for n in names)

    def budget_text(self) -> str:
        """The tier's budget and how many configurations share it, as messages say it."""
        budget = self.b.budget_auto if self.tier == "auto" else self.b.budget_manual
        n = self.b.auto_configurations if self.tier == "auto" else self.b.manual_configurations
        return f"{budget} over {n} configurations"

    def bad_sig(self, *names: str) -> bool:
        return any((*self.sig_path, n) in self.failed for n in names)

    def bad_th(self, *names: str) -> bool:
        return any((*self.th_path, n) in self.failed for n in names)

    def bad_path(self, *parts: str | int) -> bool:
        """Whether the key ``parts`` under the window failed."""
        return (*self.win_path, *parts) in self.failed

    @property
    def sign(self) -> float | None:
        sf = self.sf
        return None if sf is None else (-1.0 if sf.direction == "below" else 1.0)

    @property
    def window_seconds(self) -> float | None:
        if self.win is None or self.bad("window"):
            return None
        try:
            return _duration(0)(self.win.window)
        except ValueError:
            return None

    def rate(self, tier: str) -> float | None:
        """The false-alarm rate per second one configuration of ``tier`` may use (driftgate.fit.run)."""
        budget, n = ((self.b.budget_auto, self.b.auto_configurations) if tier == "auto"
                     else (self.b.budget_manual, self.b.manual_configurations))
        if self.bad_top("budget_auto", "budget_manual", "auto_configurations", "manual_configurations") or n < 1:
            return None
        try:
            return _budget(budget) / n
        except ValueError:
            return None


# A rule returns None, or what is wrong (found, expected and why), or (a key path below the field, that).
Rule = Callable[[Any, _At], "str | tuple[tuple[str | int, ...], str] | None"]


# ---------------------------------------------------------------- what a statistic can be


def _raw_range(s: SignalFit) -> tuple[float, float]:
    """The range of the signal's statistic in any window (driftgate.fit.statistics): drift and ratios are
    never negative, JS (log base 2) and TVD are at most 1, ``histogram_quantile`` returns a value between 0
    (or the first bound, when it is below 0) and the largest finite bound."""
    if s.kind == "distribution_drift":
        return 0.0, (1.0 if s.statistic in ("js", "tvd") else math.inf)
    if s.kind == "latency_quantile":
        from driftgate.exports.le import parse_le

        bounds = [parse_le(le) for le in s.les[:-1]]
        lo, hi = min(0.0, bounds[0]), bounds[-1]
        return (lo - hi, hi - lo) if s.compare_with == "stable" else (lo, hi)
    return (-math.inf if s.compare_with == "stable" else 0.0), math.inf


def _raw_words(s: SignalFit) -> str:
    lo, hi = _raw_range(s)
    if s.kind == "latency_quantile" and s.compare_with == "stable":
        return (f"a difference of two histogram_quantiles over these buckets (the canary's minus the stable "
                f"version's) is within ±{_n(hi)}")
    if s.kind == "latency_quantile":
        return f"a histogram_quantile over these buckets is between {_n(lo)} and the largest finite bound " + _n(hi)
    what = {"psi": "PSI", "js": "Jensen-Shannon (log base 2)", "tvd": "TVD",
            "ratio": "a ratio of counters"}[s.statistic]
    return f"{what} is never below 0" + ("" if hi == math.inf else f" nor above {_n(hi)}")


def _noise_max(at: _At) -> float | None:
    """The largest noise term of a window that decides (``b / min_events^power``), or None when unknown."""
    w, sf = at.win, at.sf
    if w is None or sf is None or at.bad("noise_coefficient", "noise_power", "manual_noise_coefficient"):
        return None
    b = w.noise_of(at.tier or "auto")
    return b / sf.min_events ** w.noise_power if w.noise_power else b


def _floor(at: _At) -> tuple[float, str] | None:
    """``(f, why)``: in the alerting direction's terms (``sign * x``), every value of the decision statistic
    (the statistic minus its noise term for ``above``, plus it for ``below``), and so every threshold, band
    and tail level the fit derives from it, is at least ``f``."""
    s, sign, noise = at.sig, at.sign, _noise_max(at)
    if s is None or sign is None or noise is None or at.bad_top("signals") or (*at.sig_path, "les") in at.failed:
        return None
    lo, hi = _raw_range(s)
    if sign > 0 and lo == -math.inf:
        return None
    if sign > 0:
        return lo - noise, (f"{_raw_words(s)} and its noise term is at most {_n(noise)} in a window with "
                            f"min_events ({at.sf.min_events if at.sf else '?'}) events, so nothing the fit derives "
                            f"from the statistic minus its noise term is below {_n(lo - noise)}")
    if hi == math.inf:
        return None
    return -(hi + noise), (f"{_raw_words(s)} and its noise term is at most {_n(noise)} in a window with min_events "
                           f"({at.sf.min_events if at.sf else '?'}) events, so nothing the fit derives from the "
                           f"statistic plus its noise term is above {_n(hi + noise)}")


def _shown(at: _At, x: float) -> float:
    """A bound in the alerting direction's terms, back in the file's terms."""
    return x * (at.sign or 1.0)


# ---------------------------------------------------------------- rules


def _rules(*rules: Rule) -> tuple[Rule, ...]:
    return rules


def _at_least(low: float, why: str, strict: bool = False) -> Rule:
    def rule(x: Any, at: _At) -> str | None:
        if x is None or (x > low if strict else x >= low):
            return None
        return f"{_n(x)}; expected a number {'>' if strict else '>='} {low:g} ({why})"
    return rule


def _pattern(regex: re.Pattern[str], expected: str) -> Rule:
    def rule(x: Any, at: _At) -> str | None:
        return None if regex.fullmatch(x) else f"{x!r}; expected {expected}"
    return rule


def _one_of(options: tuple[str, ...], why: str) -> Rule:
    def rule(x: Any, at: _At) -> str | None:
        return None if x in options else f"{x!r}; expected one of {', '.join(options)} ({why})"
    return rule


def _no_check(why: str) -> tuple[Rule, ...]:
    """A field whose every value of its type is meaningful (``why`` says so, for the reader of the table)."""
    return ()


# -- the baseline


def _model(x: str, at: _At) -> str | None:
    from driftgate.spec.names import MODEL_NAME

    return None if MODEL_NAME.fullmatch(x) else f"{x!r}; expected a model name (the spec's 'model')"


def _spec_path(x: str, at: _At) -> str | None:
    parts = x.split("/")
    if x and not x.startswith("/") and ".." not in parts and "\\" not in x and x.endswith((".yaml", ".yml")):
        return None
    return f"{x!r}; expected the path of the spec in the repository (specs/<model>.yaml)"


def _history_end(x: str, at: _At) -> str | None:
    if at.bad_top("history_start") or x > at.b.history_start:
        return None
    return f"{x!r}; expected a time after history_start ({at.b.history_start}): the history ends after it starts"


def _timestamp(x: str, at: _At) -> str | None:
    if _RFC3339.fullmatch(x):
        try:
            dt.datetime.strptime(x, "%Y-%m-%dT%H:%M:%SZ")
            return None
        except ValueError:
            pass
    return f"{x!r}; expected an RFC 3339 UTC time such as 2026-11-01T00:00:00Z"


@functools.lru_cache(maxsize=64)
def _unix(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def _history_seconds(at: _At) -> float | None:
    if at.bad_top("history_start", "history_end"):
        return None
    return _unix(at.b.history_end) - _unix(at.b.history_start)


def _history_days(x: float, at: _At) -> str | None:
    span = _history_seconds(at)
    if span is None:
        return None if x > 0 else f"{_n(x)}; expected a number > 0"
    # Times are written to the second (truncated), days to 6 digits.
    if abs(x * 86400.0 - span) <= 2.0 + _SLACK * span:
        return None
    return (f"{_n(x)}; expected {_n(span / 86400.0)}, the days from history_start to history_end "
            f"({at.b.history_start} -> {at.b.history_end})")


def _step_seconds(x: int, at: _At) -> str | None:
    span = _history_seconds(at)
    if x < 0 or (span is not None and x > span):
        return f"{x}; expected the exports' sample spacing in whole seconds, from 0 to the history's length"
    return None


def _minimum_days(x: float, at: _At) -> str | None:
    if x < 3600 / 86400:
        return f"{_n(x)}; expected at least 1h in days (history.minimum is at least 1h)"
    want = at.facts.minimum_seconds if at.facts is not None else None
    if want is None or _close(x, want / 86400.0):
        return None
    return (f"{_n(x)}; expected {_n(want / 86400.0)}, the fit input history.minimum "
            f"({at.b.fit_inputs['history.minimum']}) in days")


def _excluded_inside(at: _At) -> float | None:
    """The seconds of the history inside the recorded history.exclude spans (None: not known)."""
    if at.facts is None or at.facts.excluded is None or at.bad_top("history_start", "history_end"):
        return None
    start, end = _unix(at.b.history_start), _unix(at.b.history_end)
    total, reach = 0.0, start
    for a, b in sorted(at.facts.excluded):  # merged, clipped to the history
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def _excluded_days(x: float, at: _At) -> str | None:
    span = _history_seconds(at)
    if x < 0 or (span is not None and x * 86400.0 > span + 2.0 + _SLACK * span):
        return f"{_n(x)}; expected the days of the history inside history.exclude, from 0 to history_days"
    want = _excluded_inside(at)
    if want is None or abs(x * 86400.0 - want) <= 2.0 + _SLACK * want:
        return None
    return (f"{_n(x)}; expected {_n(want / 86400.0)}, the days of the history ({at.b.history_start} -> "
            f"{at.b.history_end}) inside the spans of the fit input history.exclude")


def _provisional(x: bool, at: _At) -> str | None:
    if at.bad_top("history_days", "minimum_days", "excluded_days"):
        return None
    days, minimum = at.b.history_days - at.b.excluded_days, at.b.minimum_days
    if _close(days, minimum):
        return None  # too close to tell after rounding
    if x == (days < minimum):
        return None
    want = "true" if days < minimum else "false"
    less = f" (less {_n(at.b.excluded_days)} days excluded by history.exclude)" if at.b.excluded_days else ""
    return (f"{str(x).lower()}; expected {want}: {_n(days)} days of history{less} against "
            f"history.minimum of {_n(minimum)} "
            f"days (a provisional baseline routes every signal to manual rollback)")


def _budget_field(key: str) -> Rule:
    def rule(x: str, at: _At) -> str | None:
        try:
            _budget(x)
        except ValueError as exc:
            return f"{x!r}; expected a false-rollback budget such as 1/quarter ({exc})"
        fitted = at.b.fit_inputs.get(key)
        if fitted is not None and fitted != x and ("fit_inputs", key) not in at.failed:
            return f"{x!r}; expected {fitted!r}, the fit input {key} it was fitted for"
        if key == "budget.manual" and not at.bad_top("budget_auto"):
            with contextlib.suppress(ValueError):
                if _budget(x) < _budget(at.b.budget_auto) * (1 - _SLACK):
                    return (f"{x!r}; expected a budget allowing at least as many alerts as budget_auto "
                            f"({at.b.budget_auto}), as the spec requires")
        return None
    return rule


def _auto_configurations(x: int, at: _At) -> str | None:
    if at.facts is not None and not at.facts.same_signals:
        return None  # a signal added or removed by hand: reported at the fit inputs
    sf = at.facts.signals if at.facts is not None else {}
    if at.facts is not None and all(s.name in sf for s in at.b.signals):
        want = 2 * max(1, sum(1 for s in at.b.signals if sf[s.name].tier == "auto"))
        if x != want:
            return (f"{x}; expected {want}: 2 windows x {want // 2} signal(s) of tier auto (at least 1) share the "
                    f"automatic budget")
        return None
    if x < 2 or x % 2 or x > 2 * len(at.b.signals):
        return f"{x}; expected 2 windows x the signals of tier auto (at least 1), at most 2 x {len(at.b.signals)}"
    return None


def _manual_configurations(x: int, at: _At) -> str | None:
    if at.facts is not None and not at.facts.same_signals:
        return None  # a signal added or removed by hand: reported at the fit inputs
    want = 2 * len(at.b.signals)
    if x == want:
        return None
    return f"{x}; expected {want}: 2 windows x {len(at.b.signals)} signals share the manual budget"


def _signals(x: tuple[SignalFit, ...], at: _At) -> str | None:
    if not x:
        return "an empty list; expected the fit of every signal of the spec"
    return None


# -- a signal


def _signal_name(x: str, at: _At) -> str | None:
    from driftgate.spec.names import SIGNAL_NAME

    if not SIGNAL_NAME.fullmatch(x):
        return f"{x!r}; expected a signal name (lowercase letters, digits and '_', starting with a letter)"
    first = next(i for i, s in enumerate(at.b.signals) if s.name == x)
    if at.sig is not at.b.signals[first]:
        return f"{x!r} again; expected one fit per signal (signals[{first}] is '{x}' too)"
    return None


def _statistic(x: str, at: _At) -> str | None:
    s = at.sig
    if s is None or at.bad("kind") or x in STATISTICS[s.kind]:
        return None
    return f"{x!r}; expected {' or '.join(STATISTICS[s.kind])} for a signal of kind {s.kind}"


def _compare_with(x: str, at: _At) -> str | None:
    s = at.sig
    drift = s is not None and s.kind == "distribution_drift"
    allowed = ("baseline", "last_week", "stable") if drift else ("baseline", "stable")
    if x in allowed or (s is not None and at.bad("kind")):
        return None
    why = "" if drift else " (only drift signals compare with last week)"
    return f"{x!r}; expected {' or '.join(allowed)}{why}"


def _les(x: tuple[str, ...], at: _At) -> str | tuple[tuple[int], str] | None:
    from driftgate.exports.le import les_problem

    s = at.sig
    if s is None or at.bad("kind"):
        return None
    if s.kind not in HISTOGRAM_KINDS:
        return None if not x else (f"{len(x)} bucket bounds; expected none for a signal of kind {s.kind} (a ratio "
                                   f"of counters)")
    if len(x) < 2:
        return (f"{list(x)!r}; expected the histogram's bucket bounds as the exports spell them, at least one finite "
                f"bound and +Inf")
    bad = les_problem(x)
    if bad is not None:
        return (bad[0],), bad[1]
    return None


def _probabilities(x: tuple[float, ...], at: _At) -> str | tuple[tuple[int], str] | None:
    s = at.sig
    if s is None or at.bad("kind"):
        return None
    if s.kind != "distribution_drift":
        return None if not x else (f"{len(x)} share(s); expected none for a signal of kind {s.kind} (only drift "
                                   f"has bins)")
    if not x:
        return "no shares; expected the baseline share of each bucket of a distribution_drift signal"
    if not at.bad("les") and len(x) != len(s.les):
        return f"{len(x)} shares; expected one per bucket ({len(s.les)} in les)"
    for j, q in enumerate(x):
        if not 0.0 < q <= 1.0:  # the drift rules divide by it and take its logarithm
            return (j,), (f"{_n(q)}; expected a share in (0, 1] (the fit smooths every bucket's share above 0, "
                          f"and the drift rules take its logarithm)")
    total = math.fsum(x)
    if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
        return (f"the shares sum to {total:.6g}; expected 1 (within {SHARE_SUM_TOLERANCE:g}: the fit writes each "
                f"bucket's share of the history's events)")
    return None


# -- a window


def _window(x: str, at: _At) -> str | None:
    try:
        seconds = _duration(60)(x)
    except ValueError as exc:
        return f"{x!r}; expected a Prometheus duration of at least 1m ({exc})"
    if seconds > 7 * 86400:
        return f"{x!r}; expected a window of at most 7d"
    s = at.sig
    fitted = at.facts.windows.get(s.name) if s is not None and at.facts is not None else None
    if s is not None and fitted is not None and fitted[at.which] != x:
        return f"{x!r}; expected {fitted[at.which]!r}, the {at.which} window of the fit input signals.{s.name}.windows"
    if at.which == "slow" and s is not None and (*at.sig_path, "fast", "window") not in at.failed:
        with contextlib.suppress(ValueError):
            if seconds <= _duration(0)(s.fast.window):
                return f"{x!r}; expected a slow window longer than the fast one ({s.fast.window})"
    return None


def _stride_windows(at: _At) -> float | None:
    """How many non-overlapping windows the history holds (driftgate.fit.run: the evaluation grid, thinned
    to one evaluation per window)."""
    span, w = _history_seconds(at), at.window_seconds
    step = at.b.step_seconds
    if span is None or w is None or step < 1 or at.bad_top("step_seconds"):
        return None
    stride = max(1, round(w / step))
    return max(span - w, 0.0) / step / stride + 1


def _windows_total(x: int, at: _At) -> str | None:
    if x < 1:
        return f"{x}; expected at least 1 window"
    want = _stride_windows(at)
    if want is None or abs(x - want) <= 2 + want * (1.0 / max(at.b.step_seconds, 1) + 0.01):
        return None
    return (f"{x}; expected about {want:.0f}: the non-overlapping {at.win.window if at.win else ''} windows in "
            f"{_n(at.b.history_days)} days of history")


def _windows_decided(x: int, at: _At) -> str | None:
    w = at.win
    if w is None or 0 <= x <= w.windows_total:
        return None
    return f"{x}; expected a count from 0 to windows_total ({w.windows_total})"


def _events_p50(x: float, at: _At) -> str | None:
    w = at.win
    if x < 0:
        return f"{_n(x)}; expected an event count >= 0"
    if w is not None and not at.bad("events_p05") and not _le(w.events_p05, x):
        return f"{_n(x)}; expected at least events_p05 ({_n(w.events_p05)}): the median is not below the 5th percentile"
    return None


def _statistic_range(x: float, at: _At) -> str | None:
    s = at.sig
    if s is None or at.bad_top("signals") or at.bad_sig("kind", "statistic", "les"):
        return None
    lo, hi = _raw_range(s)
    if _le(lo, x, 1e-9) and _le(x, hi, 1e-9):
        return None
    span = f"a number >= {_n(lo)}" if hi == math.inf else f"a number in [{_n(lo)}, {_n(hi)}]"
    if lo == -math.inf:
        return None  # (a ratio compared with the stable version: a difference, any finite number)
    return f"{_n(x)}; expected {span}: {_raw_words(s)}"


def _ordered(before: str, what: str) -> Rule:
    """``field`` lies beyond ``before`` in the alerting direction (above: larger; below: smaller)."""
    def rule(x: float, at: _At) -> str | None:
        w, sign = at.win, at.sign
        if w is None or sign is None or at.bad(before):
            return None
        y = getattr(w, before)
        if _le(sign * y, sign * x):
            return None
        word = "at least" if sign > 0 else "at most"
        return (f"{_n(x)}; expected {word} {before} ({_n(y)}) for direction {at.sf.direction if at.sf else ''}: "
                f"{what}")
    return rule


def _noise_coefficient(x: float, at: _At) -> str | None:
    return _tier_noise(x, at, "auto")


def _manual_noise_coefficient(x: float | None, at: _At) -> str | None:
    """The manual band's own noise term, or the automatic one's where the fit fell back to it (its own line
    would have crossed the automatic threshold's)."""
    if x is None or (at.win is not None and not at.bad("noise_coefficient") and x == at.win.noise_coefficient):
        return None
    return _tier_noise(x, at, "manual")


def _tier_noise(x: float, at: _At, tier: str) -> str | None:
    """``tier``'s noise coefficient: the noise quantile at its own probability (driftgate.fit.run)."""
    if x < 0:
        return (f"{_n(x)}; expected a noise term >= 0 (the sampling noise b in stat - b / n^power: a negative one "
                f"would move every threshold toward the statistic as traffic falls)")
    s, w, seconds, rate = at.sig, at.win, at.window_seconds, at.rate(tier)
    if s is None or w is None or seconds is None or rate is None or s.statistic == "quantile" \
            or at.bad_sig("kind", "statistic", "probabilities") or at.bad("statistic_p50", "stable_p50", "window"):
        return None
    # statistic_p50 (the median ratio the term depends on) is rounded to SIG_DIGITS digits: every ratio it
    # may have been rounded from gives a term the fit could have written (near 1, sqrt(r (1 - r)) is steep).
    r0 = _level(w)
    half = 0.5 * 10.0 ** (math.floor(math.log10(abs(r0))) - (SIG_DIGITS - 1)) if r0 else 0.0
    ratios = [r0 - half, r0, r0 + half] + ([0.5] if r0 - half < 0.5 < r0 + half else [])
    terms = [_expected_noise(s, w, rate * seconds, r) for r in (ratios if s.statistic == "ratio" else [r0])]
    want = _expected_noise(s, w, rate * seconds, r0)
    if _le(min(terms), x, 1e-4) and _le(x, max(terms), 1e-4):
        return None
    p = min(max(rate * seconds, 1e-12), 0.5)
    over = f"over {len(s.probabilities)} buckets" if s.kind == "distribution_drift" else \
        (f"at the median ratio statistic_p50 ({_n(w.statistic_p50)})" if w.stable_p50 is None else
         f"at the stable version's median ratio stable_p50 ({_n(w.stable_p50)})")
    budget, n = ((at.b.budget_auto, at.b.auto_configurations) if tier == "auto"
                 else (at.b.budget_manual, at.b.manual_configurations))
    return (f"{_n(x)}; expected {_n(want)}, the fit's sampling-noise term for {s.statistic} {over}, at the "
            f"probability {_n(p)} (budget_{tier} {budget} over {tier}_configurations {n}, times the {w.window} "
            f"window; driftgate.fit.noise)")


def _level(w: WindowFit) -> float:
    """The ratio a ratio signal's noise term and reference shifts are computed at: its median, or compared with
    the stable version (the statistic a difference), the stable version's median (driftgate.fit.run)."""
    return w.stable_p50 if w.stable_p50 is not None else w.statistic_p50


def _stable_p50(x: float | None, at: _At) -> str | None:
    """Set exactly for compare_with: stable ratios and quantiles: the stable side's median value."""
    s = at.sig
    if s is None or at.bad_sig("kind", "compare_with"):
        return None
    wanted = s.compare_with == "stable" and s.kind != "distribution_drift"
    if x is None:
        return (f"null; expected the stable version's median {'ratio' if 'ratio' in s.kind else 'quantile'} (a "
                f"{s.kind} compared with the stable version is the canary's value minus it)") if wanted else None
    if not wanted:
        return (f"{_n(x)}; expected null: only a ratio or quantile compared with the stable version "
                f"(compare_with: stable) has a stable side's median")
    if x < 0 or (s.kind != "latency_quantile" and s.statistic == "ratio" and x > 1e9):
        return f"{_n(x)}; expected a ratio or quantile >= 0 (the stable version's median)"
    return None


def _expected_noise(s: SignalFit, w: WindowFit, p: float, r0: float) -> float:
    from types import SimpleNamespace

    from driftgate.fit.noise import noise_for
    from driftgate.model import Statistic

    stand_in: Any = SimpleNamespace(statistic=Statistic(s.statistic))  # noise_for reads the statistic only
    noise = noise_for(stand_in, len(s.probabilities), min(p, 0.5), r0)
    return float(noise.coefficient)


def _noise_power(x: float, at: _At) -> str | None:
    s, w = at.sig, at.win
    if s is None or w is None or at.bad_sig("statistic"):
        return None
    allowed = NOISE_POWERS[s.statistic]
    if x not in allowed:
        return (f"{_n(x)}; expected {' or '.join(_n(a) for a in allowed)} for {s.statistic} (the noise term is b / n "
                f"for PSI and JS, b / sqrt(n) otherwise; driftgate.fit.noise)")
    if x == 0.0 and w.noise_coefficient != 0.0 and not at.bad("noise_coefficient"):
        return f"0 with a noise coefficient of {_n(w.noise_coefficient)}; expected 0.5 (a noise term has a power)"
    return None


def _shift_range(at: _At) -> tuple[float, float, bool] | None:
    """``(low, high, low excluded)``: the range of the smallest detectable shift, the end of a bisection from
    the no-shift size toward the largest (driftgate.fit.delay._Shifts.smallest); None when there is none."""
    s, w, sign = at.sig, at.win, at.sign
    if s is None or w is None:
        return None
    if s.kind == "distribution_drift":
        return 0.0, 1.0, True  # a share of the mass: the bisection never reaches 0
    if s.kind == "latency_quantile" or sign is None or _level(w) <= 0:
        return None
    if sign < 0:
        return 0.0, 1.0, False  # a factor on a KPI: 0 when only its collapse is caught
    return 1.0, max(1.0, min(1.0 / _level(w), 1000.0)), False


def _smallest(canary: bool) -> Rule:
    return lambda x, at: _smallest_shift(x, at, canary)


def _smallest_shift(x: float | None, at: _At, canary: bool) -> str | None:
    s, w = at.sig, at.win
    if s is None or w is None or at.bad("statistic_p50") or (canary and at.bad("canary_decides_after_minutes")):
        return None
    if canary and w.canary_decides_after_minutes is None:
        return None if x is None else (f"{_n(x)}; expected null: a canary whose window never holds min_events "
                                       f"decides nothing")
    if x is None:
        return None
    shifts = _expected_shifts(at)
    if shifts is None:
        return None  # the direction is not known
    span = _shift_range(at)
    if not shifts or span is None:
        return f"{_n(x)}; expected null (no reference shift is simulated for this signal)"
    lo, hi, open_low = span
    if _le(lo, x) and _le(x, hi) and not (open_low and x <= lo):
        return None
    unit = "share of mass moved" if s.kind == "distribution_drift" else "factor on the ratio"
    return f"{_n(x)}; expected a {unit} in {'(' if open_low else '['}{_n(lo)}, {_n(hi)}] or null"


def _expected_shifts(at: _At) -> tuple[float, ...] | None:
    from driftgate.fit.delay import DRIFT_SHIFTS, ERROR_FACTORS, KPI_FACTORS

    s, w, sign = at.sig, at.win, at.sign
    if s is None or w is None:
        return None
    if s.kind == "distribution_drift":
        return tuple(float(x) for x in DRIFT_SHIFTS)
    if s.kind == "latency_quantile" or _level(w) <= 0:
        return ()
    if sign is None:
        return None
    return tuple(float(x) for x in (KPI_FACTORS if sign < 0 else ERROR_FACTORS))


def _detections(canary: bool) -> Rule:
    return lambda x, at: _detection_list(x, at, canary)


def _detection_list(x: tuple[Detection, ...], at: _At, canary: bool) -> str | None:
    w = at.win
    if w is None or at.bad("statistic_p50") or (canary and at.bad("canary_decides_after_minutes")):
        return None
    want = _expected_shifts(at)
    if canary and w.canary_decides_after_minutes is None:
        want = ()
    if want is None:
        return None
    have = tuple(d.size for d in x)
    if have == want:
        return None
    return (f"the shifts {list(have)}; expected the fit's reference shifts {list(want)} for this signal "
            f"(driftgate.fit.delay)")


def _canary_events(x: float, at: _At) -> str | None:
    w = at.win
    if x < 0:
        return f"{_n(x)}; expected an event count >= 0"
    weight = at.facts.canary_weight if at.facts is not None else None
    if w is None or weight is None or at.bad("events_p50"):
        return None
    from driftgate.fit.delay import canary_counts

    how = at.sig.compare_with if at.sig is not None else "baseline"
    want = canary_counts(how, weight, w.events_p50)[0]
    if _close(x, want, 1e-4):
        return None
    if how == "stable" and 0 < weight < 1:
        return (f"{_n(x)}; expected {_n(want)}: events_p50 ({_n(w.events_p50)}, the two-sample count of a canary at "
                f"analysis.canary_weight {weight:g} against the stable version) / (1 - {weight:g})")
    if how == "last_week":
        return (f"{_n(x)}; expected {_n(want)}: analysis.canary_weight ({weight:g}) x 2 x events_p50 "
                f"({_n(w.events_p50)}, the two-sample count of a window against the same window a week earlier: "
                f"half the whole model's)")
    return (f"{_n(x)}; expected {_n(want)}: analysis.canary_weight ({weight:g}) x events_p50 ({_n(w.events_p50)})")


def _canary_decides(x: float | None, at: _At) -> str | None:
    w, sf, seconds = at.win, at.sf, at.window_seconds
    if w is None or sf is None or seconds is None or at.bad("canary_events"):
        return None
    need = max(sf.min_events, 1)
    if _close(w.canary_events, need):
        return None  # too close to tell after rounding
    if w.canary_events < need:
        return None if x is None else (f"{_n(x)}; expected null: the canary's window holds {_n(w.canary_events)} "
                                       f"events, fewer than min_events ({sf.min_events}), so it never decides")
    want = seconds / 60.0 * sf.min_events / w.canary_events
    if x is not None and _close(x, want, 1e-4):
        return None
    return (f"{_n(x)}; expected {_n(want)} minutes: the {w.window} window holds min_events ({sf.min_events}) of the "
            f"canary's {_n(w.canary_events)} events after that share of it")


def _seasonality(x: float, at: _At) -> str | None:
    return None if 0.0 <= x <= 1.0 else f"{_n(x)}; expected a share of variance in [0, 1]"


# -- a threshold


def _tail_parts(th: ThresholdFit) -> tuple[float | None, float | None, float | None]:
    return th.tail_u, th.tail_shape, th.tail_scale


def _value(x: float, at: _At) -> str | None:
    s, w, th, sign = at.sig, at.win, at.th, at.sign
    if s is None or w is None or th is None:
        return None
    if s.kind == "distribution_drift" and x < 0:
        return f"{_n(x)}; expected a number >= 0 (the fit floors a drift threshold at 0: method zero_floor)"
    if th.method == "zero_floor" and x != 0.0 and not at.bad_th("method"):
        return f"{_n(x)} with method zero_floor; expected 0 (the fit's floor for a drift threshold below 0)"
    if sign is None:
        return None
    floor = _floor(at)
    if floor is not None and not _le(floor[0], sign * x):
        word = "at least" if sign > 0 else "at most"
        return f"{_n(x)}; expected {word} {_n(_shown(at, floor[0]))}: {floor[1]}"
    if at.bad_th("method", "exceedance_probability", *_TAIL, "tail_exceedances"):
        return None
    if th.method in ("empirical", "max_observed") and not at.bad("statistic_max") \
            and not _le(sign * x, sign * w.statistic_max):
        word = "at most" if sign > 0 else "at least"
        return (f"{_n(x)}; expected {word} statistic_max ({_n(w.statistic_max)}): method {th.method} takes a "
                f"quantile of what the history held")
    if th.method == "pot_gpd" and th.tail_u is not None and th.tail_shape is not None and th.tail_scale is not None \
            and not at.bad_th(*_TAIL):
        # The tail fit's level at probability p (driftgate.fit.thresholds._level): the farthest its threshold
        # reaches, at a share of windows above tail_u of 1 (it is smaller; the level is then nearer).
        u, xi, sigma = sign * th.tail_u, th.tail_shape, th.tail_scale
        p = th.exceedance_probability
        reach = u - sigma * math.log(p) if abs(xi) < 1e-9 else u + sigma / xi * (p ** -xi - 1.0)
        own = at.tier == "auto" or w.auto.method == "pot_gpd" or th.method == "pot_episodes"
        if own and not _le(u, sign * x):
            word = "at least" if sign > 0 else "at most"
            return (f"{_n(x)}; expected {word} tail_u ({_n(th.tail_u)}): a tail fit's threshold lies beyond the "
                    f"level its tail starts at")
        if not _le(sign * x, reach, 1e-4):
            word = "at most" if sign > 0 else "at least"
            return (f"{_n(x)}; expected {word} {_n(sign * reach)}, where the tail fit (tail_u, tail_shape, "
                    f"tail_scale) puts the exceedance probability {_n(p)}")
    if at.tier == "manual" and not at.bad_path("auto", "value") and not _le(sign * x, sign * w.auto.value):
        word = "at most" if sign > 0 else "at least"
        return (f"{_n(x)}; expected {word} the automatic threshold auto.value ({_n(w.auto.value)}) for direction "
                f"{at.sf.direction if at.sf else ''}: the fit never puts the manual band beyond it")
    return None


def _method(x: str, at: _At) -> str | None:
    s, th = at.sig, at.th
    if x not in METHODS:
        return f"{x!r}; expected one of {', '.join(METHODS)}"
    if th is None or s is None:
        return None
    parts = _tail_parts(th)
    tail = None not in parts
    if any((p is None) != (th.tail_exceedances == 0) for p in parts):
        return None  # the tail's keys disagree: reported there
    if x == "zero_floor" and s.kind != "distribution_drift":
        return (f"'zero_floor' for a signal of kind {s.kind}; expected it only for a drift threshold (the fit's floor "
                f"at 0 for a drift threshold below 0)")
    if x in ("pot_gpd", "pot_episodes") and not tail:
        return f"{x!r} without a tail; expected tail_u, tail_shape and tail_scale of the tail fit"
    if x == "pot_episodes" and th.tail_exceedances > 0 and not at.bad_th("expected_alerts") \
            and not _close(th.exceedance_probability, th.expected_alerts / th.tail_exceedances, 1e-4):
        return (f"'pot_episodes' with an exceedance probability of {_n(th.exceedance_probability)}; expected the "
                f"episode fit's expected_alerts / tail_exceedances ({_n(th.expected_alerts)} / {th.tail_exceedances}): "
                f"a window fit is 'pot_gpd'")
    if x == "pot_episodes" and at.tier != "manual" and th.tail_shape is not None and th.tail_shape < 0:
        return ("'pot_episodes' for the automatic threshold with a bounded tail (tail_shape < 0); expected it only "
                "with the automatic tier's at-least-exponential shape (the fit's fallback when the window fit's "
                "threshold fires on its own history more often than the budget allows, "
                "driftgate.fit.thresholds.contradicted)")
    if x == "max_observed" and tail:
        return "'max_observed' with a tail fit; expected it only when the tail is degenerate (tail_u null)"
    if x == "empirical" and at.win is not None and not at.bad("windows_total") \
            and not _le(5.0, th.exceedance_probability * at.win.windows_total, 1e-4):
        return (f"'empirical' at an exceedance probability of {_n(th.exceedance_probability)} over "
                f"{at.win.windows_total} windows; expected it only when windows x probability >= 5 (otherwise the "
                f"fit uses the tail)")
    return None


def _exceedance(x: float, at: _At) -> str | None:
    if not 0.0 < x <= 0.5:
        return f"{_n(x)}; expected a probability in (0, 0.5] (the fit caps it at 0.5)"
    th = at.th
    if th is not None and th.method == "pot_episodes":
        # The share of the history's episodes whose peak the band exceeds: the budget's episodes over them.
        if at.bad_th("method", "expected_alerts", "tail_exceedances") or th.tail_exceedances < 1:
            return None
        want = th.expected_alerts / th.tail_exceedances
        if abs(x - want) <= 1e-4 * want:
            return None
        return (f"{_n(x)}; expected {_n(want)}: method pot_episodes puts the band where a share expected_alerts / "
                f"tail_exceedances ({_n(th.expected_alerts)} / {th.tail_exceedances}) of the history's episodes peak")
    rate, seconds = at.rate(at.tier), at.window_seconds
    step = at.b.step_seconds
    if rate is None or seconds is None or at.bad("window") or at.bad_top("step_seconds"):
        return None
    lo, hi = min(rate * step, 0.5), min(rate * seconds, 0.5)
    if _le(lo, x, 1e-4) and _le(x, hi, 1e-4):
        return None
    return (f"{_n(x)}; expected between {_n(lo)} and {_n(hi)}: the budget's rate ({at.budget_text()}) "
            f"times an excursion of one step ({step}s) to one window ({at.win.window if at.win else ''})")


def _cap(at: _At) -> tuple[float, str] | None:
    """``(c, why)``: in the alerting direction's terms no level the fit computes (a bootstrap draw included)
    is beyond ``c``: a tail fit extrapolates at most 10 times the history's range past its most extreme window."""
    floor, w, sign = _floor(at), at.win, at.sign
    if floor is None or w is None or sign is None or at.bad("statistic_max"):
        return None
    top = sign * w.statistic_max
    return top + 10.0 * (top - floor[0]), (f"the fit's tail levels stop at 10 times the history's range (from "
                                           f"{_n(_shown(at, floor[0]))} to statistic_max {_n(w.statistic_max)}) "
                                           f"past its most extreme window")


def _band_end(x: float, at: _At) -> str | None:
    floor, cap, sign = _floor(at), _cap(at), at.sign
    if floor is None or sign is None:
        return None
    if not _le(floor[0], sign * x):
        word = "at least" if sign > 0 else "at most"
        return f"{_n(x)}; expected {word} {_n(_shown(at, floor[0]))}: {floor[1]}"
    if cap is not None and not _le(sign * x, cap[0]):
        word = "at most" if sign > 0 else "at least"
        return f"{_n(x)}; expected {word} {_n(_shown(at, cap[0]))}: {cap[1]}"
    return None


def _band_high(x: float, at: _At) -> str | None:
    th = at.th
    if th is not None and not _le(th.band_low, x):
        return f"{_n(x)}; expected at least band_low ({_n(th.band_low)}): a band's ends are in order"
    return _band_end(x, at)


_TAIL = ("tail_u", "tail_shape", "tail_scale")


def _tail_field(name: str) -> Rule:
    def rule(x: float | None, at: _At) -> str | None:
        th, w, sign = at.th, at.win, at.sign
        if th is None or w is None:
            return None
        others = [n for n in _TAIL if n != name and (getattr(th, n) is None) != (x is None)]
        if len(others) == 2:  # the tail fit's three numbers are all set or all null
            state = "null" if x is not None else "set"
            return (f"{_n(x)} while {' and '.join(others)} are {state}; expected "
                    f"{'null' if x is not None else 'a number'} (the tail fit's u, shape and scale go together)")
        from driftgate.fit.thresholds import MANUAL_XI_BOUNDS, XI_BOUNDS

        episodic = th.method == "pot_episodes" and not at.bad_th("method")
        # (A manual band with its own noise term was fitted on another excess: its own tail fit.)
        own = w.noise_of("manual") != w.noise_coefficient or at.bad("manual_noise_coefficient")
        if at.tier == "manual" and not episodic and not own and not at.bad_path("auto", name) \
                and x != getattr(w.auto, name):
            return f"{_n(x)}; expected {_n(getattr(w.auto, name))}, the automatic threshold's: both use one tail fit"
        if x is None:
            return None
        lo, hi = MANUAL_XI_BOUNDS if episodic and at.tier == "manual" else XI_BOUNDS
        if name == "tail_shape" and not lo <= x <= hi:
            return (f"{_n(x)}; expected a shape in [{_n(lo)}, {_n(hi)}] (the fit clips the "
                    f"{'episode ' if episodic else ''}tail's shape to it)")
        if name == "tail_scale" and not x > 0:
            return f"{_n(x)}; expected a scale > 0 (the mean excess over tail_u)"
        if name == "tail_u" and sign is not None:
            floor = _floor(at)
            if floor is not None and not _le(floor[0], sign * x):
                word = "at least" if sign > 0 else "at most"
                return f"{_n(x)}; expected {word} {_n(_shown(at, floor[0]))}: {floor[1]}"
            if not at.bad("statistic_max") and not _le(sign * x, sign * w.statistic_max):
                word = "at most" if sign > 0 else "at least"
                return (f"{_n(x)}; expected {word} statistic_max ({_n(w.statistic_max)}): the tail starts at the "
                        f"history's 90th percentile")
        return None
    return rule


def _tail_exceedances(x: int, at: _At) -> str | None:
    from driftgate.fit.thresholds import MIN_EXCEEDANCES

    w, th = at.win, at.th
    if th is not None and not at.bad_th(*_TAIL) and (th.tail_u is None) != (x == 0):
        if x == 0:
            return "0 with a tail fit (tail_u, tail_shape, tail_scale set); expected its number of exceedances"
        return f"{x} without a tail fit (tail_u, tail_shape and tail_scale null); expected 0"
    if x != 0 and x < MIN_EXCEEDANCES:
        return f"{x}; expected 0 (no tail fit) or at least {MIN_EXCEEDANCES} (the fewest the fit fits a tail to)"
    if w is not None and not at.bad("windows_total") and x > w.windows_total + 1:
        return f"{x}; expected at most windows_total ({w.windows_total}): exceedances are windows"
    return None


def _backtest(x: int, at: _At) -> str | None:
    span, step = _history_seconds(at), at.b.step_seconds
    if x < 0:
        return f"{x}; expected a count of episodes >= 0"
    if span is None or step < 1 or x <= span / step + 1:
        return None
    return f"{x}; expected at most {span / step + 1:.0f}, the evaluations in the history (one every {step}s)"


def _expected_alerts(x: float, at: _At) -> str | None:
    if not x > 0:
        return f"{_n(x)}; expected a number > 0 (the budget's alerts over the history)"
    rate, span, step = at.rate(at.tier), _history_seconds(at), max(at.b.step_seconds, 1)
    if rate is None or span is None or at.bad_top("step_seconds"):
        return None
    lo, hi = rate * (span - 2 * (step + 1) - 2), rate * (span + step + 3)  # the grid's ends, to a step
    if at.facts is not None and at.facts.excluded:
        # Less the evaluations whose window overlaps an excluded span (driftgate.fit.run): at most each span's
        # time inside the history plus a window and a step, twice for a drift signal compared with last week.
        w = at.window_seconds or 0.0
        spans = [(a, b) for a, b in at.facts.excluded if b > _unix(at.b.history_start) - w
                 and a < _unix(at.b.history_end)]
        lo = rate * (span - 2 * sum(b - a + w + step for a, b in spans) - 2 * (step + 1) - 2)
        lo = max(lo, 0.0)
    if _le(lo, x, 1e-4) and _le(x, hi, 1e-4):
        return None
    return (f"{_n(x)}; expected {_n(rate * span)}: what the budget ({at.budget_text()}) allows over "
            f"{_n(span / 86400)} days of history")


# -- a detection


def _shift_label(x: str, at: _At) -> str | None:
    s, d = at.sig, at.det
    if s is None or d is None or at.bad(at.listing):
        return None
    label = "{:.0%} of mass into one bin" if s.kind == "distribution_drift" else "ratio x{:g}"
    want = label.format(d.size)
    return None if x == want else f"{x!r}; expected {want!r} (the fit's description of the shift of size {_n(d.size)})"


def _delay(x: float | None, at: _At) -> str | None:
    w, seconds = at.win, at.window_seconds
    if at.bad(at.listing) or (at.listing == "canary_detection" and at.bad("canary_decides_after_minutes")):
        return None
    if x is None or w is None or seconds is None or at.facts is None or at.facts.alert_for_minutes is None:
        return None if x is None or x > 0 else f"{_n(x)}; expected minutes > 0 or null"
    from driftgate.fit.delay import STEPS

    minutes, for_minutes = seconds / 60.0, at.facts.alert_for_minutes
    first = minutes / STEPS
    if at.listing == "canary_detection" and w.canary_decides_after_minutes is not None:
        first = max(first, w.canary_decides_after_minutes)
    lo, hi = first + for_minutes, minutes + for_minutes
    if _le(lo, x, 1e-4) and _le(x, hi, 1e-4):
        return None
    return (f"{_n(x)}; expected minutes in [{_n(lo)}, {_n(hi)}] or null: the shifted share of the {w.window} window "
            f"crosses the threshold within it, and the alert waits alerts.for ({_n(for_minutes)} min)")


# ---------------------------------------------------------------- the table


def _in(at: _At, **changes: Any) -> _At:
    return dataclasses.replace(at, **changes)


FIELD_RULES: dict[type, dict[str, tuple[Rule, ...]]] = {
    Baseline: {
        "model": _rules(_model),
        "spec": _rules(_spec_path),
        "input_hash": _rules(_pattern(_HASH, "'sha256:' and 64 lowercase hexadecimal digits, the hash the fit "
                                             "computes of its inputs and the exports")),
        "fit_version": _no_check("FIT_VERSION: load refuses another one, or reads it by its shape only"),
        "history_start": _rules(_timestamp),
        "history_end": _rules(_timestamp, _history_end),
        "history_days": _rules(_history_days),
        "step_seconds": _rules(_step_seconds),
        "minimum_days": _rules(_minimum_days),
        "excluded_days": _rules(_excluded_days),
        "provisional": _rules(_provisional),
        "budget_auto": _rules(_budget_field("budget.auto")),
        "budget_manual": _rules(_budget_field("budget.manual")),
        "auto_configurations": _rules(_auto_configurations),
        "manual_configurations": _rules(_manual_configurations),
        "signals": _rules(_signals),
        "fit_inputs": _no_check("checked key by key against MODEL_INPUTS and SIGNAL_INPUTS, see _facts"),
    },
    SignalFit: {
        "name": _rules(_signal_name),
        "kind": _rules(_one_of(ALL_KINDS, "the spec's signal kinds")),
        "statistic": _rules(_statistic),
        "compare_with": _rules(_compare_with),
        "les": _rules(_les),
        "probabilities": _rules(_probabilities),
        "fast": _no_check("a WindowFit, checked field by field"),
        "slow": _no_check("a WindowFit, checked field by field"),
    },
    WindowFit: {
        "window": _rules(_window),
        "windows_total": _rules(_windows_total),
        "windows_decided": _rules(_windows_decided),
        "events_p05": _rules(_at_least(0.0, "an event count")),
        "events_p50": _rules(_events_p50),
        "statistic_p50": _rules(_statistic_range),
        "statistic_tail": _rules(_statistic_range, _ordered(
            "statistic_p50", "the 99th percentile in the alerting direction lies beyond the median")),
        "statistic_max": _rules(_statistic_range, _ordered(
            "statistic_tail", "the most extreme window lies beyond the 99th percentile")),
        "stable_p50": _rules(_stable_p50),
        "noise_coefficient": _rules(_noise_coefficient),
        "manual_noise_coefficient": _rules(_manual_noise_coefficient),
        "noise_power": _rules(_noise_power),
        "auto": _no_check("a ThresholdFit, checked field by field"),
        "manual": _no_check("a ThresholdFit, checked field by field (its value against auto's: _value)"),
        "smallest_shift": _rules(_smallest(False)),
        "detection": _rules(_detections(False)),
        "seasonality_hour_of_day": _rules(_seasonality),
        "seasonality_hour_of_week": _rules(_seasonality),
        "canary_events": _rules(_canary_events),
        "canary_decides_after_minutes": _rules(_canary_decides),
        "canary_smallest_shift": _rules(_smallest(True)),
        "canary_detection": _rules(_detections(True)),
    },
    ThresholdFit: {  # (in this order: the value is checked against the tail fit and the method)
        "exceedance_probability": _rules(_exceedance),
        "tail_u": _rules(_tail_field("tail_u")),
        "tail_shape": _rules(_tail_field("tail_shape")),
        "tail_scale": _rules(_tail_field("tail_scale")),
        "tail_exceedances": _rules(_tail_exceedances),
        "method": _rules(_method),
        "value": _rules(_value),
        "band_low": _rules(_band_end),
        "band_high": _rules(_band_high),
        "backtest_alerts": _rules(_backtest),
        "expected_alerts": _rules(_expected_alerts),
    },
    Detection: {
        "shift": _rules(_shift_label),
        "size": _no_check("the list of sizes is checked against the fit's reference shifts (_detections)"),
        "delay_minutes": _rules(_delay),
    },
}


def _default_rules(tp: Any) -> tuple[Rule, ...]:
    """For a field FIELD_RULES does not list (tests/test_baseline_meaning.py fails until it does): counts are
    never negative."""
    return (_at_least(0, "a count"),) if tp is int else ()


def check_meaning(baseline: Baseline, r: Any) -> None:
    """Record a problem (with its key path and line) for every value the fit would never have written; see
    FIELD_RULES. One problem per key: the first rule a value breaks."""
    failed: set[tuple[str | int, ...]] = set()
    facts = _facts(baseline, r, failed)
    if facts is not None:
        _check_directions(baseline, facts, r, failed)
    at = _At(baseline, facts, failed)
    _walk(baseline, (), at, r)


def _check_directions(b: Baseline, facts: _Facts, r: Any, failed: set[tuple[str | int, ...]]) -> None:
    """A direction in the fit inputs that both windows' statistics contradict (median, 99th percentile and
    extreme in the other direction's order) is the one edit: reported once, and not used for the rest."""
    def ordered(w: WindowFit, sign: float) -> bool:
        return _le(sign * w.statistic_p50, sign * w.statistic_tail) and _le(sign * w.statistic_tail,
                                                                           sign * w.statistic_max)
    for s in b.signals:
        sf = facts.signals.get(s.name)
        if sf is None:
            continue
        sign = -1.0 if sf.direction == "below" else 1.0
        if all(not ordered(w, sign) and ordered(w, -sign) for w in (s.fast, s.slow)):
            key = f"signals.{s.name}.direction"
            other = "above" if sign < 0 else "below"
            r.error(("fit_inputs", key), f"{sf.direction!r}, but the statistics of both windows lie in the order of "
                                         f"direction {other} (statistic_p50, statistic_tail, statistic_max); "
                                         f"expected the direction they were fitted for; {RESTORE}")
            failed.add(("fit_inputs", key))
            del facts.signals[s.name]


def _walk(obj: Any, path: tuple[str | int, ...], at: _At, r: Any) -> None:
    """Check ``obj``'s fields in the table's order (a rule may rely on the keys before it), then descend."""
    hints = _hints(type(obj))
    rules = FIELD_RULES.get(type(obj), {})
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for name in [*(n for n in rules if n in fields), *(n for n in fields if n not in rules)]:
        f = fields[name]
        value = getattr(obj, f.name)
        here = (*path, f.name)
        for rule in rules.get(f.name, _default_rules(hints[f.name])):
            found = rule(value, at)
            if found:
                below, message = found if isinstance(found, tuple) else ((), found)
                r.error((*here, *below), f"{message}; {RESTORE}")
                at.failed.add(here)
                break
        if isinstance(obj, Baseline) and f.name == "signals":
            for i, s in enumerate(value):
                _walk(s, (*here, i), _in(at, sig=s, sig_path=(*here, i)), r)
        elif isinstance(obj, SignalFit) and f.name in ("fast", "slow"):
            # A window's numbers mean something only for a signal of a known kind, statistic and buckets.
            known = not at.bad_sig("kind", "statistic", "les", "probabilities", "name")
            _walk(value, here, _in(at, sig=obj if known else None, which=f.name, win=value, win_path=here), r)
        elif isinstance(obj, WindowFit) and f.name in ("auto", "manual"):
            _walk(value, here, _in(at, tier=f.name, th=value, th_path=here), r)
        elif isinstance(obj, WindowFit) and f.name in ("detection", "canary_detection"):
            for i, d in enumerate(value):
                _walk(d, (*here, i), _in(at, listing=f.name, det=d), r)
