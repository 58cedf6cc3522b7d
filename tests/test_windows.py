"""What a series counted in a window (driftgate.fit.windows), the numpy twin of the rules' two stages:
rules.step_counted once per evaluation, then sum_over_time of the recorded steps over the window.

Checked against a real Prometheus in tests/test_prometheus_server.py and by promtool in the generated
tests; here: the cases that decide which path applies, against a plain-Python reading of PromQL.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from driftgate.exports.series import Series
from driftgate.fit.histogram import bins_from_cumulative
from driftgate.fit.windows import LOOKBACK, steps_in, summed_window
from driftgate.render.rules import step_counted

STEP = 60.0


def series(t: list[float], v: list[float]) -> Series:
    return Series("x", (), np.array(t, dtype=np.float64), np.array(v, dtype=np.float64), "test")


def at(s: Series, t: float, window: float, step: float = STEP) -> tuple[float, float]:
    value, steps = summed_window([s], np.array([t]), window, step)
    return float(value[0]), float(steps[0])


def promql(s: Series, t: float, window: float, step: float) -> tuple[float, int]:
    """The two stages read literally, one instant at a time: ``x`` is the last sample at or before the
    instant and after ``instant - 5m``; ``resets(x[step - 1ms])`` counts drops between consecutive
    samples in ``[u - step + 1ms, u]``; the window sums the evaluations ``t - k step`` in
    ``[t - window + 1ms, t]``."""
    pts = list(zip(s.t.tolist(), s.v.tolist(), strict=True))

    def instant(u: float) -> float | None:
        found = [v for ts, v in pts if u - LOOKBACK < ts <= u]
        return found[-1] if found else None

    total, counted, k = 0.0, 0, 0
    while k * step <= window - 0.001:
        u = t - k * step
        now, then = instant(u), instant(u - step)
        if now is not None and then is not None:
            inside = [v for ts, v in pts if u - step + 0.001 <= ts <= u]
            resets = sum(1 for a, b in itertools.pairwise(inside) if b < a)
            total += now if (now < then or resets) else now - then
            counted += 1
        k += 1
    return total, counted


def test_without_a_reset_the_window_counts_from_the_sample_at_its_start() -> None:
    s = series([60, 120, 180, 240, 300], [40, 100, 160, 220, 280])  # a young series inside a 15m window
    assert at(s, 330, 900) == (240.0, 4.0)  # its first sample counts nothing; no extrapolation
    old = series([0, 60, 120, 180], [0, 60, 120, 180])
    # Evaluations at 180 and 120 are in [90.001, 180]: 180 - 120 and 120 - 60: the sample at the
    # window's start (60 < 90) is where the window counts from, so consecutive windows share nothing.
    assert at(old, 180, 90) == (120.0, 2.0)
    assert at(old, 180, 60) == (60.0, 1.0)


def test_a_reset_counts_the_restarted_counter() -> None:
    s = series([0, 60, 120, 180], [100, 160, 10, 70])  # restart between 60 and 120
    # Steps ending 200, 140, 80 (20 has no sample a step before): 70 - 10, 10 (the counter restarted
    # from zero and counted 10), 160 - 100. No extrapolation, on either path.
    assert at(s, 200, 201) == (130.0, 3.0)
    assert at(s, 200, 201) == promql(s, 200, 201, STEP)


def test_a_reset_inside_a_step_is_a_restart_too() -> None:
    """15-second scrapes, 1-minute evaluations: the counter restarts between two samples of one step
    and ends above the previous evaluation's value; resets() sees it, so the step counts the value
    since the restart (25), not 25 - 20."""
    s = series([0, 15, 30, 45, 60, 75, 90, 105, 120], [0, 5, 10, 15, 20, 30, 3, 10, 25])
    assert at(s, 120, 60) == (25.0, 1.0)
    assert at(s, 120, 120) == (45.0, 2.0)


def test_one_sample_counts_nothing() -> None:
    assert at(series([60], [5]), 100, 900) == (0.0, 0.0)


def test_a_gap_shorter_than_the_lookback_loses_nothing() -> None:
    """A missed scrape: the instant value holds the last sample for up to 5 minutes, so the count
    arrives whole with the next sample; a gap longer than the lookback drops what it spanned."""
    s = series([0, 60, 120, 300, 360], [0, 10, 20, 50, 60])
    assert at(s, 360, 3600) == (60.0, 6.0)  # 6 evaluations, the two in the gap counting 0
    gap = series([0, 60, 420, 480], [0, 10, 80, 90])
    # 360 - 60 is not inside the lookback: the evaluations at 360 and 420 have no value, so 420's 70 is lost
    assert at(gap, 480, 3600) == (20.0, 6.0) == promql(gap, 480, 3600, STEP)


@pytest.mark.parametrize("seed", range(12))
def test_the_twin_is_promql_read_literally(seed: int) -> None:
    """Random scrape jitter, missed scrapes, restarts and sub-step scrapes: the vectorised twin equals
    the literal reading at every instant of a grid."""
    rng = np.random.default_rng(seed)
    scrape = float(rng.choice([15.0, 30.0, 60.0, 90.0]))
    step = float(rng.choice([30.0, 60.0, 120.0]))
    t = np.cumsum(scrape + rng.uniform(-2.0, 2.0, size=120))
    t = t[rng.random(t.size) > 0.1]  # missed scrapes
    v = np.cumsum(rng.poisson(5.0, size=t.size)).astype(np.float64)
    for cut in rng.choice(np.arange(5, t.size), size=3, replace=False):  # restarts
        v[cut:] -= v[cut] - rng.integers(0, 4)
    s = series(list(t), list(v))
    window = step * int(rng.integers(2, 12))
    grid = np.arange(np.ceil(t[0] / step) * step, t[-1] + 400.0, step)
    value, steps = summed_window([s], grid, window, step)
    for i, u in enumerate(grid):
        want, counted = promql(s, float(u), window, step)
        assert value[i] == pytest.approx(want, abs=1e-9) and steps[i] == counted, (u, scrape, step)


def test_steps_in_a_window() -> None:
    assert [steps_in(w, 60.0) for w in (60.0, 900.0, 3600.0)] == [1, 15, 60]
    assert steps_in(900.0, 30.0) == 30


def test_a_young_canary_keeps_its_bin_shares() -> None:
    """Buckets of a new series whose first values differ by chance: each bin counts exactly what it
    counted between the series' samples, so the shares are the canary's own."""
    rng = np.random.default_rng(1)
    rates = np.array([5.0, 8.0, 8.0, 6.0, 3.0])  # events per second per bin
    t = np.arange(60.0, 361.0, 60.0)
    counts = np.cumsum(rng.poisson(rates[None, :] * 60, size=(t.size, rates.size)), axis=0)
    cum = np.cumsum(counts, axis=1)  # cumulative buckets (le ascending)
    got = np.array([[at(series(list(t), list(cum[:, j])), 390.0, 900.0)[0] for j in range(rates.size)]])
    bins = bins_from_cumulative(got)[0]
    assert np.array_equal(bins, counts[-1] - counts[0])


def test_the_step_rule_text_has_both_paths() -> None:
    expr = step_counted('m{job="a"}', "1m")
    assert expr.count('m{job="a"} offset 1m') == 2
    assert 'resets(m{job="a"}[59s999ms]) > 0' in expr  # 1 ms short: left-open on Prometheus 2.x and 3.x
    assert expr.endswith('or (m{job="a"} and m{job="a"} offset 1m))')


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


def test_a_window_must_be_whole_evaluations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The rules sum a window's evaluations, so a 15m window at a 7m interval would cover 21m: the spec
    is refused, naming the key."""
    from pathlib import Path

    from driftgate.errors import SpecError
    from driftgate.spec.load import load_specs

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "specs").mkdir()
    text = (repo / "specs/reco-ranker.yaml").read_text(encoding="utf-8")
    text = text.replace("selector: {job: reco-ranker, namespace: reco}",
                        "selector: {job: reco-ranker, namespace: reco}\n  evaluation_interval: 7m")
    (tmp_path / "specs/reco-ranker.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_specs(tmp_path, tmp_path / "specs", check_exports=False)
    assert "signals[0].windows.fast" in str(err.value) and "would cover 21m" in str(err.value)
