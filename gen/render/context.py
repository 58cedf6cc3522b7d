"""Render context: everything the templates lay out, decided here in Python.

``ModelSpec`` + ``Baseline`` -> :class:`ModelContext`. Thresholds are resolved (a pin wins over the
fit; the manual band never exceeds the automatic threshold), the provisional rule is applied (too
little history: every signal routes to the rollback authority), and PromQL and Argo conditions are
built as text. Templates receive only this object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from driftgate.baseline import Baseline, SignalFit, WindowFit
from driftgate.errors import BaselineError, Problem
from driftgate.exports.le import les_problem
from driftgate.fit.evidence import Evidence
from driftgate.fit.inputs import fit_inputs
from driftgate.model import Direction, ModelSpec, NoData, Signal
from driftgate.render.promql import selector
from driftgate.render.rules import (
    AUTO_ALERT,
    FREEZE_RECORD,
    LIVE_RECORD,
    MANUAL_ALERT,
    Effective,
    Group,
    Rule,
    RuleBuilder,
    SignalSeries,
    alert_for,
    decision_alerts,
    freeze_rules,
    health_alerts,
    live_rule,
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
    headers: tuple[tuple[str, str], ...] = ()  # sent with every query (prometheus.analysis_auth)


@dataclass(frozen=True)
class SecretArg:
    """An AnalysisTemplate argument Argo reads from a Kubernetes Secret (masked in the AnalysisRun)."""

    name: str
    secret: str
    key: str


TOKEN_ARG = "prometheus-token"


@dataclass(frozen=True)
class RolloutStep:
    kind: str  # setWeight | pause
    value: Any


@dataclass(frozen=True)
class Template:
    name: str
    args: tuple[str, ...]
    metrics: tuple[Metric, ...]
    usage: str  # "background" or "step" (driftgate.validate.argo_lint.USAGE_ANNOTATION)
    dry_run: tuple[str, ...] = ()  # metric names Argo measures but never lets fail the run (shadow mode)
    secret_args: tuple[SecretArg, ...] = ()  # arguments the template reads itself (never passed by a Rollout)


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
    def canary_arg(self) -> str:
        return CANARY_ARG

    @property
    def tf_labels(self) -> dict[str, str]:
        """metadata.labels of the Terraform AnalysisTemplates, as the YAML ones have them."""
        return {"app.kubernetes.io/managed-by": "driftgate", "driftgate.io/model": self.spec.name,
                **dict(self.spec.object_labels)}

    def tf_annotations(self, t: Template) -> dict[str, str]:
        return {"driftgate.io/spec": self.spec.spec_path, "driftgate.io/rollback-authority": self.spec.authority.name,
                "driftgate.io/analysis": t.usage, **dict(self.spec.object_annotations)}

    @property
    def rollout_steps(self) -> tuple[RolloutStep, ...]:
        """The canary steps after the freeze gate: canary weight, hold, full weight, bake."""
        hold = max(s.windows.slow.seconds for s in self.spec.signals)
        weight = round(100 * self.spec.analysis.canary_weight)  # a whole percentage (the spec checks it)
        steps = [RolloutStep("setWeight", weight), RolloutStep("pause", go_duration(hold))]
        if weight < 100:
            steps.append(RolloutStep("setWeight", 100))
        if self.spec.release.bake.seconds:
            steps.append(RolloutStep("pause", go_duration(self.spec.release.bake.seconds)))
        return tuple(steps)

    @property
    def criteria_name(self) -> str:
        return self.templates[0].name

    @property
    def gate_name(self) -> str:
        return self.templates[1].name


def check_baseline(spec: ModelSpec, baseline: Baseline, display: str) -> None:
    """The baseline must have been fitted for this spec: its signals, and every fit input
    (:func:`driftgate.fit.inputs.fit_inputs`: quantile, metric, selector, matchers, direction, budget,
    min_events, tier, windows, ...) as the spec has it now."""
    problems = []
    want = {s.name: s for s in spec.signals}
    have = {s.name: s for s in baseline.signals}
    if baseline.model != spec.name:
        problems.append(f"fitted for model '{baseline.model}', not '{spec.name}'")
    for name in sorted(set(want) - set(have)):
        problems.append(f"signal '{name}' is in the spec but was never fitted")
    for name in sorted(set(have) - set(want)):
        problems.append(f"signal '{name}' was fitted but is no longer in the spec")
    both = set(want) & set(have)
    shaped = set()  # signals whose fitted numbers have another shape than the spec's (also a hand edit)
    for name in sorted(both):
        s, f = want[name], have[name]
        if (s.kind.value, s.statistic.value, s.compare_with) != (f.kind, f.statistic, f.compare_with):
            problems.append(f"signal '{name}' changed kind, statistic or compare_with since the fit")
            shaped.add(name)
        if (s.windows.fast.text, s.windows.slow.text) != (f.fast.window, f.slow.window):
            problems.append(f"signal '{name}' changed windows since the fit")
            shaped.add(name)
    # Every other fit input (empty only in a baseline of an older driftgate, read by 'driftgate review').
    changes = fit_input_changes(baseline.fit_inputs, fit_inputs(spec)) if baseline.fit_inputs else []
    for key, fitted, now in changes:
        if key.startswith("signals.") and (key.split(".")[1] not in both or key.split(".")[1] in shaped):
            continue  # reported above
        problems.append(f"{spec.spec_path}: {key} {_derived(key)}is {now}, but the baseline was fitted for {fitted}")
    # The bucket bounds the rules select verbatim: the grammar the fit accepted them with (a hand edit
    # or another tool's baseline could hold any string).
    located = []
    for i, signal_fit in enumerate(baseline.signals):
        bad = les_problem(signal_fit.les)
        if bad is not None:
            located.append(Problem(display, 0, 0, f"signals[{i}].les[{bad[0]}]", bad[1] + "; run 'driftgate fit' "
                                   "(or 'make gen')"))
    if problems or located:
        raise BaselineError([*located, *(Problem(display, 0, 0, "", p + "; run 'driftgate fit' (or 'make gen')")
                                         for p in problems)])


def _derived(key: str) -> str:
    return "(from prometheus.evaluation_interval) " if key == "alerts.for" else ""


def fit_input_changes(fitted: dict[str, str], now: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(key, fitted, now)`` for every fit input that differs (``absent`` where one side lacks it)."""
    return [(k, fitted.get(k, "absent"), now.get(k, "absent")) for k in sorted(set(fitted) | set(now))
            if fitted.get(k) != now.get(k)]


