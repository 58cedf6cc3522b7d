"""Numbers the monitoring plan answers audit questions with, computed from the baseline.

The implied false-rollback rate is the backtest: would-have-fired automatic episodes over the fitted
history, scaled to a quarter, with a one-sided 90% Poisson upper bound (``chi2.ppf(0.9, 2k+2) / 2``
events, computed as scipy.stats does it: ``gammaincinv(k + 1, 0.9)``), side by side with what the
budget promised. ``scipy.special``, not ``scipy.stats`` (~1 s to import, for every ``render``).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import special

from driftgate.baseline import rfc3339
from driftgate.render.context import ModelContext
from driftgate.render.promql import selector
from driftgate.validate.durations import prom_duration

QUARTER_DAYS = 90.0


@dataclass(frozen=True)
class Excluded:
    """One span of history.exclude, as the plan lists it."""

    start: str  # RFC 3339, UTC
    end: str
    duration: str  # a Prometheus duration, e.g. 25m
    reason: str


@dataclass(frozen=True)
class Audit:
    auto_configurations: int
    backtest_auto: int  # would-have-fired automatic episodes over the history (auto-tier signals)
    backtest_manual: int
    history_days: float
    implied_per_quarter: float
    upper90_per_quarter: float
    promised_per_quarter: float
    last_rollback_query: str
    last_abort_query: str
    excluded: tuple[Excluded, ...] = ()  # history.exclude: left out of the fit and the backtest
    expected_manual: float = 0.0  # what budget.manual allows over the same history, summed over the bands


def audit(ctx: ModelContext) -> Audit:
    auto = [w for row in ctx.rows if row.tier == "auto" for w in row.windows]
    k = sum(w.fit.auto.backtest_alerts for w in auto)
    manual = sum(w.fit.manual.backtest_alerts for row in ctx.rows for w in row.windows)
    expected_manual = sum(w.fit.manual.expected_alerts for row in ctx.rows for w in row.windows)
    days = max(ctx.baseline.history_days - ctx.baseline.excluded_days, 1e-9)  # the backtest's time
    upper = float(special.gammaincinv(k + 1, 0.9))  # chi2.ppf(0.9, 2k + 2) / 2
    budget = ctx.spec.budget
    promised = budget.events / (budget.period_seconds / 86400.0) * QUARTER_DAYS
    name, ns, rollout = ctx.spec.name, ctx.spec.namespace, ctx.spec.rollout
    last = (f'max_over_time(timestamp(ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",'
            f'model="{name}"}})[90d:1m])')
    info = selector("rollout_info", [(ctx.spec.prometheus.rollout_info_namespace_label, ns), ("name", rollout),
                                     ("phase", "Degraded")])
    aborted = f"max_over_time(timestamp({info})[90d:1m])"
    excluded = tuple(Excluded(rfc3339(x.start), rfc3339(x.end), prom_duration(x.seconds), x.reason)
                     for x in ctx.spec.exclude)
    return Audit(len(auto), k, manual, days, k / days * QUARTER_DAYS, upper / days * QUARTER_DAYS, promised,
                 last, aborted, excluded, expected_manual)
