"""After a fit: signals whose backtest saw more would-have-fired episodes than their budget allows.

A threshold fitted for a budget of one false rollback per quarter should not have fired on the history it
was fitted on, or hardly: ``expected_alerts`` is what the budget allows over that history. When the backtest
(``backtest_alerts``, summed over the signal's two windows) exceeds it, the history most likely holds
something that was not normal (an incident, a bad release) and that the fit took for normal. The warning
names the signal, the backtest against the budget, and the hours in which the decision statistic was beyond
the threshold (from the evidence's hourly trace), widened by the window to the data those windows read: the
spans to look at, and to add to ``history.exclude`` if they were an incident. ``--strict`` fails on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.baseline import Baseline, SignalFit, WindowFit, rfc3339
from driftgate.errors import Problem
from driftgate.fit.evidence import HOUR, Evidence
from driftgate.validate.durations import parse_prom_duration

WORST = 3  # spans named per signal


@dataclass(frozen=True)
class Hot:
    """A run of hours in which one window's statistic was beyond its threshold."""

    start: float  # the data the windows read: from the first hour's start less the window
    end: float  # to the last hour's end
    window: str
    peak: float
    threshold: float

    @property
    def margin(self) -> float:
        return abs(self.peak - self.threshold) / max(abs(self.threshold), 1e-12)


def _over(baseline: Baseline, s: SignalFit) -> tuple[int, float] | None:
    """``(seen, allowed)`` when the signal's backtest exceeds its automatic budget, else None."""
    if baseline.fit_inputs.get(f"signals.{s.name}.tier") == "manual":
        return None  # never rolls back: its automatic threshold is not enforced
    seen = sum(w.auto.backtest_alerts for w in (s.fast, s.slow))
    allowed = sum(w.auto.expected_alerts for w in (s.fast, s.slow))
    return (seen, allowed) if seen > allowed else None


def exceeds(baseline: Baseline) -> bool:
    """Whether :func:`overruns` has something to say (cheap: the evidence is read only then)."""
    return any(_over(baseline, s) is not None for s in baseline.signals)


def overruns(baseline: Baseline, evidence: Evidence | None, display: str) -> list[Problem]:
    """One warning per auto-tier signal whose backtest at the automatic thresholds exceeds what the promised
    budget (``budget.auto``) allows over the history. (The manual band's budget is many times larger and its
    backtest is not a promise to the deploy pipeline: not warned about.)"""
    out = []
    for s in baseline.signals:
        over = _over(baseline, s)
        if over is None:
            continue
        seen, allowed = over
        below = baseline.fit_inputs.get(f"signals.{s.name}.direction") == "below"
        look = "; ".join(f"{rfc3339(start)} to {rfc3339(end)} ("
                         + ", ".join(f"{h.window} window {'down to' if below else 'up to'} {h.peak:.3g} against "
                                     f"{h.threshold:.3g}" for h in hots) + ")"
                         for start, end, hots in _worst(s, evidence, below)) or "the evidence file has no trace of them"
        out.append(Problem(display, 0, 0, f"signals.{s.name}",
                           f"the backtest saw {seen} would-have-fired automatic rollback(s) over the history at the "
                           f"fitted thresholds, where the budget ({baseline.budget_auto}) allows {allowed:.2g}: "
                           f"normal history should not fire. Look at {look} (UTC; the data those windows read); "
                           f"if that was an incident, add it to history.exclude and refit (docs/spec.md, "
                           f"Excluded spans)", "warning"))
    return out


def _worst(s: SignalFit, evidence: Evidence | None, below: bool) -> list[tuple[float, float, list[Hot]]]:
    """The :data:`WORST` spans (overlapping runs of the two windows joined) furthest beyond the threshold."""
    if evidence is None or s.name not in evidence.signals:
        return []
    found: list[Hot] = []
    for which in ("fast", "slow"):
        w: WindowFit = s.window(which)
        if not w.auto.backtest_alerts:
            continue
        th = w.auto.value
        trace = evidence.signals[s.name].window(which)
        window = float(parse_prom_duration(w.window))
        run: list[tuple[float, float]] = []
        for i, v in enumerate((*trace.values, None)):
            if v is not None and (v < th if below else v > th):
                run.append((trace.start + i * HOUR, v))
            elif run:
                peak = min(x for _, x in run) if below else max(x for _, x in run)
                found.append(Hot(run[0][0] - window, run[-1][0] + HOUR, w.window, peak, th))
                run = []
    joined: list[tuple[float, float, list[Hot]]] = []
    for h in sorted(found, key=lambda h: (h.start, h.end)):
        if joined and h.start <= joined[-1][1]:
            start, end, hots = joined[-1]
            joined[-1] = (start, max(end, h.end), [*hots, h])
        else:
            joined.append((h.start, h.end, [h]))
    joined.sort(key=lambda j: (-max(h.margin for h in j[2]), j[0]))
    return sorted(joined[:WORST], key=lambda j: j[0])