def effective(signal: Signal, fit: WindowFit, tier: str) -> tuple[Effective, bool, bool]:
    above = signal.direction is Direction.ABOVE
    auto = signal.pinned.auto if signal.pinned.auto is not None else fit.auto.value
    manual = signal.pinned.manual if signal.pinned.manual is not None else fit.manual.value
    manual = min(manual, auto) if above else max(manual, auto)
    return Effective(auto, manual, tier), signal.pinned.auto is not None, signal.pinned.manual is not None


def conditions(signal: Signal, tier: str) -> tuple[str, str]:
    """Argo ``successCondition`` / ``failureCondition`` of a metric that reads the alert state.

    ``result[0]`` is 1 while the signal's alert of ``tier`` fires for the canary, 0 while it does not
    (the rules are live and the canary has events), and the result is empty when the canary has no
    series of the signal at all: that is the ``no_data`` policy's case. A young canary below
    ``min_events`` is not "no data": its alerts do not fire, it measures 0 and passes. Guarded
    against empty results and NaN (DESIGN.md §4)."""
    ok = "len(result) > 0 && !isNaN(result[0])"
    missing = "(len(result) == 0 || isNaN(result[0]))"
    success = f"{ok} && result[0] == 0"
    failure = f"{ok} && result[0] > 0" if tier == "auto" else "false"  # manual: Inconclusive pauses
    if signal.no_data is NoData.PASS:
        success = f"{missing} || ({success})"
    elif signal.no_data is NoData.FAIL:
        failure = f"{missing} || ({failure})" if tier == "auto" else missing
    return success, failure


def _criteria(spec: ModelSpec, signal: Signal, tier: str, slow: SignalSeries) -> list[Metric]:
    """The signal's metrics in the background analysis: each reads its alert's state for the canary.

    Argo and Alertmanager can never disagree: the metric fails exactly when ``DriftgateAutoRollback``
    fires for the canary (and is Inconclusive, a pause for the rollback authority, when
    ``DriftgateManualReview`` does). No ``count``: it measures until the rollout completes, the bake
    included. ``initialDelay`` is the alert's ``for``: no alert can fire earlier, and by then the
    canary's series exist, so a young canary is never "no data"."""
    a = spec.analysis
    v = spec.prometheus.version_label
    canary = "{{args." + CANARY_ARG + "}}"
    present = selector(slow.events_name, [("model", spec.name), (v, canary)])
    out = []
    for t, name, suffix in (("auto", AUTO_ALERT, "auto"), ("manual", MANUAL_ALERT, "review")):
        if t == "auto" and tier != "auto":
            continue
        firing = selector("ALERTS", [("alertname", name), ("alertstate", "firing"), ("model", spec.name),
                                     ("signal", signal.name), (v, canary)])
        success, failure = conditions(signal, t)
        out.append(Metric(
            name=f"{signal.slug}-{suffix}", interval=go_duration(a.interval.seconds),
            initial_delay=go_duration(spec.alert_for_seconds), count=0,
            failure_limit=a.failure_limit, inconclusive_limit=a.inconclusive_limit,
            consecutive_error_limit=a.consecutive_error_limit, address=spec.prometheus.address,
            query=f"max({firing}) or on () (0 * max({present}))", success=success, failure=failure))
    return out


