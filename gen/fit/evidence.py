"""The evidence behind a fit that the plan draws: each decision statistic's history, compressed.

``baselines/<model>.evidence.json`` sits next to the baseline and is written by ``fit`` only. It
keeps, per signal and window, the hourly extreme of the decision statistic (the max for
``direction: above``, the min for ``below``: an hour whose extreme crosses a threshold contains
every would-have-fired moment), and for drift signals the bins of the most recent slow window.
Render draws the pictures from it, so rendering stays pure and needs no exports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftgate.errors import BaselineError, Problem
from driftgate.exports.series import FloatArray, Series
from driftgate.fsio import FileRefused, read_bytes

if TYPE_CHECKING:
    from driftgate.baseline import Baseline

HOUR = 3600.0
DIGITS = 4


@dataclass(frozen=True)
class WindowEvidence:
    start: float  # unix seconds of the first hour
    values: tuple[float | None, ...]  # hourly extreme of the decision statistic; None: no decision
    # At the evaluation where the decision statistic was most extreme in each hour: the statistic itself
    # (before the noise term) and the window's event count, so that a picture draws the statistic against
    # its threshold at that traffic (a + b·n^-k). Empty in an evidence file written before they were kept.
    statistic: tuple[float | None, ...] = ()
    events: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class SignalEvidence:
    fast: WindowEvidence
    slow: WindowEvidence
    recent_bins: tuple[float, ...]  # drift only: counts per bin in the last slow window

    def window(self, which: str) -> WindowEvidence:
        return self.fast if which == "fast" else self.slow


@dataclass(frozen=True)
class ExcludedEvidence:
    """One span of history.exclude the fit left out (RFC 3339 UTC), for the pictures to mark."""

    start: str
    end: str
    reason: str


@dataclass(frozen=True)
class VersionEvidence:
    """One value of the version label in the history: from its first to its last sample (RFC 3339 UTC)."""

    version: str
    start: str
    end: str


@dataclass(frozen=True)
class Evidence:
    model: str
    signals: dict[str, SignalEvidence] = field(default_factory=dict)
    excluded: tuple[ExcludedEvidence, ...] = ()  # written only when there are any
    versions: tuple[VersionEvidence, ...] = ()  # written only when the history holds more than one


def versions_in(series: Iterable[Series], label: str) -> tuple[VersionEvidence, ...]:
    """The values of ``label`` in ``series``, each from its first to its last sample, in order of their
    first sample (then by name); empty when the history holds one version or none: nothing changed."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for s in series:
        v = s.label(label)
        if v is None or not s.t.size:
            continue
        first[v] = min(first.get(v, math.inf), float(s.t[0]))
        last[v] = max(last.get(v, -math.inf), float(s.t[-1]))
    if len(first) < 2:
        return ()
    from driftgate.baseline import rfc3339

    order = sorted(first, key=lambda k: (first[k], k))
    return tuple(VersionEvidence(v, rfc3339(first[v]), rfc3339(last[v])) for v in order)


def hourly(t: FloatArray, x: FloatArray, below: bool, statistic: FloatArray | None = None,
           events: FloatArray | None = None) -> WindowEvidence:
    """Hourly extremes of ``x`` (vectorised; empty hours become None), and ``statistic`` and ``events`` at
    the evaluation of each hour where ``x`` is most extreme (the first such one)."""
    if t.size == 0:
        return WindowEvidence(0.0, ())
    start = math.floor(float(t[0]) / HOUR) * HOUR
    slot = ((t - start) // HOUR).astype(np.int64)
    n = int(slot[-1]) + 1
    fill = np.inf if below else -np.inf
    out = np.full(n, fill)
    ok = np.isfinite(x)
    (np.minimum if below else np.maximum).at(out, slot[ok], x[ok])
    values = tuple(None if not np.isfinite(v) else _round(float(v)) for v in out)
    if statistic is None or events is None:
        return WindowEvidence(start, values)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((idx, x[idx] if below else -x[idx], slot[idx]))]  # per hour: the extreme first
    hours, first = np.unique(slot[order], return_index=True)
    at = np.full(n, -1, dtype=np.int64)
    at[hours] = order[first]
    stat = tuple(None if i < 0 or not np.isfinite(statistic[i]) else _round(float(statistic[i])) for i in at)
    count = tuple(None if i < 0 or not np.isfinite(events[i]) else float(round(float(events[i]))) for i in at)
    return WindowEvidence(start, values, stat, count)


