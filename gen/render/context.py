"""Render context: everything the templates lay out, decided here in Python.

``ModelSpec`` + ``Baseline`` -> :class:`ModelContext`. Thresholds are resolved (a pin wins over the
fit; the manual band never exceeds the automatic threshold), the provisional rule is applied (too
little history: every signal routes to the rollback authority), and PromQL and Argo conditions are
built as text. Templates receive only this object.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.baseline import Baseline, SignalFit, WindowFit
from driftgate.errors import BaselineError, Problem
from driftgate.fit.evidence import Evidence
from driftgate.model import Direction, ModelSpec, NoData, Signal
from driftgate.render.promql import num, selector
from driftgate.render.rules import (
    FREEZE_RECORD,
    Effective,
    Group,
    Rule,
    RuleBuilder,
    alert_for,
    decision_alerts,
    freeze_rules,
    health_alerts,
)
from driftgate.validate.durations import go_duration

CANARY_ARG = "canary-hash"


@dataclass(frozen=True)
class Metric:
    """One Argo Rollouts analysis metric."""

    name: str
    interval: str
    initial_delay: str
    count: int
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    address: str
    query: str
    success: str
    failure: str


@dataclass(frozen=True)
class Template:
    name: str
    args: tuple[str, ...]
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class WindowRow:
    """One signal at one window, for the plan."""

    which: str
    window: str
    eff: Effective
    fit: WindowFit
    pinned_auto: bool
    pinned_manual: bool


@dataclass(frozen=True)
class SignalRow:
    signal: Signal
    fit: SignalFit
    tier: str
    tier_reason: str
    windows: tuple[WindowRow, ...]


@dataclass(frozen=True)
class ModelContext:
    spec: ModelSpec
    baseline: Baseline
    templates: tuple[Template, ...]
    groups: tuple[Group, ...]
    rows: tuple[SignalRow, ...]
    alert_for: str
    evidence: Evidence | None = None  # the fit's history traces, for the pictures

    @property
    def criteria_name(self) -> str:
        return self.templates[0].name

    @property
    def gate_name(self) -> str:
        return self.templates[1].name


def check_baseline(spec: ModelSpec, baseline: Baseline, display: str) -> None:
    """The baseline must have been fitted for this spec's signals and windows."""
    problems = []
    want = {s.name: s for s in spec.signals}
    have = {s.name: s for s in baseline.signals}
    if baseline.model != spec.name:
        problems.append(f"fitted for model '{baseline.model}', not '{spec.name}'")
    for name in sorted(set(want) - set(have)):
        problems.append(f"signal '{name}' is in the spec but was never fitted")
    for name in sorted(set(have) - set(want)):
        problems.append(f"signal '{name}' was fitted but is no longer in the spec")
    for name in sorted(set(want) & set(have)):
        s, f = want[name], have[name]
        if (s.kind.value, s.statistic.value) != (f.kind, f.statistic):
            problems.append(f"signal '{name}' changed kind or statistic since the fit")
        if s.compare_with != f.compare_with:
            problems.append(f"signal '{name}' changed compare_with since the fit")
        if (s.windows.fast.text, s.windows.slow.text) != (f.fast.window, f.slow.window):
            problems.append(f"signal '{name}' changed windows since the fit")
    if problems:
        raise BaselineError([Problem(display, 0, 0, "", p + "; run 'driftgate fit' (or 'make gen')")
                             for p in problems])


def effective(signal: Signal, fit: WindowFit, tier: str) -> tuple[Effective, bool, bool]:
    above = signal.direction is Direction.ABOVE
    auto = signal.pinned.auto if signal.pinned.auto is not None else fit.auto.value
    manual = signal.pinned.manual if signal.pinned.manual is not None else fit.manual.value
    manual = min(manual, auto) if above else max(manual, auto)
    return Effective(auto, manual, tier), signal.pinned.auto is not None, signal.pinned.manual is not None


