"""Recording and alerting rules that compute every signal inside Prometheus (no sidecar).

Every count is taken in two stages (as Sloth and Pyrra do for SLOs), so that no rule reads a window's
worth of raw samples at every evaluation (issue 15: the raw rules were 96% of the cost):

1. once per evaluation (``S`` = the rule group's interval, ``prometheus.evaluation_interval``), per
   raw series, what it counted since the previous evaluation (:func:`step_counted`: ``x - x offset S``,
   or ``x`` after a counter reset), summed per version (and ``le``):
   ``model_version_le:<m>_bucket:step_increase<S>``, ``model_version:<counter>:step_increase<S>``;
2. per window ``W``, the sum of the recorded steps: ``sum_over_time(<step series>[W])`` as
   ``model_version_le:<m>_bucket:increase<W>`` (``model_version:<counter>:increase<W>``); its
   evaluations with a count, ``count_over_time``, are the version's age in steps
   (``model_version:<m>_steps:count<W>``, the young-version guard).

A window then reads one recorded sample per step and version (and bin), and each raw series is read a
few samples per evaluation, whatever the windows. Then per histogram and window:

3. one rule per bin, ``model_version_le:<m>_bin:increase<W>``: ``clamp_min(B{le=hi} - ignoring (le)
   B{le=lo}, 0) + 0.5`` (de-cumulate, clamp any skew, smooth so no bin is empty);
4. ``model_version_le:<m>_bin:share<W>``: each bin over the sum of bins;
5. the fitted baseline shares as constants ``model_signal_le:driftgate_baseline:share`` (one per bin),
   broadcast onto each version's bins;
6. PSI / JS / TVD summed over bins: ``model_version:driftgate_<signal>:<stat><W>``;
7. the event count ``model_version:<m>_count:increase<W>`` (the ``+Inf`` bucket), which guards
   every decision: fewer than ``min_events`` is *no decision*.

Ratios are the counted numerator over the counted denominator and latency quantiles
``histogram_quantile`` over stage 2. The numpy twins of these formulas live in
:mod:`driftgate.fit.windows` and :mod:`driftgate.fit.statistics`; ``promtool test rules`` and a real
Prometheus (2.x and 3.x) check that both agree.
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
MIN_SAMPLES = 5  # evaluations in the window at which a version counted, before its statistic decides


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
    present: str = ""  # what must exist for the signal to be enforced (default: the statistic itself)
    manual_decision: str = ""  # what the manual band compares, when its noise term is its own ("": decision)


def statistic_token(signal: Signal) -> str:
    """The statistic's part of the recorded series' names: ``psi``, ``ratio``, ``quantile``; a ratio or quantile
    compared with the stable version is a difference, ``ratio_minus_stable`` (``quantile_minus_stable``)."""
    minus = signal.compare_with == "stable" and signal.kind is not SignalKind.DISTRIBUTION_DRIFT
    return signal.statistic.value + ("_minus_stable" if minus else "")


def step_counted(sel: str, step: str) -> str:
    """Per raw series, what it counted since the previous rule evaluation ``step`` ago: the difference
    of its instant values now and then, or, when the counter dropped in between (below the previous
    value, or a ``resets()`` among the step's samples: a restarted pod), its value now (it restarted
    from zero). Nothing for a series without a sample at either instant (a new pod counts from its first
    scrape on). Consecutive evaluations are exactly ``step`` apart, so the steps of a window telescope to
    what the series counted in it, each increment once. ``driftgate.fit.windows.step_increments`` is the
    numpy twin."""
    then = f"{sel} offset {step}"
    return f"((({sel} - {then}) >= 0 unless resets({range_selector(sel, step)}) > 0) or ({sel} and {then}))"


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
        step = self.spec.prometheus.evaluation_interval.text
        if signal.is_histogram:
            stepped = f"model_version_le:{signal.metric}_bucket:step_increase{step}"
            self._add(_rec(stepped, f"sum by (le, {v}) ("
                                    f"{step_counted(selector(signal.metric + '_bucket', self._sel(signal)), step)})",
                           own))
            bucket = f"model_version_le:{signal.metric}_bucket:increase{w}"
            self._add(_rec(bucket, f"sum_over_time({range_selector(selector(stepped, own_sel), w)})", own))
            events_name = f"model_version:{signal.metric}_count:increase{w}"
            inf = fit.les[-1]
            self._add(_rec(events_name, f"sum without (le) ({selector(bucket, [*own_sel, ('le', inf)])})", own))
            counter = selector(stepped, [*own_sel, ("le", inf)])
            steps_name = f"model_version:{signal.metric}_steps:count{w}"
            steps_expr = f"sum without (le) (count_over_time({range_selector(counter, w)}))"
        else:
            names, bases = [], []
            for side, metric, more in (("numerator", signal.metric, signal.numerator_matchers),
                                       ("denominator", signal.denominator, signal.denominator_matchers)):
                # With its own matchers a side is the signal's alone (http_requests_total{code=~"5.."} over
                # http_requests_total would otherwise record two rules of one name).
                base = f"driftgate_{signal.name}_{side}" if more else metric
                stepped = f"model_version:{base}:step_increase{step}"
                raw = selector(metric, self._sel(signal), more)
                self._add(_rec(stepped, f"sum by ({v}) ({step_counted(raw, step)})", own))
                name = f"model_version:{base}:increase{w}"
                self._add(_rec(name, f"sum_over_time({range_selector(selector(stepped, own_sel), w)})", own))
                names.append(name)
                bases.append(base)
            events_name = names[1]
            steps_name = f"model_version:{bases[1]}_steps:count{w}"  # the denominator's evaluations
            steps_expr = f"count_over_time({range_selector(selector(stepped, own_sel), w)})"
        events = selector(events_name, own_sel)
        # Evaluations at which the version counted, in the window: its age in steps. A brand-new version
        # (every pod young) has too few for a statistic worth deciding on: no decision until it has been
        # counted at MIN_SAMPLES evaluations, or at half as many as the model's oldest version when the
        # window holds fewer than 2 * MIN_SAMPLES evaluations (so a coarse interval cannot make a window
        # that never decides). A restarted pod of an established version does not blind the signal: the
        # version's other pods (and the restarted one, after its reset) keep counting.
        self._add(_rec(steps_name, steps_expr, own))
        samples = selector(steps_name, own_sel)
        seasoned = f"({samples} >= on () group_left () clamp_max(0.5 * max({samples}), {MIN_SAMPLES}))"
        stat_name = f"model_version:driftgate_{signal.name}:{statistic_token(signal)}{w}"
        labels = {"model": self.spec.name, "signal": signal.name}
        noise_events = events  # the count the noise term scales with
        present = ""
        if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            expr, effective, shares = self._drift(signal, fit, w, own)
            noise_events = effective or events
            # Compared with the stable version, the statistic exists only while a young version rolls out:
            # "absent" then means the versions' own shares are (the scrape or the rules are broken).
            present = shares if signal.compare_with == "stable" else ""
        elif signal.kind is SignalKind.LATENCY_QUANTILE:
            q = num(signal.quantile)
            expr = f"histogram_quantile({q}, {selector(bucket, own_sel)})"
            if signal.compare_with == "stable":
                expr, noise_events = self._stable_difference(
                    signal, w, own, events, expr,
                    lambda pool: f"histogram_quantile({q}, {self._pooled_record(bucket, own, pool)})")
                present = events
        else:
            expr = f"{selector(names[0], own_sel)} / {events}"
            if signal.compare_with == "stable":
                expr, noise_events = self._stable_difference(
                    signal, w, own, events, expr,
                    lambda pool: f"{self._pooled_record(names[0], own, pool)} / "
                                 f"{self._pooled_record(names[1], own, pool)}")
                present = events
        self._add(_rec(stat_name, expr, labels))
        stat = selector(stat_name, sorted(labels.items()))
        wfit = fit.window(which)
        decision_name, decision = stat_name, stat
        op = "-" if signal.direction is Direction.ABOVE else "+"
        scale = noise_events if wfit.noise_power == 1.0 else f"({noise_events} ^ {num(wfit.noise_power)})"

        def less_noise(kind: str, b: float) -> tuple[str, str]:
            """Record the statistic less the noise term ``b·n^-k`` as ``..._<kind><W>``: (name, selector)."""
            name = f"model_version:driftgate_{signal.name}:{statistic_token(signal)}_{kind}{w}"
            self._add(_rec(name, f"{stat} {op} on (model, {v}) ({num(b)} / {scale})" if b else stat, labels))
            return name, selector(name, sorted(labels.items()))

        if wfit.noise_coefficient:
            decision_name, decision = less_noise("excess", wfit.noise_coefficient)
        manual_decision = ""
        if wfit.noise_of("manual") != wfit.noise_coefficient:  # the manual band's own term (driftgate.fit.run)
            manual_decision = less_noise("manual_excess", wfit.noise_of("manual"))[1]
        return SignalSeries(stat, events, stat_name, events_name, decision, decision_name, seasoned, present,
                            manual_decision)

    def _drift(self, signal: Signal, fit: SignalFit, w: str, own: dict[str, str]) -> tuple[str, str, str]:
        """The drift statistic's expression; (``compare_with: stable`` and ``last_week``) the selector of the
        effective two-sample count its noise term scales with ("" otherwise: the version's own count); the
        selector of the versions' bin shares."""
        own_sel = list(own.items())
        share = self._shares(signal, fit, w, own, "model_version_le", lambda sel: sel)
        p = share
        effective = ""
        if signal.compare_with == "stable":
            qsel, p, effective = self._stable(signal, fit, w, own, share)
        elif signal.compare_with == "last_week":
            share_then, count = self._model_share(signal, fit, w, own)
            # Last week's window must itself have enough events (a scrape gap is no baseline).
            qsel = (f"({share_then} offset 1w and ignoring (le) {count} offset 1w >= {signal.min_events})")
            # Two samples, this window's n and last week's m: the noise term scales with n·m/(n+m).
            effective = self._effective(f"model_version:{signal.metric}_count:increase{w}", own,
                                        f"({count} offset 1w)", ":effective_last_week")
        else:
            base = "model_signal_le:driftgate_baseline:share"
            for le, share_q in zip(fit.les, fit.probabilities, strict=True):
                labels = {"model": self.spec.name, "signal": signal.name, "le": le}
                self._add(_rec(base, f"vector({num(share_q)})", labels))
            qsel = selector(base, [("model", self.spec.name), ("signal", signal.name)])
        broadcast = f"model_version_le:driftgate_{signal.name}_baseline:share{w}"
        self._add(_rec(broadcast, f"{p} * 0 + on (le) group_left () {qsel}", own))
        q = selector(broadcast, own_sel)
        p = share  # (the broadcast exists only for the versions that are compared; so does the statistic)
        if signal.statistic is Statistic.PSI:
            return f"sum without (le) (({p} - {q}) * ln({p} / {q}))", effective, share
        if signal.statistic is Statistic.TVD:
            return f"0.5 * sum without (le) (abs({p} - {q}))", effective, share
        return (f"sum without (le) (0.5 * {p} * log2(2 * {p} / ({p} + {q}))"
                f" + 0.5 * {q} * log2(2 * {q} / ({p} + {q})))"), effective, share

    def _established(self, events: str) -> str:
        """The versions that counted ``release.horizon`` ago (``events`` then): not a release."""
        return f"({events} offset {self.spec.release.horizon.text})"

    def _pooled_record(self, name: str, own: dict[str, str], established: str) -> str:
        """Record ``name`` (a per-version ``model_version...`` series) summed over the established versions as
        ``model_stable...``; return its selector."""
        pooled = "model_stable" + name[len("model_version"):]
        self._add(_rec(pooled, self._pool(selector(name, list(own.items())), established), own))
        return selector(pooled, list(own.items()))

    def _pool(self, sel: str, established: str) -> str:
        """``sel`` (per version) summed over the established versions."""
        return f"sum without ({self.v}) ({sel} and on (model, {self.v}) {established})"

    def _effective(self, events_name: str, own: dict[str, str], m: str, kind: str = ":effective") -> str:
        """Record the two-sample count ``n·m / (n + m)`` of each version (``n``, its ``events_name``) against the
        other sample's ``m`` (the established versions', or last week's whole model) as ``events_name`` with
        ``:increase`` replaced by ``kind``; return its selector."""
        events, v = selector(events_name, list(own.items())), self.v
        effective = events_name.replace(":increase", kind, 1)
        self._add(_rec(effective, f"({events} * ignoring ({v}) group_left () {m}) / "
                                  f"({events} + ignoring ({v}) group_left () {m})", own))
        return selector(effective, list(own.items()))

    def _stable_difference(self, signal: Signal, w: str, own: dict[str, str], events: str, value: str,
                           pooled: Callable[[str], str]) -> tuple[str, str]:
        """``compare_with: stable`` for a ratio or a quantile: each *young* version's ``value`` minus the same
        value of the established versions' pooled counts over the same window (``pooled(established)``, recorded
        as ``model_stable:driftgate_<signal>:<statistic><W>`` while they counted ``min_events``). Returns the
        difference's expression and the selector of the effective two-sample count its noise term scales with:
        the variance of a difference of two independent estimates is ``σ²·(1/n + 1/m)``."""
        v = self.v
        events_name = events.split("{")[0]
        established = self._established(events)
        m = self._pooled_record(events_name, own, established)
        labels = {"model": self.spec.name, "signal": signal.name}
        stable_name = f"model_stable:driftgate_{signal.name}:{signal.statistic.value}{w}"
        self._add(_rec(stable_name, f"({pooled(established)}) and ({m} >= {signal.min_events})", labels))
        stable = selector(stable_name, sorted(labels.items()))
        young = f"(({value}) unless on (model, {v}) {established})"
        return f"{young} - on (model) group_left () {stable}", self._effective(events_name, own, m)

    def _stable(self, signal: Signal, fit: SignalFit, w: str, own: dict[str, str], share: str) -> tuple[str, str, str]:
        """``compare_with: stable`` (Kayenta's canary-against-baseline): each *young* version (no count
        ``release.horizon`` ago, the auto tier's "release") against the *established* versions' pooled
        bucket increases over the same window, smoothed like any version's. Returns the stable shares
        (only while the established versions counted at least ``min_events`` in the window), the young
        versions' shares, and the effective two-sample count ``n·m / (n + m)`` (``n`` the version's events,
        ``m`` the established versions'): PSI and JS between two samples of one distribution are about
        ``χ²(K−1)·(1/n + 1/m)``, so the noise term scales with it. ``driftgate.fit.signals.split_buckets``
        is the numpy twin on the history."""
        v = self.v
        events_name = f"model_version:{signal.metric}_count:increase{w}"
        established = self._established(selector(events_name, list(own.items())))
        stable = self._shares(signal, fit, w, own, "model_stable_le", lambda sel: self._pool(sel, established))
        m = self._pooled_record(events_name, own, established)
        qsel = f"({stable} and ignoring (le) ({m} >= {signal.min_events}))"
        young = f"({share} unless on (model, {v}) {established})"
        return qsel, young, self._effective(events_name, own, m)

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
    what = signal.statistic.value
    if statistic_token(signal) != what:  # compared with the stable version: a difference
        what = f"{what} of this version minus the established versions'"
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
    if eff.tier == "auto" and not spec.analysis.dry_run and signal.compare_with != "stable":
        # (compare_with: stable decides for young versions only: an established version has nothing to be
        # compared with, so there is no drift-without-a-release alert for it.)
        tiers.append(("drift", eff.auto, DRIFT_ALERT, "critical", f"and on (model, {v}) {established}",
                      f"Drift without a release: this version has served for more than {horizon}, so an "
                      f"upstream or data change is the likely cause. {spec.authority.name} and the team are "
                      f"paged; rollouts are not frozen (a fix must be able to ship)."))
    tiers.append(("manual", eff.manual, MANUAL_ALERT, "warning", "",
                  f"{spec.authority.name} decides: promote or abort the paused rollout ({undo} after it "
                  f"completed)."))
    for tier, threshold, name, severity, scope, action in tiers:
        compared = s.manual_decision or s.decision if tier == "manual" else s.decision
        expr = f"({compared} {comparison(signal.direction, threshold)}) {guard}"
        level = "manual" if tier == "manual" else "automatic"
        shadow = {"shadow": "true"} if tier == "auto" and spec.analysis.dry_run else {}
        out.append(Rule("", name, f"{expr} {scope}".rstrip(), alert_for(spec),
                        tuple(sorted({**common, "severity": severity, "rollback": tier, **shadow}.items())),
                        (("description", f"{what} over the {w} window is {word} the {level} "
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
        Rule("", ABSENT_ALERT, f"absent({s.present or s.stat})", "30m",
             tuple(sorted({**base, "severity": "warning", "window": "slow"}.items())),
             (("description", f"{s.present.split('{')[0] if s.present else s.stat_name} has no data: the exporter, "
                              f"the scrape or the recording rules are broken, so {signal.name} is not enforced."),
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

