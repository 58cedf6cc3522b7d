"""Recording and alerting rules that compute every signal inside Prometheus (no sidecar).

Per histogram and window ``W``:

1. ``model_version_le:<m>_bucket:increase<W>`` = ``sum by (le, <version>) (<counted>(<m>_bucket{sel}[W]))``
   per raw series first, so a pod restart is a counter reset, not a fake drop; ``<counted>`` is the
   plain delta ``max_over_time - min_over_time`` of a series without a reset in the window and
   ``increase()`` of one with a reset (:func:`counted`: no per-bucket extrapolation);
2. one rule per bin, ``model_version_le:<m>_bin:increase<W>``: ``clamp_min(B{le=hi} - ignoring (le)
   B{le=lo}, 0) + 0.5`` (de-cumulate, clamp extrapolation skew, smooth so no bin is empty);
3. ``model_version_le:<m>_bin:share<W>``: each bin over the sum of bins;
4. the fitted baseline shares as constants ``model_signal_le:driftgate_baseline:share`` (one per bin),
   broadcast onto each version's bins;
5. PSI / JS / TVD summed over bins: ``model_version:driftgate_<signal>:<stat><W>``;
6. the event count ``model_version:<m>_count:increase<W>`` (the ``+Inf`` bucket), which guards
   every decision: fewer than ``min_events`` is *no decision*.

Ratios are ``sum by (<version>) (<counted>(num[W])) / sum by (<version>) (<counted>(den[W]))`` and
latency quantiles ``histogram_quantile`` over step 1. The numpy twins of these formulas live in
:mod:`driftgate.fit.statistics`; ``promtool test rules`` checks that both agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from driftgate.baseline import Baseline, SignalFit
from driftgate.model import Direction, ModelSpec, Signal, SignalKind, Statistic
from driftgate.render.promql import num, range_selector, selector
from driftgate.validate.durations import prom_duration

AUTO_ALERT = "DriftgateAutoRollback"
MANUAL_ALERT = "DriftgateManualReview"
# A heartbeat recorded last in the model's rule group: present exactly while driftgate's rules for the model are
# loaded and evaluating. The freeze gate and the background analysis fail closed without it.
LIVE_RECORD = "model:driftgate_rules:loaded"
# An automatic-tier breach of a version older than release.horizon: drift without a release.
DRIFT_ALERT = "DriftgateDrift"
NO_DECISION_ALERT = "DriftgateNoDecision"
ABSENT_ALERT = "DriftgateSignalAbsent"
FROZEN_ALERT = "DriftgateRolloutFrozen"
FREEZE_RECORD = "model:driftgate_freeze:active"
SMOOTHING = "0.5"  # must equal driftgate.fit.statistics.ALPHA
MIN_SAMPLES = 5  # scrapes of a version's oldest series in the window before its statistic decides


@dataclass(frozen=True)
class Rule:
    record: str  # "" for alerts
    alert: str  # "" for recording rules
    expr: str
    for_: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Group:
    name: str
    interval: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Effective:
    """What is enforced for one signal at one window, after pins and the provisional rule."""

    auto: float
    manual: float
    tier: str  # "auto" | "manual"


@dataclass(frozen=True)
class SignalSeries:
    """The recorded series a signal's decisions read, as PromQL selectors."""

    stat: str  # selector of the statistic (one series per version)
    events: str  # selector of the event count
    stat_name: str
    events_name: str
    decision: str  # selector of what thresholds compare: the statistic minus its noise term
    decision_name: str
    seasoned: str  # guard: the version has been scraped long enough in the window to decide


def counted(sel: str, w: str) -> str:
    """Per raw series, what it counted in the window: the plain delta ``max - min`` when the window holds
    no counter reset, else ``increase()`` (which repairs it). ``increase()`` alone extrapolates each
    series to the window's edges, and for a series younger than the window it stops the extrapolation
    where *that* counter would reach zero, which differs from bucket to bucket by chance: a healthy
    canary's bins were bent by up to ten times the drift threshold (bench/quality.py: 8 of 120 healthy
    canaries fired the automatic alert at high traffic past the 5-scrape guard, none without
    extrapolation). ``driftgate.fit.windows.increase`` is the numpy twin. A series with one sample in the
    window counts nothing, as with ``increase()``."""
    r = range_selector(sel, w)
    return (f"(((max_over_time({r}) - min_over_time({r})) and (count_over_time({r}) > 1)"
            f" unless (resets({r}) > 0)) or increase({r}))")