def build(spec: ModelSpec, baseline: Baseline, evidence: Evidence | None = None) -> ModelContext:
    builder = RuleBuilder(spec, baseline)
    a = spec.analysis
    metrics: list[Metric] = []
    alerts: list[Rule] = []
    rows: list[SignalRow] = []
    for signal in spec.signals:
        fit = baseline.signal(signal.name)
        tier, reason = signal.tier.value, "set in the spec"
        if baseline.provisional and tier == "auto":
            tier = "manual"
            reason = (f"provisional: {baseline.history_days:.1f} days of history, the spec asks for "
                      f"{baseline.minimum_days:g}")
        windows = []
        slow = None
        for which, w in signal.windows.items():
            wfit = fit.window(which)
            eff, pa, pm = effective(signal, wfit, tier)
            s = builder.series(signal, fit, which, w.text)
            slow = s if which == "slow" else slow
            alerts.extend(decision_alerts(spec, signal, which, w.text, s, eff))
            if which == "slow":
                alerts.extend(health_alerts(spec, signal, w.text, s))
            windows.append(WindowRow(which, w.text, eff, wfit, pa, pm))
        rows.append(SignalRow(signal, fit, tier, reason, tuple(windows)))
        assert slow is not None
        metrics.extend(_criteria(spec, signal, tier, slow))
    freeze_record, freeze_alert = freeze_rules(spec)
    live = selector(LIVE_RECORD, [("model", spec.name)])
    metrics.insert(0, Metric(
        name="enforcement-live", interval=go_duration(a.interval.seconds), initial_delay="", count=0,
        failure_limit=0, inconclusive_limit=0, consecutive_error_limit=a.consecutive_error_limit,
        address=spec.prometheus.address, query=f"max({live})",
        success="len(result) > 0 && !isNaN(result[0]) && result[0] == 1",
        failure="len(result) == 0 || isNaN(result[0]) || result[0] != 1"))
    # The gate fails closed: an empty result (driftgate's rules for the model not loaded) fails it too.
    gate = Metric(
        name="rollout-freeze", interval="", initial_delay="", count=1, failure_limit=0, inconclusive_limit=0,
        consecutive_error_limit=0, address=spec.prometheus.address,
        query=f"(max({selector(FREEZE_RECORD, [('model', spec.name)])}) or on () vector(0)) and on () max({live})",
        success="len(result) > 0 && !isNaN(result[0]) && result[0] == 0",
        failure="len(result) == 0 || isNaN(result[0]) || result[0] > 0")
    interval = spec.prometheus.evaluation_interval.text
    # One group: Prometheus evaluates a group's rules in order at one timestamp, each seeing what the
    # rules before it wrote (ALERTS included), while separate groups run at unrelated phases and
    # promtool evaluates them in random order. The alerts read the recorded windows, the freeze reads
    # ALERTS and the freeze alert reads the freeze: each is placed after what it reads.
    groups = (Group(f"driftgate.{spec.name}", interval,
                    (*builder.recording(), *alerts, freeze_record, freeze_alert, live_rule(spec))),)
    secret_args: tuple[SecretArg, ...] = ()
    auth = spec.prometheus.analysis_auth
    if auth is not None:
        headers = auth.headers
        if auth.bearer_token is not None:
            secret_args = (SecretArg(TOKEN_ARG, auth.bearer_token.name, auth.bearer_token.key),)
            headers = (*headers, ("Authorization", "Bearer {{args." + TOKEN_ARG + "}}"))
        metrics = [dataclasses.replace(m, headers=headers) for m in metrics]
        gate = dataclasses.replace(gate, headers=headers)
    templates = (
        Template(f"{spec.name}-rollback-criteria", (CANARY_ARG,), tuple(metrics), "background",
                 tuple(m.name for m in metrics if m.name.endswith("-auto")) if a.dry_run else (), secret_args),
        Template(f"{spec.name}-freeze-gate", (), (gate,), "step", (), secret_args),
    )
    return ModelContext(spec, baseline, templates, groups, tuple(rows), alert_for(spec), evidence)