def _round(x: float) -> float:
    return float(f"{x:.{DIGITS}g}")


def _trace(w: WindowEvidence) -> dict[str, Any]:
    out: dict[str, Any] = {"start": w.start, "values": list(w.values)}
    if w.statistic:
        out["statistic"], out["events"] = list(w.statistic), list(w.events)
    return out


def _window(doc: Any, where: str) -> WindowEvidence:
    values = _values(doc["values"], f"{where}.values")
    statistic = _values(doc["statistic"], f"{where}.statistic") if "statistic" in doc else ()
    events = _values(doc["events"], f"{where}.events") if "events" in doc else ()
    # (an empty trace is reported by meaning_problems, on its values)
    if ("statistic" in doc) != ("events" in doc) or (values and statistic
                                                     and not len(statistic) == len(events) == len(values)):
        raise ValueError(f"{where}: expected statistic and events together, one per hour of values "
                         f"({len(values)}), got {len(statistic)} and {len(events)}")
    if any(e is not None and e < 0 for e in events):
        raise ValueError(f"{where}.events: expected event counts >= 0")
    return WindowEvidence(_number(doc["start"], f"{where}.start"), values, statistic, events)


def dumps(ev: Evidence) -> str:
    note = f"Generated by driftgate fit for model {ev.model}. DO NOT EDIT: run 'make gen' to refit."
    doc: dict[str, Any] = {"_generated": note,
           "model": ev.model, "signals": {
        name: {"fast": _trace(s.fast), "slow": _trace(s.slow), "recent_bins": [_round(b) for b in s.recent_bins]}
        for name, s in sorted(ev.signals.items())}}
    if ev.excluded:  # (absent when empty: the evidence of a fit without history.exclude is unchanged)
        doc["excluded"] = [{"from": x.start, "to": x.end, "reason": x.reason} for x in ev.excluded]
    if ev.versions:  # (absent for a history of one version)
        doc["versions"] = [{"version": x.version, "from": x.start, "to": x.end} for x in ev.versions]
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def load(path: Path, display: str, root: Path | None = None, baseline: Baseline | None = None) -> Evidence | None:
    """The evidence file, or None when it does not exist (plots are then left out).

    A FIFO, a folder or a symlink out of ``root`` is refused without being read (:mod:`driftgate.fsio`).
    What it holds is checked against what the fit writes (:func:`meaning_problems`), and, given the
    ``baseline`` it was fitted with, against that: the pictures are drawn from both."""
    if not path.is_symlink() and not path.exists():
        return None
    try:
        raw = read_bytes(path, display, MAX_BYTES, root, "evidence file")
    except FileRefused as exc:
        raise BaselineError([Problem(display, 0, 0, "", str(exc).removeprefix(f"{display}: "))]) from None
    try:
        doc: Any = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("signals"), dict):
            raise ValueError("expected an object with a 'signals' object")
        signals = {
            name: SignalEvidence(
                fast=_window(s["fast"], f"signals.{name}.fast"),
                slow=_window(s["slow"], f"signals.{name}.slow"),
                recent_bins=tuple(_number(b, f"signals.{name}.recent_bins[{i}]")
                                  for i, b in enumerate(s["recent_bins"])))
            for name, s in doc["signals"].items()}
        if not isinstance(doc["model"], str):
            raise ValueError(f"model: expected a string, got {json.dumps(doc['model'])[:40]}")
        excluded = tuple(_excluded(x, f"excluded[{i}]") for i, x in enumerate(_list(doc["excluded"], "excluded"))) \
            if "excluded" in doc else ()
        versions = tuple(_version(x, f"versions[{i}]") for i, x in enumerate(_list(doc["versions"], "versions"))) \
            if "versions" in doc else ()
        evidence = Evidence(doc["model"], signals, excluded, versions)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            detail = f"not UTF-8 text: byte {exc.start}"
        elif isinstance(exc, json.JSONDecodeError):
            detail = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        elif isinstance(exc, RecursionError):
            detail = "the JSON nests too deeply"
        elif isinstance(exc, KeyError):
            detail = f"missing key {exc}"
        else:
            detail = str(exc)
        raise BaselineError([Problem(display, 0, 0, "", f"malformed evidence file ({detail}); "
                                     f"refit with 'driftgate fit --force'")]) from None
    problems = meaning_problems(evidence, display, baseline)
    if problems:
        raise BaselineError(problems)
    return evidence


