"""``compare_with: last_week`` compares two samples, this window's and the same window's a week earlier, so
its noise term scales with the two-sample count ``n·m/(n+m)`` (as ``compare_with: stable``), in the fit as in
the rules (tests/test_enforcement.py checks the recorded count in promtool). With the one-sample ``n`` the
noise term was half what it is at equal counts and fraud-scorer's score_drift raised 14 held-out false
rollbacks where ~0.5 were budgeted (bench/compare_stable.py)."""

from __future__ import annotations

import dataclasses

import numpy as np

from driftgate.exports.series import Series
from driftgate.fit.histogram import collect_buckets
from driftgate.fit.signals import SignalData, history
from driftgate.fit.windows import eval_grid
from driftgate.model import Direction, Duration, NoData, PinnedThreshold, Signal, SignalKind, Statistic, Tier, Windows

DAY = 86400.0


def _bucket(le: str, per_minute: np.ndarray, t: np.ndarray) -> Series:
    labels = (("le", le), ("pod", "a"), ("rollouts_pod_template_hash", "a"))
    return Series("m_bucket", labels, t, np.concatenate([[0.0], np.cumsum(per_minute[1:])]), "x")


def test_the_noise_term_reads_the_two_sample_count() -> None:
    t = np.arange(0.0, 9 * DAY + 1, 60.0)
    rate = np.where(t < 2 * DAY, 40.0, 20.0)  # the week before counted twice as much
    rate[(t >= 1.5 * DAY) & (t < 1.6 * DAY)] = 0.1  # a quiet spell a week before: too few events then
    series = [_bucket("1", rate / 2, t), _bucket("+Inf", rate, t)]
    sig = Signal(name="shift", kind=SignalKind.DISTRIBUTION_DRIFT, statistic=Statistic.TVD, metric="m", denominator="",
                 quantile=0.0, matchers=(), windows=Windows(Duration("15m", 900), Duration("1h", 3600)),
                 direction=Direction.ABOVE, tier=Tier.AUTO, min_events=100, no_data=NoData.INCONCLUSIVE,
                 pinned=PinnedThreshold(None, None), description="", compare_with="last_week")
    data = SignalData(sig, collect_buckets(series, "m"), np.array([0.5, 0.5]), [], [])
    h = history(data, 900.0, 0.0, float(t[-1]), 60.0)
    grid = eval_grid(0.0, float(t[-1]), 60.0, 900.0)
    i = int(np.searchsorted(grid, 8.3 * DAY))  # this week 20/min, a week earlier 40/min
    n, m = 15 * 20.0, 15 * 40.0
    assert np.isfinite(h.value[i]) and h.events[i] == n * m / (n + m)
    quiet = int(np.searchsorted(grid, 8.55 * DAY))  # a week earlier: the quiet spell, fewer than min_events
    assert np.isnan(h.value[quiet])
    assert np.all(np.isnan(h.value[grid < 7 * DAY + 900]))  # no week before yet: no decision
    # The version's own count is the guard: a window of this week under min_events decides nothing.
    few = dataclasses.replace(sig, min_events=400)
    assert np.isnan(history(dataclasses.replace(data, signal=few), 900.0, 0.0, float(t[-1]), 60.0).value[i])
