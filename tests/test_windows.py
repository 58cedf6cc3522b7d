"""What a series counted in a window (driftgate.fit.windows.increase), the numpy twin of rules.counted.

Checked against a real Prometheus in tests/test_prometheus_server.py; here: the cases that decide
which path applies, and why the plain delta matters for a young series of bucket counters.
"""

from __future__ import annotations

import numpy as np
import pytest

from driftgate.exports.series import Series
from driftgate.fit.histogram import bins_from_cumulative
from driftgate.fit.windows import increase
from driftgate.render.rules import counted


def series(t: list[float], v: list[float]) -> Series:
    return Series("x", (), np.array(t, dtype=np.float64), np.array(v, dtype=np.float64), "test")


def at(s: Series, t: float, window: float) -> tuple[float, float]:
    value, present = increase(s, np.array([t]), window)
    return float(value[0]), float(present[0])


def test_without_a_reset_the_plain_delta_is_counted() -> None:
    s = series([60, 120, 180, 240, 300], [40, 100, 160, 220, 280])  # a young series inside a 15m window
    assert at(s, 330, 900) == (240.0, 1.0)  # last - first: no extrapolation to the window's edges
    old = series([0, 60, 120, 180], [0, 60, 120, 180])
    assert at(old, 200, 90) == (60.0, 1.0)  # samples 120, 180 in [110, 200]


def test_with_a_reset_increase_repairs_and_extrapolates() -> None:
    s = series([0, 60, 120, 180], [100, 160, 10, 70])  # restart between 60 and 120
    value, present = at(s, 200, 201)
    # The range is [t - w + 1ms, t] = [-0.999, 200]: all four samples. Repaired delta: 60 + 10 + 60 = 130
    # over 180 s of samples; Prometheus extrapolates to the start (0.999 s away) and towards the end
    # (20 s away < 1.1 * 60 s: all of it): 130 * 200.999 / 180.
    assert present == 1.0 and value == pytest.approx(130 * 200.999 / 180)
    # A sample exactly at the window's start is outside the window, on Prometheus 2.x and 3.x alike:
    # [0.001, 200] holds 60, 120, 180 (delta 10 + 60 = 70 over 120 s), extrapolated by 59.999 s and 20 s.
    value, present = at(s, 200, 200)
    assert present == 1.0 and value == pytest.approx(70 * 199.999 / 120)


def test_one_sample_counts_nothing() -> None:
    assert at(series([60], [5]), 100, 900) == (0.0, 0.0)


def test_a_young_canary_keeps_its_bin_shares() -> None:
    """Buckets of a new series whose first values differ by chance: increase() stopped each one's
    extrapolation where *that* counter reaches zero, bending the bins; the plain delta keeps them."""
    rng = np.random.default_rng(1)
    rates = np.array([5.0, 8.0, 8.0, 6.0, 3.0])  # events per second per bin
    t = np.arange(60.0, 361.0, 60.0)
    counts = np.cumsum(rng.poisson(rates[None, :] * 60, size=(t.size, rates.size)), axis=0)
    cum = np.cumsum(counts, axis=1)  # cumulative buckets (le ascending)
    got = np.array([[at(series(list(t), list(cum[:, j])), 390.0, 900.0)[0] for j in range(rates.size)]])
    bins = bins_from_cumulative(got)[0]
    assert np.array_equal(bins, counts[-1] - counts[0])  # exactly what each bin counted between the samples


def test_the_rule_text_has_both_paths() -> None:
    expr = counted('m{job="a"}', "15m")
    assert expr.count('m{job="a"}[14m59s999ms]') == 5  # 1 ms short: left-open on Prometheus 2.x and 3.x
    assert "unless (resets(" in expr and expr.endswith('or increase(m{job="a"}[14m59s999ms]))')


@pytest.mark.parametrize(("window", "rendered"), [
    ("15m", "14m59s999ms"), ("1h", "59m59s999ms"), ("2h", "1h59m59s999ms"), ("30s", "29s999ms"),
    ("1d", "23h59m59s999ms"), ("1w", "167h59m59s999ms"), ("90m", "1h29m59s999ms"), ("1h30m", "1h29m59s999ms"),
])
def test_range_selector_is_one_millisecond_short(window: str, rendered: str) -> None:
    from driftgate.render.promql import duration_ms, range_selector

    assert range_selector("x", window) == f"x[{rendered}]"
    assert duration_ms(rendered) == duration_ms(window) - 1


@pytest.mark.parametrize("bad", ["", "15", "m", "1x", "5mm", "-5m", "٥m"])
def test_duration_ms_rejects_what_it_cannot_read(bad: str) -> None:
    from driftgate.render.promql import duration_ms

    with pytest.raises(ValueError):
        duration_ms(bad)