RESTORE = "refit with 'driftgate fit --force' or restore the file"


def meaning_problems(ev: Evidence, display: str, baseline: Baseline | None = None) -> list[Problem]:
    """What the fit never writes into an evidence file (driftgate.fit.run: one hourly trace per signal and
    window, both ending at the history's last hour, bin counts for drift signals) and, given its
    ``baseline``, what does not belong to it: each a problem naming the key path (one per trace)."""
    from driftgate.spec.names import SIGNAL_NAME

    problems: list[Problem] = []

    def bad(where: str, message: str) -> None:
        problems.append(Problem(display, 0, 0, where, f"{message}; {RESTORE}"))

    fits = {s.name: i for i, s in enumerate(baseline.signals)} if baseline is not None else {}
    if baseline is not None and ev.model != baseline.model:
        bad("model", f"{ev.model!r}; expected {baseline.model!r}, the model of the baseline next to it")
    for name, s in sorted(ev.signals.items()):
        where = f"signals.{name}"
        if not SIGNAL_NAME.fullmatch(name):
            bad(where, "expected a signal name (lowercase letters, digits and '_', starting with a letter)")
            continue
        if baseline is not None and name not in fits:
            bad(where, f"a trace of a signal the baseline has no fit of; expected those of its signals "
                       f"({', '.join(fits)})")
            continue
        ok = {which: _trace_problem(s.window(which), f"{where}.{which}", bad) for which in ("fast", "slow")}
        for i, count in enumerate(s.recent_bins):
            if count < 0:
                bad(f"{where}.recent_bins[{i}]", f"{count:g}; expected an event count >= 0")
                break
        if baseline is not None:
            _against(s, where, fits[name], baseline, bad)
        if all(ok.values()):
            fast_end, slow_end = (w.start + HOUR * (len(w.values) - 1) for w in (s.fast, s.slow))
            if fast_end != slow_end:
                bad(where, f"the fast trace ends at {_when(fast_end)}, the slow one at {_when(slow_end)}; expected "
                           f"both to end at the same hour: both follow the evaluations to the history's end")
    if baseline is not None:
        recorded = baseline.fit_inputs.get("history.exclude")
        mine = json.dumps([{"from": x.start, "to": x.end, "reason": x.reason} for x in ev.excluded],
                          sort_keys=True) if ev.excluded else None
        if mine != recorded and (recorded is None or _same_json(recorded) is not None):
            bad("excluded", f"{len(ev.excluded)} span(s); expected the spans of the baseline's fit input "
                            f"history.exclude ({'none' if recorded is None else recorded[:200]})")
        for name in fits:
            if name not in ev.signals:
                bad("signals", f"no trace of signal '{name}'; expected one per signal of the baseline (the plan "
                               f"draws its history from it)")
    return problems


def _same_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None  # reported by the baseline's own checks


def _when(t: float) -> str:
    from driftgate.baseline import rfc3339

    try:
        return rfc3339(t) if t == int(t) else f"{t!r}"
    except (ValueError, OverflowError, OSError):
        return f"{t!r}"


def _trace_problem(w: WindowEvidence, where: str, bad: Any) -> bool:
    """Whether a trace is one the fit writes (an hourly series starting at an hour); else report it."""
    if not w.values:
        bad(f"{where}.values", "an empty list; expected the hourly trace of the history")
        return False
    if w.start % HOUR or w.start < 0:
        bad(f"{where}.start", f"{_when(w.start)}; expected the start of an hour (unix seconds, a multiple of 3600)")
        return False
    return True


