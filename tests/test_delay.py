"""Expected detection delays: the whole-model step change and the canary on its own series."""

from __future__ import annotations

import numpy as np
import pytest

from driftgate.fit import delay
from driftgate.fit import statistics as st
from driftgate.fit.noise import NONE, Noise
from driftgate.model import ModelSpec
from driftgate.spec.load import load_specs
from tests.conftest import REPO

Q = np.array([0.4, 0.3, 0.2, 0.1])
WINDOW, FOR = 30.0, 2.0


@pytest.fixture(scope="module")
def reco() -> ModelSpec:
    (spec,) = load_specs(REPO, REPO / "specs", "reco-ranker", check_exports=False)
    return spec


def test_a_canary_that_never_holds_min_events_never_decides(reco: ModelSpec) -> None:
    sig = reco.signal("score_drift")  # min_events 500
    assert delay.canary(sig, Q, 0.0, 499.0, NONE, 0.01, FOR, WINDOW) == (None, None, ())


def test_without_noise_a_collapse_is_caught_as_soon_as_the_canary_decides(reco: ModelSpec) -> None:
    sig = reco.signal("score_drift")
    first, smallest, det = delay.canary(sig, Q, 0.0, 5000.0, NONE, 0.05, FOR, WINDOW)
    assert first == pytest.approx(WINDOW * 500 / 5000)  # 3 minutes: the window holds 500 events
    collapse = det[-1]
    assert collapse.size == 1.0 and collapse.delay_minutes is not None
    assert first + FOR <= collapse.delay_minutes <= first + FOR + WINDOW / delay.STEPS + 1e-9
    # The smallest shift is where the full-window statistic equals the threshold.
    assert smallest is not None
    target = np.eye(4)[int(np.argmax(Q))]
    mix = (1 - smallest) * Q + smallest * target
    assert float(st.drift(sig.statistic, (5000 * mix)[None, :], Q)[0]) == pytest.approx(0.05, rel=1e-6)


def test_noise_and_traffic_move_canary_delays_the_right_way(reco: ModelSpec) -> None:
    sig = reco.signal("score_drift")  # PSI: noise b / n
    noise = Noise(3.0, 1.0)
    quiet = delay.canary(sig, Q, 0.0, 2000.0, NONE, 0.02, FOR, WINDOW)
    noisy = delay.canary(sig, Q, 0.0, 2000.0, noise, 0.02, FOR, WINDOW)
    busy = delay.canary(sig, Q, 0.0, 20000.0, noise, 0.02, FOR, WINDOW)
    for a, b in ((quiet, noisy), (busy, noisy)):  # the first is never slower than the second
        for fast, slow in zip(a[2], b[2], strict=True):
            if slow.delay_minutes is not None:
                assert fast.delay_minutes is not None and fast.delay_minutes <= slow.delay_minutes
        assert a[1] is not None and (b[1] is None or a[1] <= b[1])
    assert noisy[1] is not None and quiet[1] is not None and noisy[1] > quiet[1]


def test_canary_ratio_delays_and_the_fleet_step_change(reco: ModelSpec) -> None:
    sig = reco.signal("error_ratio")  # min_events 1000
    first, smallest, det = delay.canary(sig, np.zeros(0), 0.002, 4000.0, Noise(0.05, 0.5), 0.003, FOR, WINDOW)
    assert first == pytest.approx(7.5)
    assert [d.size for d in det] == list(delay.ERROR_FACTORS)
    assert det[0].delay_minutes is None  # x1.5 of 0.002 is 0.003: not above the threshold
    assert det[-1].delay_minutes is not None and det[-1].delay_minutes >= first + FOR
    assert smallest is not None and 1.5 < smallest < 10
    # The fleet's step change with the same numbers: a growing share of a full window.
    fleet_smallest, fleet = delay.detection(sig, np.zeros(0), 0.002, 4000.0, Noise(0.05, 0.5), 0.003, FOR, WINDOW)
    assert fleet_smallest == pytest.approx(smallest)  # the same full window, the same n
    assert [d.size for d in fleet] == list(delay.ERROR_FACTORS)
