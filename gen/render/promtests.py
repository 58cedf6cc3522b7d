"""Behavioural ``promtool test rules`` files, generated per model and shipped with the rules.

For every histogram that a drift signal watches, four versions of the service are simulated at 1m
resolution for at least two hours (exact counter increments, so Prometheus and numpy see the same counts):

* ``stable``: the baseline distribution, with a pod restart (counter reset) before the onset:
  no rollback alert, ever;
* ``collapse``: the baseline until the onset, then all mass in the bin the baseline uses least (an
  embedding bug): the automatic alert (manual, for a manual-tier or provisional signal) fires on the
  fast window no later than the promised time (first crossing + ``for`` + one evaluation);
* ``moderate_<signal>``: per signal, the smallest shift toward the most-used bin that clears its
  thresholds by 5%: its automatic alert fires on both windows, so a threshold set too high fails;
* ``ambiguous``: a shift between the manual band and the automatic threshold: only the manual alert;
* ``quiet``: collapsed but with too few events: no decision, so no alert;
* ``fresh``: a new version whose pods appear at the onset, collapsed and busy: no decision (not even a
  pending alert) while it has been counted at fewer than ``MIN_SAMPLES`` rule evaluations in the
  window, then the collapse alert fires.

The recorded PSI / JS / TVD of ``ambiguous`` must equal numpy's value for the same counts to 1e-9.
When no shift lands strictly between the bands of every signal (bands too close), the ambiguous
case is left out and the file says so.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import yaml

from driftgate.baseline import SignalFit
from driftgate.errors import RenderError
from driftgate.fit import statistics as st
from driftgate.model import Direction, Signal, SignalKind
from driftgate.render.context import ModelContext, WindowRow
from driftgate.render.rules import AUTO_ALERT, MANUAL_ALERT, MIN_SAMPLES, alert_for

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Source:
    metric: str
    labels: tuple[tuple[str, str], ...]
    les: tuple[str, ...]
    q: np.ndarray
    signals: tuple[tuple[Signal, tuple[WindowRow, ...], str], ...]  # signal, windows, tier


def _sources(ctx: ModelContext) -> list[Source]:
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[Signal, tuple[WindowRow, ...], str]]] = {}
    fits: dict[tuple[str, tuple[tuple[str, str], ...]], SignalFit] = {}
    for row in ctx.rows:
        s = row.signal
        if s.kind is not SignalKind.DISTRIBUTION_DRIFT or s.direction is not Direction.ABOVE:
            continue
        if s.compare_with != "baseline":  # last week's traffic: checked against a real server instead
            continue
        key = (s.metric, tuple(sorted((*ctx.spec.prometheus.selector, *s.matchers))))
        groups.setdefault(key, []).append((s, row.windows, row.tier))
        fits.setdefault(key, row.fit)
    out = []
    for (metric, labels), sigs in groups.items():
        fit = fits[(metric, labels)]
        out.append(Source(metric, labels, fit.les, np.array(fit.probabilities), tuple(sigs)))
    return out


def _increments(shares: np.ndarray, per_min: int) -> np.ndarray:
    """Integer per-minute bin increments with exactly ``per_min`` events, as close to ``shares`` as
    integers allow: the largest-remainder method (one extra event to each of the bins with the largest
    fractional parts). Putting the whole remainder into one bin bent a many-bin "stable" version far
    enough from its baseline to fire the automatic alert."""
    raw = shares / shares.sum() * per_min
    out = np.floor(raw)
    short = round(float(per_min - out.sum()))
    if short > 0:
        order = np.argsort(-(raw - out), kind="stable")
        out[order[:short]] += 1
    result: np.ndarray = out
    return result


@dataclass(frozen=True)
class Timeline:
    """Minutes of the simulation: long enough to fill the longest window after the onset."""

    minutes: int
    onset: int
    restart: int

    @staticmethod
    def for_windows(longest: int) -> Timeline:
        onset = max(60, longest + 10)
        return Timeline(onset + max(60, longest + 10), onset, onset - 10)


def _series(src: Source, version: str, v_label: str, tl: Timeline, before: np.ndarray,
            after: np.ndarray | None = None, restart: bool = False, born: int = 0) -> list[dict[str, str]]:
    out = []
    cum_before, cum_after = np.cumsum(before), np.cumsum(after if after is not None else before)
    for i, le in enumerate(src.les):
        a, b = _count(cum_before[i]), _count(cum_after[i])
        if born:  # no series before minute ``born``
            values = f"_x{born} 0+{a}x{tl.minutes - born - 1}"
        elif after is not None:
            at_onset = _count(cum_before[i] * tl.onset + cum_after[i])
            values = f"0+{a}x{tl.onset} {at_onset}+{b}x{tl.minutes - tl.onset - 1}"
        elif restart:
            values = f"0+{a}x{tl.restart - 1} 0+{a}x{tl.minutes - tl.restart}"
        else:
            values = f"0+{a}x{tl.minutes}"
        labels = ",".join(f'{k}="{val}"' for k, val in (*src.labels, ("le", le), (v_label, version),
                                                        ("pod", f"{version}-0")))
        out.append({"series": f"{src.metric}_bucket{{{labels}}}", "values": values})
    return out


def _count(x: float) -> str:
    """A per-minute counter increment: integers as integers, a fractional rate (``quiet``) exactly."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _stat(signal: Signal, bins: np.ndarray, q: np.ndarray) -> float:
    return float(st.drift(signal.statistic, bins[None, :], q)[0])


