"""The manual tier is calibrated to its own budget (issue 16): fitted on the history's episodes with a tail
whose shape may be bounded, it pages about as often as promised on new data from the same process; the
automatic tier keeps its conservative, at-least-exponential tail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from driftgate.fit import thresholds as th

STEP, WINDOW, DAY = 300.0, 3600.0, 86400.0


def _normal_month(seed: int, days: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """A statistic on a 5-minute grid with a *bounded* tail: the 1-hour mean of a beta-distributed noise
    (windows overlap, as the rules' do), plus a daily cycle."""
    rng = np.random.default_rng(seed)
    n = int(days * DAY / STEP)
    k = int(WINDOW / STEP)
    raw = rng.beta(2.0, 5.0, n + k)
    x = np.convolve(raw, np.ones(k) / k, mode="valid")[:n]
    t = np.arange(n) * STEP
    return x + 0.02 * np.sin(2 * np.pi * t / DAY), t


def _episodes(x: np.ndarray, t: np.ndarray, level: float) -> int:
    """Pages: upcrossings of the level, a new one after a quiet window (what a reviewer is asked)."""
    hot = np.flatnonzero(x > level)
    return int(hot.size and 1 + np.count_nonzero(np.diff(t[hot]) > WINDOW))


def test_the_manual_band_pages_at_its_budget_on_new_data() -> None:
    target = 4.0  # pages per 28 days
    pages, old_pages, months = 0, 0, 0
    for fit_seed in range(1, 7):  # six histories, each fitted, each judged on three new months
        x, t = _normal_month(fit_seed)
        span = float(t[-1] - t[0] + WINDOW)
        rate = target / span
        fitted = th.episode_threshold(x, t, WINDOW, rate, span, below=False)
        assert fitted is not None and fitted.method == "pot_episodes"
        assert th.MANUAL_XI_BOUNDS[0] <= (fitted.tail_shape or 0.0) <= th.MANUAL_XI_BOUNDS[1]
        assert fitted.exceedance_probability == pytest.approx(target / fitted.tail_exceedances)
        assert fitted.band[0] <= fitted.value <= fitted.band[1]
        # The window fit at the same rate (the automatic tier's tail, at least exponential, and the budget
        # turned into a per-window probability by an excursion length measured at a lower level).
        old = th.fit_thresholds(x, t, WINDOW, STEP, [rate], False, "x")[0]
        for seed in range(100 + 3 * fit_seed, 103 + 3 * fit_seed):
            new = _normal_month(seed)
            pages += _episodes(*new, fitted.value)
            old_pages += _episodes(*new, old.value)
            months += 1
    low, high = stats.poisson.ppf([0.05, 0.95], months * target)
    assert low <= pages <= high, (pages, months * target)  # 72 promised in 18 new months (80 paged)
    assert old_pages < low, old_pages  # what the manual band did before: fewer pages than the band allows


def test_direction_below_mirrors_above() -> None:
    x, t = _normal_month(3)
    span = float(t[-1] - t[0] + WINDOW)
    up = th.episode_threshold(x, t, WINDOW, 4.0 / span, span, below=False)
    down = th.episode_threshold(-x, t, WINDOW, 4.0 / span, span, below=True)
    assert up is not None and down is not None
    assert down.value == pytest.approx(-up.value)
    assert down.band == pytest.approx((-up.band[1], -up.band[0]))
    assert down.tail_u == pytest.approx(-(up.tail_u or 0.0))


def test_too_few_episodes_leave_it_to_the_window_fit() -> None:
    x, t = _normal_month(4, days=2)  # about 10 hours above the 99th percentile: fewer than 10 episodes
    span = float(t[-1] - t[0] + WINDOW)
    assert th.episode_threshold(x, t, WINDOW, 1.0 / span, span, below=False) is None
    x, t = _normal_month(4)
    span = float(t[-1] - t[0] + WINDOW)
    assert th.episode_threshold(x, t, WINDOW, 1000.0 / span, span, below=False) is None  # a budget above the episodes
    flat = np.full(8064, 0.3)
    assert th.episode_threshold(flat, np.arange(8064) * STEP, WINDOW, 1e-6, 8064 * STEP, below=False) is None


@pytest.mark.parametrize("shape", [-0.2, 0.0, 0.2])
def test_the_tail_shape_is_the_maximum_likelihood_one(shape: float) -> None:
    excess = stats.genpareto.rvs(shape, scale=1.0, size=2000, random_state=np.random.default_rng(7))
    xi, sigma = th.gpd_fit(excess, th.MANUAL_XI_BOUNDS)
    ref_xi, _, ref_sigma = stats.genpareto.fit(excess, floc=0)
    assert xi == pytest.approx(ref_xi, abs=2e-3) and sigma == pytest.approx(ref_sigma, rel=5e-3)
    auto_xi, _ = th.gpd_fit(excess)  # the automatic tier: never a bounded tail
    assert auto_xi == pytest.approx(max(ref_xi, 0.0), abs=2e-3)


def test_a_steeper_shape_is_clipped_keeping_the_mean_excess() -> None:
    excess = stats.genpareto.rvs(-0.6, scale=1.0, size=2000, random_state=np.random.default_rng(8))
    xi, sigma = th.gpd_fit(excess, th.MANUAL_XI_BOUNDS)
    assert xi == th.MANUAL_XI_BOUNDS[0]
    assert sigma / (1.0 - xi) == pytest.approx(float(excess.mean()))


def test_the_manual_band_has_its_own_noise_term_and_stays_below_the_automatic_line() -> None:
    """The example's manual bands: each tier's noise quantile at its own probability (b_m < b at the larger
    manual rate), the manual line a_m + b_m n^-k never above the automatic line at any count the signal decides
    at, and the rules compare the manual band with its own recorded decision."""
    import yaml

    from driftgate import baseline as bl
    from tests.conftest import REPO

    base = bl.load(REPO / "baselines/reco-ranker.yaml", "b")
    rules = yaml.safe_load((REPO / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text())
    alerts = {(r["labels"]["signal"], r["labels"]["window"]): r["expr"] for g in rules["groups"]
              for r in g["rules"] if r.get("alert") == "DriftgateManualReview"}
    own = 0
    for sig in base.signals:
        for which, w in (("fast", sig.fast), ("slow", sig.slow)):
            b, bm, k = w.noise_coefficient, w.noise_of("manual"), w.noise_power
            n = np.geomspace(100.0, 100 * max(w.events_p50, 100.0), 200)
            sign = -1.0 if sig.name == "ctr" else 1.0  # ctr: direction below
            manual_line = w.manual.value + sign * (bm / n**k if k else 0.0)
            auto_line = w.auto.value + sign * (b / n**k if k else 0.0)
            assert np.all(sign * manual_line <= sign * auto_line + 1e-12), (sig.name, which)
            if bm != b:
                own += 1
                assert bm < b
                assert f"driftgate_{sig.name}:{sig.statistic}_manual_excess" in alerts[(sig.name, which)]
            else:
                assert "_manual_excess" not in alerts[(sig.name, which)]
    assert own >= 8  # most of the example's bands use their own term