def _rec(name: str, expr: str, labels: dict[str, str]) -> Rule:
    return Rule(name, "", expr, "", tuple(sorted(labels.items())), ())


class RuleBuilder:
    """Builds a model's rule groups; shared intermediate series are emitted once."""

    def __init__(self, spec: ModelSpec, baseline: Baseline) -> None:
        self.spec = spec
        self.baseline = baseline
        self.v = spec.prometheus.version_label
        self._records: dict[str, Rule] = {}

    def _add(self, rule: Rule) -> None:
        # Per-bin rules share a name and differ by expression (each keeps its own ``le``).
        self._records.setdefault(rule.record + repr(rule.labels) + rule.expr, rule)

    def _own(self, signal: Signal) -> dict[str, str]:
        """Labels identifying a signal's source series (a signal with extra matchers gets its own)."""
        labels = {"model": self.spec.name}
        if signal.matchers:
            labels["source"] = signal.name
        return labels

    def _sel(self, signal: Signal) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*self.spec.prometheus.selector, *signal.matchers)))

    def series(self, signal: Signal, fit: SignalFit, which: str, w: str) -> SignalSeries:
        """Emit the recording rules of ``signal`` at window ``w``; return what decisions read."""
        own = self._own(signal)
        own_sel = list(own.items())
        v = self.v
        if signal.is_histogram:
            bucket = f"model_version_le:{signal.metric}_bucket:increase{w}"
            self._add(_rec(bucket, f"sum by (le, {v}) ("
                                   f"{counted(selector(signal.metric + '_bucket', self._sel(signal)), w)})", own))
            events_name = f"model_version:{signal.metric}_count:increase{w}"
            inf = fit.les[-1]
            self._add(_rec(events_name, f"sum without (le) ({selector(bucket, [*own_sel, ('le', inf)])})", own))
        else:
            names = []
            for side, counter, more in (("numerator", signal.metric, signal.numerator_matchers),
                                        ("denominator", signal.denominator, signal.denominator_matchers)):
                # With its own matchers a side is the signal's alone (http_requests_total{code=~"5.."} over
                # http_requests_total would otherwise record two rules of one name).
                name = f"model_version:driftgate_{signal.name}_{side}:increase{w}" if more else \
                    f"model_version:{counter}:increase{w}"
                self._add(_rec(name, f"sum by ({v}) ({counted(selector(counter, self._sel(signal), more), w)})",
                               own))
                names.append(name)
            events_name = names[1]
        events = selector(events_name, own_sel)
        # Samples of the version's oldest series in the window. A brand-new version (every pod young) has
        # too few samples for a statistic worth deciding on (and an increase() over a counter reset in
        # them would extrapolate its buckets differently): no decision
        # until the oldest series has MIN_SAMPLES scrapes, or half as many as the model's oldest series
        # when the window holds fewer than 2 * MIN_SAMPLES scrapes (so a coarse scrape interval cannot
        # make a window that never decides). A restarted pod of an established version does not blind
        # the signal: the version's oldest series still has its samples.
        raw = (selector(f"{signal.metric}_bucket", [*self._sel(signal), ("le", fit.les[-1])]) if signal.is_histogram
               else selector(signal.denominator, self._sel(signal), signal.denominator_matchers))
        samples_name = f"model_version:{signal.metric if signal.is_histogram else signal.denominator}_samples:max{w}"
        if not signal.is_histogram and signal.denominator_matchers:
            samples_name = f"model_version:driftgate_{signal.name}_denominator_samples:max{w}"
        self._add(_rec(samples_name, f"max by ({v}) (count_over_time({range_selector(raw, w)}))", own))
        samples = selector(samples_name, own_sel)
        seasoned = f"({samples} >= on () group_left () clamp_max(0.5 * max({samples}), {MIN_SAMPLES}))"
        stat_name = f"model_version:driftgate_{signal.name}:{signal.statistic.value}{w}"
        labels = {"model": self.spec.name, "signal": signal.name}
        if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            expr = self._drift(signal, fit, w, own)
        elif signal.kind is SignalKind.LATENCY_QUANTILE:
            expr = f"histogram_quantile({num(signal.quantile)}, {selector(bucket, own_sel)})"
        else:
            expr = f"{selector(names[0], own_sel)} / {events}"
        self._add(_rec(stat_name, expr, labels))
        stat = selector(stat_name, sorted(labels.items()))
        wfit = fit.window(which)
        decision_name, decision = stat_name, stat
        if wfit.noise_coefficient:
            decision_name = f"model_version:driftgate_{signal.name}:{signal.statistic.value}_excess{w}"
            op = "-" if signal.direction is Direction.ABOVE else "+"
            scale = events if wfit.noise_power == 1.0 else f"({events} ^ {num(wfit.noise_power)})"
            self._add(_rec(decision_name, f"{stat} {op} on (model, {v}) ({num(wfit.noise_coefficient)} / {scale})",
                           labels))
            decision = selector(decision_name, sorted(labels.items()))
        return SignalSeries(stat, events, stat_name, events_name, decision, decision_name, seasoned)

    def _drift(self, signal: Signal, fit: SignalFit, w: str, own: dict[str, str]) -> str:
        own_sel = list(own.items())
        share = self._shares(signal, fit, w, own, "model_version_le", lambda sel: sel)
        if signal.compare_with == "last_week":
            share_then, count = self._model_share(signal, fit, w, own)
            # Last week's window must itself have enough events (a scrape gap is no baseline).
            qsel = (f"({share_then} offset 1w and ignoring (le) {count} offset 1w >= {signal.min_events})")
        else:
            base = "model_signal_le:driftgate_baseline:share"
            for le, share_q in zip(fit.les, fit.probabilities, strict=True):
                labels = {"model": self.spec.name, "signal": signal.name, "le": le}
                self._add(_rec(base, f"vector({num(share_q)})", labels))
            qsel = selector(base, [("model", self.spec.name), ("signal", signal.name)])
        broadcast = f"model_version_le:driftgate_{signal.name}_baseline:share{w}"
        p = share
        self._add(_rec(broadcast, f"{p} * 0 + on (le) group_left () {qsel}", own))
        q = selector(broadcast, own_sel)
        if signal.statistic is Statistic.PSI:
            return f"sum without (le) (({p} - {q}) * ln({p} / {q}))"
        if signal.statistic is Statistic.TVD:
            return f"0.5 * sum without (le) (abs({p} - {q}))"
        return (f"sum without (le) (0.5 * {p} * log2(2 * {p} / ({p} + {q}))"
                f" + 0.5 * {q} * log2(2 * {q} / ({p} + {q})))")

    def _model_share(self, signal: Signal, fit: SignalFit, w: str, own: dict[str, str]) -> tuple[str, str]:
        """The whole model's smoothed bin shares over ``w`` (all versions): what last week looked like."""
        own_sel = list(own.items())
        share = self._shares(signal, fit, w, own, "model_le", lambda sel: f"sum without ({self.v}) ({sel})")
        count = f"model:{signal.metric}_count:increase{w}"
        events = selector(f"model_version:{signal.metric}_count:increase{w}", own_sel)
        self._add(_rec(count, f"sum without ({self.v}) ({events})", own))
        return share, selector(count, own_sel)

    def _shares(self, signal: Signal, fit: SignalFit, w: str, own: dict[str, str], level: str,
                over: Callable[[str], str]) -> str:
        """Record the smoothed bin shares of the bucket increases over ``w``, aggregated by ``over``
        (per version as recorded, or summed over versions), as ``<level>:<metric>_bin:share<w>``: the
        cumulative buckets de-cumulated with one rule per bin (extrapolation skew clamped at 0),
        each bin smoothed so that no share is 0. Returns the selector of the shares."""
        bucket = f"model_version_le:{signal.metric}_bucket:increase{w}"
        bins = f"{level}:{signal.metric}_bin:increase{w}"
        share = f"{level}:{signal.metric}_bin:share{w}"
        own_sel = list(own.items())
        lo = None
        for le in fit.les:
            hi_sel = over(selector(bucket, [*own_sel, ("le", le)]))
            if lo is None:
                expr = f"clamp_min({hi_sel}, 0) + {SMOOTHING}"
            else:
                lo_sel = over(selector(bucket, [*own_sel, ("le", lo)]))
                expr = f"clamp_min({hi_sel} - ignoring (le) {lo_sel}, 0) + {SMOOTHING}"
            self._add(_rec(bins, expr, {**own, "le": le}))  # le: one distinct rule per bin
            lo = le
        b = selector(bins, own_sel)
        self._add(_rec(share, f"{b} / ignoring (le) group_left () sum without (le) ({b})", own))
        return selector(share, own_sel)

    def recording(self) -> tuple[Rule, ...]:
        return tuple(self._records.values())