def conditions(signal: Signal, eff: Effective) -> tuple[str, str]:
    """Argo ``successCondition`` / ``failureCondition``: guarded against empty results and NaN."""
    ok = "len(result) > 0 && !isNaN(result[0])"
    missing = "(len(result) == 0 || isNaN(result[0]))"
    above = signal.direction is Direction.ABOVE
    fail_cmp = f"result[0] {'>' if above else '<'} {num(eff.auto)}"
    pass_cmp = f"result[0] {'<=' if above else '>='} {num(eff.manual)}"
    success = f"{ok} && {pass_cmp}"
    failure = f"{ok} && {fail_cmp}" if eff.tier == "auto" else "false"
    if signal.no_data is NoData.PASS:
        success = f"{missing} || ({success})"
    elif signal.no_data is NoData.FAIL and eff.tier == "auto":
        failure = f"{missing} || ({failure})"  # a manual-tier signal never fails on its own: no data pauses
    return success, failure


def build(spec: ModelSpec, baseline: Baseline, evidence: Evidence | None = None) -> ModelContext:
    builder = RuleBuilder(spec, baseline)
    a = spec.analysis
    metrics: list[Metric] = []
    alerts: list[Rule] = []
    rows: list[SignalRow] = []
    v = spec.prometheus.version_label
    for signal in spec.signals:
        fit = baseline.signal(signal.name)
        tier, reason = signal.tier.value, "set in the spec"
        if baseline.provisional and tier == "auto":
            tier = "manual"
            reason = (f"provisional: {baseline.history_days:.1f} days of history, the spec asks for "
                      f"{baseline.minimum_days:g}")
        windows = []
        for which, w in signal.windows.items():
            wfit = fit.window(which)
            eff, pa, pm = effective(signal, wfit, tier)
            s = builder.series(signal, fit, which, w.text)
            alerts.extend(decision_alerts(spec, signal, which, w.text, s, eff))
            if which == "slow":
                alerts.extend(health_alerts(spec, signal, w.text, s))
            success, failure = conditions(signal, eff)
            stat = selector(s.decision_name, [("model", spec.name), ("signal", signal.name),
                                              (v, "{{args." + CANARY_ARG + "}}")])
            query = (f"max({stat} and on (model, {v}) ({s.events} >= {signal.min_events})"
                     f" and on (model, {v}) {s.seasoned})")
            metrics.append(Metric(
                name=f"{signal.slug}-{which}", interval=go_duration(a.interval.seconds),
                initial_delay=go_duration(w.seconds), count=a.count,
                failure_limit=a.failure_limit, inconclusive_limit=a.inconclusive_limit,
                consecutive_error_limit=a.consecutive_error_limit, address=spec.prometheus.address,
                query=query, success=success, failure=failure))
            windows.append(WindowRow(which, w.text, eff, wfit, pa, pm))
        rows.append(SignalRow(signal, fit, tier, reason, tuple(windows)))
    freeze_record, freeze_alert = freeze_rules(spec)
    gate = Metric(
        name="rollout-freeze", interval="", initial_delay="", count=1, failure_limit=0, inconclusive_limit=0,
        consecutive_error_limit=0, address=spec.prometheus.address,
        query=f"max({selector(FREEZE_RECORD, [('model', spec.name)])}) or on () vector(0)",
        success="len(result) > 0 && !isNaN(result[0]) && result[0] == 0",
        failure="len(result) == 0 || isNaN(result[0]) || result[0] > 0")
    interval = spec.prometheus.evaluation_interval.text
    groups = (
        Group(f"driftgate.{spec.name}.recording", interval, (*builder.recording(), freeze_record)),
        Group(f"driftgate.{spec.name}.alerts", interval, (*alerts, freeze_alert)),
    )
    templates = (
        Template(f"{spec.name}-rollback-criteria", (CANARY_ARG,), tuple(metrics)),
        Template(f"{spec.name}-freeze-gate", (), (gate,)),
    )
    return ModelContext(spec, baseline, templates, groups, tuple(rows), alert_for(spec), evidence)