def _decision(signal: Signal, w: WindowRow, bins: np.ndarray, q: np.ndarray, tier: str = "auto") -> float:
    """What ``tier``'s alert compares: the statistic minus that tier's count-aware noise term
    (driftgate.fit.noise; the manual band has its own)."""
    n = float(bins.sum())
    coef = w.fit.noise_of(tier)
    term = coef / n**w.fit.noise_power if coef and n > 0 else 0.0
    return _stat(signal, bins, q) - term


def _increments_rows(shares: np.ndarray, per_min: int) -> np.ndarray:
    """:func:`_increments` of every row of ``shares`` at once (the same arithmetic, row by row)."""
    raw = shares / shares.sum(axis=-1, keepdims=True) * per_min
    out = np.floor(raw)
    short = np.round(per_min - out.sum(axis=-1))
    order = np.argsort(-(raw - out), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(shares.shape[-1]), order.shape), axis=-1)
    result: np.ndarray = out + (rank < short[:, None])
    return result


def _decisions(signal: Signal, w: WindowRow, bins: np.ndarray, q: np.ndarray, tier: str = "auto") -> np.ndarray:
    """:func:`_decision` of every row of ``bins`` at once."""
    stats = st.drift(signal.statistic, bins, q)
    coef, power = w.fit.noise_of(tier), w.fit.noise_power
    terms = [coef / n**power if coef and n > 0 else 0.0 for n in bins.sum(axis=-1).tolist()]
    out: np.ndarray = stats - np.array(terms)
    return out


def _mixtures(src: Source, k: int, lams: np.ndarray, per_min: int) -> np.ndarray:
    """The integer increments of ``(1-l) q + l e_k`` for each ``l`` in ``lams`` (one row each)."""
    target = np.zeros(len(src.q))
    target[k] = 1.0
    return _increments_rows((1 - lams[:, None]) * (src.q / src.q.sum())[None, :] + lams[:, None] * target[None, :],
                            per_min)


def _silent(src: Source, normal: np.ndarray, manual: bool) -> bool:
    """Whether the baseline traffic at these integer increments decides below every automatic threshold
    (``manual``: and below every manual band) on every window: what the test asserts of ``stable``."""
    for signal, windows, tier in src.signals:
        for w in windows:
            bins = normal * _counted(w.window)
            limits = ([(_decision(signal, w, bins, src.q, "manual"), w.eff.manual)] if manual else []) + (
                [(_decision(signal, w, bins, src.q), w.eff.auto)] if tier == "auto" else [])
            if any(not value < x - 1e-9 - 1e-6 * abs(x) for value, x in limits):
                return False
    return True