def comparison(direction: Direction, threshold: float) -> str:
    return f"{'>' if direction is Direction.ABOVE else '<'} {num(threshold)}"


def alert_for(spec: ModelSpec) -> str:
    return prom_duration(spec.alert_for_seconds)


def decision_alerts(spec: ModelSpec, signal: Signal, which: str, w: str, s: SignalSeries,
                    eff: Effective) -> list[Rule]:
    v = spec.prometheus.version_label
    guard = f"and on (model, {v}) ({s.events} >= {signal.min_events}) and on (model, {v}) {s.seasoned}"
    common = {"namespace": spec.namespace, "team": spec.team.name, "signal": signal.name, "window": which}
    runbook = f"{spec.runbook_base_url}#{signal.name.replace('_', '-')}"
    word = "above" if signal.direction is Direction.ABOVE else "below"
    out = []
    horizon = spec.release.horizon.text
    # A version is a release while it is younger than the horizon: it had no events series then.
    established = f"({s.events} offset {horizon})"
    undo = f"kubectl argo rollouts undo {spec.rollout} -n {spec.namespace}"
    tiers: list[tuple[str, float, str, str, str, str]] = []
    if eff.tier == "auto" and spec.analysis.dry_run:
        tiers.append(("auto", eff.auto, AUTO_ALERT, "critical", f"unless on (model, {v}) {established}",
                      f"SHADOW MODE (analysis.dry_run in {spec.spec_path}): an automatic rollback would have "
                      f"started; Argo Rollouts only records it (the AnalysisRun's dryRunSummary) and nothing "
                      f"freezes. {spec.authority.name} decides: kubectl argo rollouts abort {spec.rollout} -n "
                      f"{spec.namespace} while it rolls out, {undo} after it completed."))
    elif eff.tier == "auto":
        tiers.append(("auto", eff.auto, AUTO_ALERT, "critical", f"unless on (model, {v}) {established}",
                      f"A release (this version first appeared less than {horizon} ago): while its rollout "
                      f"runs, Argo Rollouts aborts it and traffic returns to the previous version; once the "
                      f"rollout has completed, {spec.authority.name} and the team are paged to undo it: "
                      f"{undo}. Rollouts of {spec.rollout} freeze for {spec.freeze.window}."))
        tiers.append(("drift", eff.auto, DRIFT_ALERT, "critical", f"and on (model, {v}) {established}",
                      f"Drift without a release: this version has served for more than {horizon}, so an "
                      f"upstream or data change is the likely cause. {spec.authority.name} and the team are "
                      f"paged; rollouts are not frozen (a fix must be able to ship)."))
    tiers.append(("manual", eff.manual, MANUAL_ALERT, "warning", "",
                  f"{spec.authority.name} decides: promote or abort the paused rollout ({undo} after it "
                  f"completed)."))
    for tier, threshold, name, severity, scope, action in tiers:
        expr = f"({s.decision} {comparison(signal.direction, threshold)}) {guard}"
        level = "manual" if tier == "manual" else "automatic"
        shadow = {"shadow": "true"} if tier == "auto" and spec.analysis.dry_run else {}
        out.append(Rule("", name, f"{expr} {scope}".rstrip(), alert_for(spec),
                        tuple(sorted({**common, "severity": severity, "rollback": tier, **shadow}.items())),
                        (("description", f"{signal.statistic.value} over the {w} window is {word} the {level} "
                                         f"threshold {num(threshold)} (at least {signal.min_events} events). "
                                         f"{action}"),
                         ("runbook_url", runbook),
                         ("summary", f"{{{{ $labels.model }}}} {signal.name} ({w}) is {{{{ $value | humanize }}}}"
                                     f" for version {{{{ $labels.{v} }}}}"),
                         ("undo", undo))))
    return out