def _against(s: SignalEvidence, where: str, index: int, baseline: Baseline, bad: Any) -> None:
    """One signal's bin counts against its fit in ``baseline``.

    The hourly traces are not held to the baseline's numbers: they include hours the fit's statistics leave
    out (windows below min_events, the history's ends), so a real fit's trace can lie beyond statistic_max (a
    check there refused a fresh fit of the example). Their own shape is checked by meaning_problems."""

    fit = baseline.signals[index]
    if fit.kind == "distribution_drift" and len(s.recent_bins) != len(fit.les):
        bad(f"{where}.recent_bins", f"{len(s.recent_bins)} counts; expected one per bucket of signals[{index}].les "
                                    f"({len(fit.les)}) in the baseline")
    elif fit.kind != "distribution_drift" and s.recent_bins:
        bad(f"{where}.recent_bins", f"{len(s.recent_bins)} counts; expected none for a signal of kind {fit.kind}")


MAX_BYTES = 20_000_000  # hourly values of 20 signals x 2 windows over years fit in a fraction of it


def _number(value: Any, where: str) -> float:
    # The pictures are drawn from these: a string or NaN here used to end in a traceback in matplotlib.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {json.dumps(value)}")
    return float(value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected a non-empty list, got {json.dumps(value)[:40]}")
    return value


def _version(value: Any, where: str) -> VersionEvidence:
    from driftgate.baseline import _RFC3339

    if not isinstance(value, dict) or set(value) != {"version", "from", "to"}:
        raise ValueError(f"{where}: expected an object with version, from and to, got {json.dumps(value)[:60]}")
    if not isinstance(value["version"], str):
        raise ValueError(f"{where}.version: expected a string, got {json.dumps(value['version'])[:40]}")
    for key in ("from", "to"):
        if not isinstance(value[key], str) or not _RFC3339.fullmatch(value[key]):
            raise ValueError(f"{where}.{key}: expected an RFC 3339 UTC time, got {json.dumps(value[key])[:40]}")
    if value["from"] > value["to"]:
        raise ValueError(f"{where}: expected from no later than to, got {value['from']} -> {value['to']}")
    return VersionEvidence(value["version"], value["from"], value["to"])


def _excluded(value: Any, where: str) -> ExcludedEvidence:
    from driftgate.baseline import _RFC3339

    if not isinstance(value, dict) or set(value) != {"from", "to", "reason"}:
        raise ValueError(f"{where}: expected an object with from, to and reason, got {json.dumps(value)[:60]}")
    for key in ("from", "to"):
        if not isinstance(value[key], str) or not _RFC3339.fullmatch(value[key]):
            raise ValueError(f"{where}.{key}: expected an RFC 3339 UTC time, got {json.dumps(value[key])[:40]}")
    if not value["from"] < value["to"]:
        raise ValueError(f"{where}: expected from before to, got {value['from']} -> {value['to']}")
    if not isinstance(value["reason"], str) or not value["reason"].strip():
        raise ValueError(f"{where}.reason: expected a non-empty string, got {json.dumps(value['reason'])[:40]}")
    return ExcludedEvidence(value["from"], value["to"], value["reason"])


_PLAIN = frozenset({float, int, type(None)})


def _values(values: Any, where: str) -> tuple[float | None, ...]:
    if not isinstance(values, list):
        raise ValueError(f"{where}: expected a list, got {json.dumps(values)[:40]}")
    # The common case, checked in bulk (a trace has thousands of hours): plain numbers and nulls, all finite.
    kinds = {type(v) for v in values}
    if kinds <= _PLAIN and all(map(math.isfinite, (v for v in values if v is not None))):
        return tuple(values) if int not in kinds else tuple(v if v is None or type(v) is float else float(v)
                                                            for v in values)
    return tuple(None if v is None else _number(v, f"{where}[{i}]") for i, v in enumerate(values))
