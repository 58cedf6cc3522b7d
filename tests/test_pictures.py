"""The plan's pictures: keyed on what they show and on the drawing code only; values in units a person reads."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from driftgate import pipeline
from driftgate.render import drawing, plots
from driftgate.render.env import human
from driftgate.spec.load import load_specs
from tests.conftest import REPO


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.262767, "seconds", "263 ms"), (1.53, "seconds", "1.53 s"), (0.0, "seconds", "0 ms"),
    (0.00432, "ratio", "0.432%"), (0.05, "ratio", "5%"), (0.0185432, "", "0.0185"), (-0.00012, "", "-0.00012"),
])
def test_values_are_shown_in_units_with_three_significant_figures(value: float, unit: str, text: str) -> None:
    assert human(value, unit) == text


def test_the_key_covers_the_drawing_code_not_the_keying_code() -> None:
    drawing_py = Path(drawing.__file__).read_bytes()
    assert hashlib.sha256(drawing_py).hexdigest() == plots._CODE_DIGEST
    assert hashlib.sha256(Path(plots.__file__).read_bytes()).hexdigest() != plots._CODE_DIGEST


def test_figure_data_carries_dates_and_units() -> None:
    (spec,) = load_specs(REPO, REPO / "specs", only="reco-ranker", check_exports=False)
    ctx = pipeline.model_context(REPO, spec, [])
    assert ctx.evidence is not None
    units = {}
    for row in ctx.rows:
        data = plots.figure_data(ctx, row, ctx.evidence.signals[row.signal.name])
        fast = data["fast"]
        assert fast["start"] < fast["end"] and fast["step"] == 3600
        # the trace ends within the last hour of the fitted history
        assert fast["end"] - 3600 <= fast["start"] + fast["step"] * (len(fast["values"]) - 1) <= fast["end"]
        units[row.signal.kind.value] = fast["unit"]
    assert units == {"distribution_drift": "", "latency_quantile": "seconds", "error_ratio": "ratio",
                     "kpi_ratio": "ratio"}


def test_pictures_drawn_at_once_equal_pictures_drawn_one_by_one() -> None:
    (spec,) = load_specs(REPO, REPO / "specs", only="fraud-scorer", check_exports=False)
    ctx = pipeline.model_context(REPO, spec, [])
    pictures = list(plots.render_pictures(ctx, ctx.evidence).values())
    assert len(pictures) >= 2
    together = plots._draw_all(pictures)
    assert [plots.matches(png, p.key) for png, p in zip(together, pictures, strict=True)] == [True] * len(pictures)
    assert together == [p.draw() for p in pictures]


def test_excluded_spans_are_in_the_picture_data_only_when_there_are_any() -> None:
    from driftgate.fit.evidence import ExcludedEvidence

    (spec,) = load_specs(REPO, REPO / "specs", only="reco-ranker", check_exports=False)
    ctx = pipeline.model_context(REPO, spec, [])
    assert ctx.evidence is not None
    row = ctx.rows[0]
    ev = ctx.evidence.signals[row.signal.name]
    plain = plots.figure_data(ctx, row, ev)
    assert "excluded" not in plain  # (the committed pictures keep their keys)
    span = ExcludedEvidence("2026-10-20T14:00:00Z", "2026-10-20T14:25:00Z", "INC-1")
    marked = plots.figure_data(ctx, row, ev, (span,))
    assert marked["excluded"] == [[1792504800.0, 1792506300.0, "INC-1"]]
    assert plots.picture_key(marked) != plots.picture_key(plain)
    png = plots.Picture(plots.picture_key(marked), marked).draw()
    assert plots.matches(png, plots.picture_key(marked))


def test_the_evidence_keeps_the_statistic_and_events_at_each_hours_extreme() -> None:
    import numpy as np

    from driftgate.fit.evidence import hourly

    t = np.arange(0, 3 * 3600, 600.0)  # three hours of 10-minute evaluations
    x = np.array([1, 5, 2, 5, 0, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 4, -1, 9, 2, 9, 1.0])
    stat = x + 100
    n = np.arange(t.size, dtype=float) * 10
    w = hourly(t, x, False, stat, n)
    assert w.values == (5.0, None, 9.0)
    assert w.statistic == (105.0, None, 109.0) and w.events == (10.0, None, 140.0)  # the first extreme of the hour
    low = hourly(t, x, True, stat, n)
    assert low.values == (0.0, None, -1.0) and low.statistic == (100.0, None, 99.0)
    assert low.events == (40.0, None, 130.0)
    assert hourly(t, x, False).statistic == ()  # (without them: only the decision statistic)


def test_pictures_draw_the_statistic_against_its_threshold_at_the_hours_traffic() -> None:
    (spec,) = load_specs(REPO, REPO / "specs", only="reco-ranker", check_exports=False)
    ctx = pipeline.model_context(REPO, spec, [])
    assert ctx.evidence is not None
    for row in ctx.rows:
        data = plots.figure_data(ctx, row, ctx.evidence.signals[row.signal.name])
        for which in ("fast", "slow"):
            d, w = data[which], next(x for x in row.windows if x.which == which)
            assert len(d["statistic"]) == len(d["events"]) == len(d["values"])
            assert d["noise"] == [w.fit.noise_coefficient, w.fit.noise_power]
            sign = -1 if d["below"] else 1
            for x, s, n in zip(d["values"], d["statistic"], d["events"], strict=True):
                if x is not None and s is not None and n:  # the decision is the statistic less the noise term
                    assert abs(s - sign * d["noise"][0] / n ** d["noise"][1] - x) <= 2e-3 * max(abs(s), abs(x), 1e-9) \
                        + 5e-4 * abs(s), (row.signal.name, which, x, s, n)


def test_trace_values_are_checked_in_bulk_and_reported_by_index() -> None:
    from driftgate.fit import evidence as ev

    assert ev._values([1.5, None, 2, 0.0], "t") == (1.5, None, 2.0, 0.0)
    assert all(type(v) is float for v in ev._values([1, 2], "t"))
    for bad, at in (([1.0, float("nan")], "t[1]"), ([1.0, None, float("inf")], "t[2]"), ([True], "t[0]"),
                    ([1.0, "2"], "t[1]")):
        with pytest.raises(ValueError, match=rf"^{re.escape(at)}: expected a finite number"):
            ev._values(bad, "t")