def health_alerts(spec: ModelSpec, signal: Signal, w: str, s: SignalSeries) -> list[Rule]:
    base = {"namespace": spec.namespace, "team": spec.team.name, "signal": signal.name, "rollback": "none"}
    runbook = f"{spec.runbook_base_url}#no-decision"
    return [
        Rule("", NO_DECISION_ALERT, f"{s.events} < {signal.min_events}", "1h",
             tuple(sorted({**base, "severity": "info", "window": "slow"}.items())),
             (("description", f"Fewer than {signal.min_events} events per {w}: {signal.name} cannot decide "
                              f"and a rollout analysis would be Inconclusive."),
              ("runbook_url", runbook),
              ("summary", f"{{{{ $labels.model }}}} {signal.name}: too little traffic to decide"))),
        Rule("", ABSENT_ALERT, f"absent({s.stat})", "30m",
             tuple(sorted({**base, "severity": "warning", "window": "slow"}.items())),
             (("description", f"{s.stat_name} has no data: the exporter, the scrape or the recording rules "
                              f"are broken, so {signal.name} is not enforced."),
              ("runbook_url", runbook),
              ("summary", f"{spec.name} {signal.name}: signal is absent"))),
    ]


def live_rule(spec: ModelSpec) -> Rule:
    return _rec(LIVE_RECORD, "vector(1)", {"model": spec.name})