def _normal_traffic(ctx: ModelContext, src: Source, per_min: int) -> tuple[int, np.ndarray, bool]:
    """The per-minute rate and integer bin increments of the ``stable`` version, proven silent in numpy
    (the rules' twin) before the test claims it. Integer counts approximate the baseline shares only to
    about one event per bin, which a tight fitted band (much history, rare bins) can exceed: more
    traffic helps. A band below zero (the noise term ``b·n^-k`` over-covers the history) is met only
    near the history's own traffic: less helps. Candidates: the preferred rate, the history's median
    rate, then doubling and halving (never below a rate at which every window decides); render fails
    rather than write a test that fails.

    A generous manual budget puts the manual band inside normal variation (a band at the 60th
    percentile of normal windows is below zero after the noise term): a healthy version then *should*
    page for review in that share of windows, and ``stable`` is checked against the automatic alert
    only (the third value is False, and the file says so)."""
    fast = min((w for _, ws, _ in src.signals for w in ws), key=lambda w: _minutes(w.window))
    lowest = max(1, math.ceil(max(s.min_events for s, _, _ in src.signals) / _counted(fast.window)))
    median = max(lowest, round(fast.fit.events_p50 / _counted(fast.window)))
    candidates = [per_min, median, *(per_min * 2**i for i in range(1, 30)),
                  *(max(lowest, per_min // 2**i) for i in range(1, 20))]
    for manual in (True, False):
        for rate in dict.fromkeys(candidates):
            normal = _increments(src.q, rate)
            if _silent(src, normal, manual):
                return rate, normal, manual
    bands = ", ".join(f"{s.name} {w.which} {w.eff.auto:.6g}" for s, ws, t in src.signals for w in ws if t == "auto")
    raise RenderError(f"{ctx.spec.spec_path}: {src.metric}: the baseline distribution itself, at any integer event "
                      f"count, decides at or above an automatic threshold ({bands}); the baseline "
                      f"(baselines/{ctx.spec.name}.yaml) cannot be right: refit with 'driftgate fit --force'")


@functools.lru_cache(maxsize=256)
def _minutes(window: str) -> int:
    from driftgate.validate.durations import parse_prom_duration

    return int(parse_prom_duration(window) // 60)


def _counted(window: str) -> int:
    """Per-minute increments a window of 1-minute scrapes counts: ``m`` for ``m`` minutes, on
    Prometheus 2.x and 3.x alike (the recorded steps telescope from the sample at the window's start to
    the last one: :mod:`driftgate.fit.windows`)."""
    return _minutes(window)


def _ambiguous(src: Source, per_min: int) -> tuple[np.ndarray, float] | None:
    """A mixture ``(1-l) q + l * e_k`` whose statistics sit between every manual band and auto threshold:
    the first ``l`` of 300 from 0.002 to 0.6 toward the least-used bin that does, then the next bin."""
    lams = np.linspace(0.002, 0.6, 300)
    for k in np.argsort(src.q):
        inc = _mixtures(src, int(k), lams, per_min)
        ok_all, any_manual = np.ones(len(lams), bool), np.zeros(len(lams), bool)
        for signal, windows, tier in src.signals:
            for w in windows:
                value = _decisions(signal, w, inc * _counted(w.window), src.q)
                mvalue = _decisions(signal, w, inc * _counted(w.window), src.q, "manual")
                limit = w.eff.auto if tier == "auto" else math.inf
                ok_all &= ~((value > limit) | (np.abs(mvalue - w.eff.manual) < 1e-4 * w.eff.manual))
                any_manual |= mvalue > w.eff.manual
        hits = np.flatnonzero(ok_all & any_manual)
        if len(hits):
            return inc[hits[0]], float(lams[hits[0]])
    return None


def _moderate(src: Source, signal: Signal, windows: tuple[WindowRow, ...], tier: str,
              per_min: int) -> np.ndarray | None:
    """The smallest shift toward the most-used bin that clears ``signal``'s thresholds by 5%."""
    lams = np.linspace(0.002, 1.0, 500)
    inc = _mixtures(src, int(np.argmax(src.q)), lams, per_min)
    clears = np.ones(len(lams), bool)
    for w in windows:
        clears &= _decisions(signal, w, inc * _counted(w.window), src.q, tier) > 1.05 * (
            w.eff.auto if tier == "auto" else w.eff.manual)
    hits = np.flatnonzero(clears)
    return inc[hits[0]] if len(hits) else None


# libyaml's emitter writes these documents (strings, numbers, lists, mappings) byte for byte as the
# pure-Python one does (tests/test_yamlload_fast.py), about 10x faster; PyYAML without libyaml uses the latter.
DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def render_test(ctx: ModelContext, rules_file: str) -> str | None:
    """The promtool test document for ``ctx``'s drift signals, or None when it has none."""
    sources = _sources(ctx)
    if not sources:
        return None
    v = ctx.spec.prometheus.version_label
    wait = _minutes(alert_for(ctx.spec)) + 1
    tl = Timeline.for_windows(max(_minutes(w.window) for src in sources for _, ws, _ in src.signals for w in ws))
    end = tl.minutes - 1
    series: list[dict[str, str]] = []
    checks: list[dict[str, object]] = []
    notes = []
    for src in sources:
        min_events = max(s.min_events for s, _, _ in src.signals)
        fast = min(_minutes(w.window) for _, ws, _ in src.signals for w in ws)
        per_min, normal, manual_silent = _normal_traffic(ctx, src, max(200, math.ceil(4 * min_events / fast)))
        silent = f"{AUTO_ALERT}|{MANUAL_ALERT}" if manual_silent else AUTO_ALERT
        if not manual_silent:
            notes.append(f"{src.metric}: a manual band lies within normal variation (the manual budget allows a "
                         f"review page in many normal windows): the stable version is checked against "
                         f"{AUTO_ALERT} only")
        collapsed = np.zeros(len(src.q))
        collapsed[int(np.argmin(src.q))] = per_min
        # Fewer than min_events in every window, the longest included: a rate of half of that.
        longest = max(_minutes(w.window) for _, ws, _ in src.signals for w in ws)
        quiet = np.zeros(len(src.q))
        quiet[int(np.argmin(src.q))] = min(s.min_events for s, _, _ in src.signals) / (2 * longest)
        series += _series(src, "stable", v, tl, normal, restart=True)
        series += _series(src, "collapse", v, tl, normal, collapsed)
        series += _series(src, "quiet", v, tl, quiet)
        series += _series(src, "fresh", v, tl, 4 * collapsed, born=tl.onset)
        for signal, windows, tier in src.signals:
            moderate = _moderate(src, signal, windows, tier, per_min)
            if moderate is None:
                notes.append(f"{signal.name}: no shift toward the most-used bin clears its thresholds")
                continue
            version = f"moderate_{signal.name}"
            series += _series(src, version, v, tl, moderate)
            name, level = (AUTO_ALERT, "auto") if tier == "auto" else (MANUAL_ALERT, "manual")
            fire = [{"labels": _alert_labels(ctx, name, level, signal.name, w.which, version), "value": 1}
                    for w in windows]
            checks.append({"expr": f'ALERTS{{alertstate="firing",alertname="{name}",{v}="{version}",'
                                   f'signal="{signal.name}"}}',
                           "eval_time": f"{end}m", "exp_samples": fire})
        amb = _ambiguous(src, per_min)
        if amb is None:
            notes.append(f"{src.metric}: no shift lies strictly between the manual and automatic bands of "
                         f"every signal; the ambiguous case is omitted")
        else:
            series += _series(src, "ambiguous", v, tl, amb[0])
        # Normal traffic and too-little traffic: silence at all times.
        for t in sorted({20, tl.restart + 5, tl.onset + 30, end}):
            checks.append({"expr": f'ALERTS{{alertname=~"{silent}",{v}=~"stable|quiet"}}',
                           "eval_time": f"{t}m", "exp_samples": []})
        # The collapse: first crossing on the fast window, plus for, plus one evaluation.
        expect = []
        latest = 0
        for signal, windows, tier in src.signals:
            w = next(w for w in windows if w.which == "fast")
            m = _counted(w.window)
            threshold = w.eff.auto if tier == "auto" else w.eff.manual
            cross = None
            for k in range(1, m + 1):
                bins = normal * (m - k) + collapsed * k
                if _decision(signal, w, bins, src.q, tier) > threshold:
                    cross = k
                    break
            assert cross is not None, "a collapse must cross every threshold within one window"
            latest = max(latest, cross + wait)
            name = AUTO_ALERT if tier == "auto" else MANUAL_ALERT
            expect.append((signal, name, tier))
        at = tl.onset + latest
        for signal, name, tier in expect:
            checks.append({"expr": f'ALERTS{{alertname="{name}",alertstate="firing",{v}="collapse",'
                                   f'signal="{signal.name}",window="fast"}}',
                           "eval_time": f"{at}m",
                           "exp_samples": [{"labels": _alert_labels(ctx, name, tier, signal.name, "fast", "collapse"),
                                            "value": 1}]})
            if manual_silent or name == AUTO_ALERT:  # before the onset the collapse version is normal
                checks.append({"expr": f'ALERTS{{alertname="{name}",{v}="collapse",signal="{signal.name}"}}',
                               "eval_time": f"{tl.onset - 1}m", "exp_samples": []})
            checks.append({"expr": f'ALERTS{{alertname="{name}",alertstate="firing",{v}="fresh",'
                                   f'signal="{signal.name}",window="fast"}}',
                           "eval_time": f"{end}m",
                           "exp_samples": [{"labels": _alert_labels(ctx, name, tier, signal.name, "fast", "fresh"),
                                            "value": 1}]})
        # A brand-new version counted at MIN_SAMPLES - 1 evaluations (its first sample counts nothing):
        # nothing decides, not even a pending alert.
        checks.append({"expr": f'ALERTS{{{v}="fresh"}}', "eval_time": f"{tl.onset + MIN_SAMPLES - 1}m",
                       "exp_samples": []})
        if amb is not None:
            inc = amb[0]
            firing = []
            for signal, windows, _tier in src.signals:
                for w in windows:
                    m = _counted(w.window)
                    value = _stat(signal, inc * m, src.q)
                    if _decision(signal, w, inc * m, src.q, "manual") > w.eff.manual:
                        firing.append({"labels": _alert_labels(ctx, MANUAL_ALERT, "manual", signal.name, w.which,
                                                               "ambiguous"), "value": 1})
                    record = f"model_version:driftgate_{signal.name}:{signal.statistic.value}{w.window}"
                    checks.append({
                        "expr": f'abs({record}{{{v}="ambiguous"}} - {value!r}) < bool {TOLERANCE}',
                        "eval_time": f"{end}m",
                        "exp_samples": [{"labels": f'{{model="{ctx.spec.name}",{v}="ambiguous",'
                                                   f'signal="{signal.name}"}}', "value": 1}]})
            checks.append({"expr": f'ALERTS{{alertstate="firing",alertname=~"{AUTO_ALERT}|{MANUAL_ALERT}",'
                                   f'{v}="ambiguous"}}',
                           "eval_time": f"{end}m", "exp_samples": sorted(firing, key=lambda s: str(s))})
    doc = {"rule_files": [rules_file], "evaluation_interval": ctx.spec.prometheus.evaluation_interval.text,
           "tests": [{"name": f"{ctx.spec.name}: drift rules on synthetic versions", "interval": "1m",
                      "input_series": series, "promql_expr_test": checks}]}
    text = yaml.dump(doc, Dumper=DUMPER, sort_keys=False, width=1_000_000, default_flow_style=False)
    return "".join(f"# {n}\n" for n in notes) + text


def _alert_labels(ctx: ModelContext, name: str, tier: str, signal: str, window: str, version: str) -> str:
    severity = "critical" if tier == "auto" else "warning"
    labels = {"alertname": name, "alertstate": "firing", "model": ctx.spec.name, "namespace": ctx.spec.namespace,
              "rollback": tier, ctx.spec.prometheus.version_label: version, "severity": severity, "signal": signal,
              "team": ctx.spec.team.name, "window": window}
    return "ALERTS{" + ",".join(f'{k}="{val}"' for k, val in sorted(labels.items())) + "}"
