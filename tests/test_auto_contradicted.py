"""The automatic threshold is not allowed to contradict its own history: when the window fit's tail (one
sample per window, extrapolated) fires on the history it was fitted on more often than the budget makes
plausible, the fit refits it on the history's episodes (every evaluation's peaks) with the automatic tier's
at-least-exponential shape, or, with too few episodes, at the most extreme evaluation (``max_observed``)."""

from __future__ import annotations

import numpy as np

from driftgate.fit import thresholds as th
from driftgate.fit.run import _window_fit
from driftgate.fit.signals import SignalData, StatHistory
from driftgate.model import Direction, Duration, NoData, PinnedThreshold, Signal, SignalKind, Statistic, Tier, Windows

DAY = 86400.0


def _signal(direction: Direction = Direction.ABOVE) -> Signal:
    return Signal(name="error_ratio", kind=SignalKind.ERROR_RATIO, statistic=Statistic.RATIO, metric="e",
                  denominator="r", quantile=0.0, matchers=(),
                  windows=Windows(Duration("1h", 3600), Duration("1h", 3600)),
                  direction=direction, tier=Tier.AUTO, min_events=100, no_data=NoData.INCONCLUSIVE,
                  pinned=PinnedThreshold(None, None), description="")


def _spiky(seed: int, days: int, spikes: int, below: bool = False) -> StatHistory:
    """An error ratio at 1% with bounded noise every minute, and ``spikes`` one-minute bursts to 1.06% that fall
    between the minutes the window fit samples (one per 1h window): its tail never sees them."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days * DAY, 60.0)
    x = 0.01 + 0.0002 * rng.uniform(-1.0, 1.0, t.size)
    at = rng.choice(t.size // 60 - 1, spikes, replace=False) * 60 + 30  # never a sampled minute
    x[at] += -0.0006 if below else 0.0006
    return StatHistory(t, x, np.full(t.size, 1e7))


def _fit(hist: StatHistory, below: bool = False) -> object:
    sig = _signal(Direction.BELOW if below else Direction.ABOVE)
    data = SignalData(sig, None, np.zeros(0), [], [])
    rate = 1.0 / (90 * DAY) / 4
    wfit, _ = _window_fit(hist, data, "1h", 3600.0, 60.0, rate, 30 * rate, 5.0, 0.15, "test")
    return wfit


def test_plausible_episodes_is_the_poisson_bound() -> None:
    assert th.plausible_episodes(0.05) == 1 and th.plausible_episodes(0.0) == 0
    assert th.plausible_episodes(10.0) == 18  # P(Poisson(10) > 18) < 0.01 <= P(> 17)
    assert th.contradicted(2, 0.05) and not th.contradicted(1, 0.05)


def test_a_threshold_that_fires_on_its_own_history_is_refitted_on_episodes() -> None:
    hist = _spiky(1, 28, 20)
    x = hist.value - 0.0  # (the statistic; the refit is judged on the statistic less its noise term)
    window_fit = th.fit_thresholds(x, hist.t, 3600.0, 60.0, [1.0 / (90 * DAY) / 4], False, "t")[0]
    assert th.episodes(x, window_fit.value, False) >= 10  # the window fit misses the bursts: the test means it
    w = _fit(hist)
    assert w.auto.method in ("pot_episodes", "max_observed")
    assert w.auto.backtest_alerts <= th.plausible_episodes(w.auto.expected_alerts)
    assert w.auto.value > window_fit.value
    if w.auto.method == "pot_episodes":
        assert w.auto.tail_shape is not None and 0.0 <= w.auto.tail_shape <= 0.5  # at least exponential
    assert w.manual.value <= w.auto.value  # the manual band stays inside


def test_direction_below_is_refitted_the_same_way() -> None:
    w = _fit(_spiky(2, 28, 20, below=True), below=True)
    assert w.auto.method in ("pot_episodes", "max_observed")
    assert w.auto.backtest_alerts <= th.plausible_episodes(w.auto.expected_alerts)
    assert w.manual.value >= w.auto.value


def test_a_calibrated_threshold_is_left_alone() -> None:
    """Without bursts the window fit holds on its history: not refitted."""
    w = _fit(_spiky(3, 28, 0))
    assert w.auto.method == "pot_gpd" and w.auto.backtest_alerts <= 1


def test_enough_episodes_give_an_episode_tail() -> None:
    """Many bursts of varying height: the refit is the episode tail (at least exponential), above every one."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 28 * DAY, 60.0)
    x = 0.01 + 0.0002 * rng.uniform(-1.0, 1.0, t.size)
    at = rng.choice(t.size // 60 - 1, 300, replace=False) * 60 + 30
    x[at] += 0.0003 + rng.exponential(0.0002, at.size)
    w = _fit(StatHistory(t, x, np.full(t.size, 1e7)))
    assert w.auto.method == "pot_episodes" and w.auto.tail_exceedances >= 100
    assert w.auto.tail_shape is not None and 0.0 <= w.auto.tail_shape <= 0.5
    assert w.auto.backtest_alerts == 0 and w.auto.value > float(np.max(x)) - 0.0005
    assert w.auto.exceedance_probability == w.auto.expected_alerts / w.auto.tail_exceedances