def freeze_rules(spec: ModelSpec) -> tuple[Rule, Rule]:
    fw = spec.freeze.window.text
    fired = selector("ALERTS", [("alertname", AUTO_ALERT), ("alertstate", "firing"), ("model", spec.name)])
    aborted = selector("rollout_info", [("name", spec.rollout),
                                        (spec.prometheus.rollout_info_namespace_label, spec.namespace),
                                        ("phase", "Degraded")])
    expr = f"max(max_over_time({fired}[{fw}])) or max(max_over_time({aborted}[{fw}]))"
    if spec.analysis.dry_run:  # shadow mode: an alert rolled nothing back, so only an abort freezes
        expr = f"max(max_over_time({aborted}[{fw}]))"
    if spec.freeze.lifted_until is not None:
        expr = f"({expr}) unless on () (vector(time()) < {spec.freeze.lifted_until})"
    record = _rec(FREEZE_RECORD, expr, {"model": spec.name})
    alert = Rule("", FROZEN_ALERT, f"{selector(FREEZE_RECORD, [('model', spec.name)])} > 0", "0s",
                 tuple(sorted({"namespace": spec.namespace, "team": spec.team.name, "severity": "warning",
                               "rollback": "freeze"}.items())),
                 (("description", f"An automatic rollback or an aborted rollout in the last {fw}: the freeze "
                                  f"gate fails every new rollout of {spec.rollout}. Lift it only by a reviewed "
                                  f"freeze.lifted_until in {spec.spec_path}."),
                  ("runbook_url", f"{spec.runbook_base_url}#freeze"),
                  ("summary", f"{spec.name} rollouts are frozen for {fw}")))
    return record, alert

