"""Prediction logs → cumulative ``<metric>_bucket`` series: counts against a direct numpy histogram,
Go-style ``le``, versions, the sidecar, and that the fitter takes the result like a scraped histogram."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftgate.errors import ExportError
from driftgate.exports.load import reader_for
from driftgate.exports.predictions import bin_predictions, format_le, read_predictions
from driftgate.exports.series import Series
from driftgate.fit.histogram import bins_from_cumulative, collect_buckets, windowed_cumulative

START = 1792454400  # 2026-10-20T00:00:00Z
BOUNDS = [0.1, 0.25, 0.5, 0.75, 1.0]
LES = ["0.1", "0.25", "0.5", "0.75", "1", "+Inf"]
META = {"metric": "reco_score", "buckets": BOUNDS, "step": 60, "labels": {"job": "reco-ranker"}}


def log(n: int = 5000, seed: int = 0, span: float = 3600.0, versions: tuple[str, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"timestamp": START + 17.3 + rng.uniform(0, span, n),
                          "score": rng.uniform(-0.2, 1.3, n)})
    if versions:
        frame["version"] = rng.choice(list(versions), n)
    return frame


def binned(frame: pd.DataFrame | pa.Table, **kw: Any) -> list[Series]:
    args: dict[str, Any] = {"metric": "reco_score", "bounds": BOUNDS, "step": 60.0, "labels": {"job": "reco-ranker"},
                            "source": "log"}
    args.update(kw)
    return bin_predictions(frame, **args)


def by_le(series: list[Series]) -> dict[str, Series]:
    return {s.label("le") or "": s for s in series}


def error_of(frame: pd.DataFrame | pa.Table, **kw: Any) -> str:
    with pytest.raises(ExportError) as info:
        binned(frame, **kw)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Counts


def test_cumulative_counts_match_a_direct_numpy_histogram() -> None:
    frame = log()
    series = binned(frame)
    assert [s.describe() for s in series] == [f'reco_score_bucket{{job="reco-ranker",le="{le}"}}' for le in LES]
    t = series[0].t
    for s in series:
        np.testing.assert_array_equal(s.t, t)
        assert s.source == "log"
    # Samples on the minute, from the last one before the first prediction to the first one after the last.
    np.testing.assert_array_equal(np.diff(t), 60.0)
    assert t[0] % 60 == 0 and t[0] < frame.timestamp.min() <= t[0] + 60
    assert t[-1] - 60 < frame.timestamp.max() <= t[-1]
    got = np.stack([s.v for s in series], axis=1)
    edges = np.array([-np.inf, *BOUNDS, np.inf])
    want = np.stack([np.histogram(frame.score[frame.timestamp <= at], bins=edges)[0] for at in t]).cumsum(axis=1)
    np.testing.assert_array_equal(got, want)
    assert got[0, -1] == 0 and got[-1, -1] == len(frame)


def test_a_score_on_a_bound_and_a_prediction_on_a_sample_count_inclusively() -> None:
    frame = pd.DataFrame({"timestamp": [START + 60.0, START + 60.0, START + 61.0, START + 120.0],
                          "score": [0.25, 2.0, -5.0, 1.0]})
    buckets = by_le(binned(frame))
    np.testing.assert_array_equal(buckets["0.1"].t, START + np.array([0.0, 60.0, 120.0]))
    np.testing.assert_array_equal(buckets["0.1"].v, [0, 0, 1])  # -5 is below every bound
    np.testing.assert_array_equal(buckets["0.25"].v, [0, 1, 2])  # 0.25 <= le="0.25"
    np.testing.assert_array_equal(buckets["1"].v, [0, 1, 3])  # 1.0 at T counts at T
    np.testing.assert_array_equal(buckets["+Inf"].v, [0, 2, 4])  # 2.0 lands in +Inf only


def test_versions_become_separate_series() -> None:
    frame = log(versions=("5f7c9b8d6", "6d8c4f7b9"))
    series = binned(frame)
    assert len(series) == 2 * len(LES)
    for version in ("5f7c9b8d6", "6d8c4f7b9"):
        mine = [s for s in series if s.label("rollouts_pod_template_hash") == version]
        assert [s.label("le") for s in mine] == LES
        assert dict(mine[0].labels).keys() == {"job", "le", "rollouts_pod_template_hash"}
        expected = frame[frame.version == version]
        edges = np.array([-np.inf, *BOUNDS, np.inf])
        np.testing.assert_array_equal([s.v[-1] for s in mine], np.histogram(expected.score, edges)[0].cumsum())
    plain = binned(frame.drop(columns="version"))
    assert all(s.label("rollouts_pod_template_hash") is None for s in plain)
    np.testing.assert_array_equal(by_le(plain)["+Inf"].v[-1], len(frame))


def test_each_version_spans_only_its_own_predictions() -> None:
    frame = pd.DataFrame({"timestamp": [START + 10.0, START + 50.0, START + 3000.0],
                          "score": [0.5, 0.5, 0.5], "version": ["old", "old", "new"]})
    inf = {s.label("rollouts_pod_template_hash"): s for s in binned(frame) if s.label("le") == "+Inf"}
    np.testing.assert_array_equal(inf["old"].t, [START, START + 60.0])
    np.testing.assert_array_equal(inf["new"].t, [START + 2940.0, START + 3000.0])
    np.testing.assert_array_equal(inf["new"].v, [0, 1])


def test_timestamps_may_be_rfc3339_or_datetimes() -> None:
    text = pd.DataFrame({"timestamp": ["2026-10-20T00:00:30Z", "2026-10-20T02:01:00+02:00"], "score": [0.2, 0.3]})
    stamps = pd.DataFrame({"timestamp": pd.to_datetime([START + 30, START + 60], unit="s", utc=True),
                           "score": [0.2, 0.3]})
    numbers = pd.DataFrame({"timestamp": [START + 30, START + 60], "score": [0.2, 0.3]})
    want = by_le(binned(numbers))["+Inf"]
    for frame in (text, stamps):
        got = by_le(binned(frame))["+Inf"]
        np.testing.assert_array_equal(got.t, want.t)
        np.testing.assert_array_equal(got.v, want.v)


# --------------------------------------------------------------------------------------------
# The fitter takes it like a scraped histogram


def test_collect_buckets_and_windowed_counts_accept_the_output() -> None:
    frame = log(n=20000, versions=("a", "b"))
    series = binned(frame)
    buckets = collect_buckets(series, "reco_score")
    assert buckets.les == tuple(LES)
    np.testing.assert_array_equal(buckets.bounds, [*BOUNDS, np.inf])
    # A window that ends on a sample counts exactly what the histogram counted in it: from the sample at
    # its start (the rules' recorded evaluations telescope) to its last one.
    eval_t = START + np.array([1200.0, 2400.0, 3600.0])
    cum, present = windowed_cumulative(buckets, eval_t, 600.0, 60.0)
    assert present.tolist() == [10.0, 10.0, 10.0]  # evaluations counted per window
    edges = np.array([-np.inf, *BOUNDS, np.inf])
    for row, at in enumerate(eval_t):
        inside = frame[(frame.timestamp > at - 600) & (frame.timestamp <= at)]
        np.testing.assert_allclose(bins_from_cumulative(cum)[row], np.histogram(inside.score, edges)[0])


# --------------------------------------------------------------------------------------------
# le formatting


@pytest.mark.parametrize(("bound", "text"), [
    (0.1, "0.1"), (1.0, "1"), (1, "1"), (2.5, "2.5"), (0.005, "0.005"), (0.0001, "0.0001"), (1e-05, "1e-05"),
    (100000.0, "100000"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (123456.7, "123456.7"), (0.0, "0"),
    (-0.5, "-0.5"), (10.0, "10"), (60.0, "60"), (1.5e-07, "1.5e-07"), (2.5e21, "2.5e+21"), (0.30000000000000004,
                                                                                           "0.30000000000000004"),
])
def test_le_is_formatted_like_the_go_client(bound: float, text: str) -> None:
    assert format_le(bound) == text


def test_le_formatting_agrees_with_synth() -> None:
    from driftgate.synth import prom_float

    rng = np.random.default_rng(3)
    scaled = rng.uniform(-1, 1, 300) * 10.0 ** rng.integers(-12, 12, 300)
    rounded = [round(x, d) for x, d in zip(rng.uniform(0, 100, 200).tolist(), rng.integers(0, 4, 200).tolist(),
                                           strict=True)]
    values = [*scaled.tolist(), *rounded, 5e-324, 1.7976931348623157e308]
    assert [format_le(v) for v in values] == [prom_float(v) for v in values]


# --------------------------------------------------------------------------------------------
# Errors


def test_row_and_parameter_errors() -> None:
    nan = pd.DataFrame({"timestamp": [START, START + 1.0], "score": [0.5, np.nan]})
    assert error_of(nan) == "log: row 2, column 'score': expected a number, got a missing value"
    stored_nan = pa.table({"timestamp": [START, START + 1.0], "score": pa.array([0.5, np.nan], from_pandas=False)})
    assert error_of(stored_nan) == "log: row 2, column 'score': expected a number, got NaN"
    nan_text = pd.DataFrame({"timestamp": [START, START + 1.0], "score": ["0.5", "NaN"]})
    assert error_of(nan_text) == "log: row 2, column 'score': expected a number, got 'NaN'"
    text = pd.DataFrame({"timestamp": [START, START + 1.0], "score": ["0.5", "high"]})
    assert error_of(text) == "log: row 2, column 'score': expected a number, got 'high'"
    empty_version = pd.DataFrame({"timestamp": [START, START + 1.0], "score": [0.5, 0.6], "version": ["a", ""]})
    assert error_of(empty_version) == "log: row 2, column 'version': expected a version, got an empty value"
    assert error_of(pd.DataFrame({"timestamp": [START]})) == (
        "log: missing column 'score'; expected columns timestamp, score and optionally version; found: timestamp")
    assert error_of(pd.DataFrame({"timestamp": [], "score": []})) == "log: the prediction log has no rows"
    assert error_of(empty_version, labels={"rollouts_pod_template_hash": "x"}) == (
        "log: labels set rollouts_pod_template_hash and the log has a version column; the version column fills "
        "rollouts_pod_template_hash, drop one of them")
    ok = log(10)
    assert error_of(ok, metric="reco_score_bucket") == (
        "log: metric: give the base name without _bucket ('reco_score'); the series are <metric>_bucket")
    assert error_of(ok, metric="reco-score") == (
        "log: metric: expected the histogram's base name, a Prometheus metric name matching "
        "[a-zA-Z_:][a-zA-Z0-9_:]*, got 'reco-score'")
    assert error_of(ok, bounds=[0.1, 0.1]) == (
        "log: buckets[1]: bounds must be strictly increasing, got 0.1 after 0.1")
    assert error_of(ok, bounds=[0.1, float("inf")]) == (
        "log: buckets[1]: expected a finite number (+Inf is added), got Infinity")
    assert error_of(ok, bounds=[]) == "log: buckets: expected a non-empty list of finite upper bounds, got []"
    assert error_of(ok, step=0) == "log: step: expected a positive number of seconds, got 0"
    assert error_of(ok, labels={"le": "1"}) == (
        "log: labels: expected a Prometheus label name matching [a-zA-Z_][a-zA-Z0-9_]* other than __name__ and "
        "le, got 'le'")
    far = pd.DataFrame({"timestamp": [0.0, START], "score": [0.5, 0.5]})
    assert error_of(far, step=1.0) == (
        "log: 1792454402 samples of 6 buckets at step 1s exceed 20000000 cells; use a larger step (or check for "
        "stray timestamps)")


def test_integer_versions_are_label_text() -> None:
    frame = pd.DataFrame({"timestamp": [START + 1.0], "score": [0.5], "version": [3]})
    assert {s.label("rollouts_pod_template_hash") for s in binned(frame)} == {"3"}


# --------------------------------------------------------------------------------------------
# Files and sidecars


def write_log(tmp_path: Path, frame: pd.DataFrame, name: str, meta: dict[str, Any] | str | None = None) -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        (tmp_path / (name + ".meta.json")).write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["reco.predictions.csv", "reco.predictions.parquet"])
def test_files_with_sidecar_read_like_bin_predictions(tmp_path: Path, name: str) -> None:
    frame = log(versions=("a", "b"))
    frame["request_id"] = np.arange(len(frame))  # other columns are ignored
    path = write_log(tmp_path, frame, name, META)
    got = reader_for(name)(path, f"exports/{name}")
    want = binned(frame.drop(columns="request_id"), source=f"exports/{name}")
    assert [(s.describe(), s.source) for s in got] == [(s.describe(), s.source) for s in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.t, w.t)
        np.testing.assert_array_equal(g.v, w.v)


def test_sidecar_errors(tmp_path: Path) -> None:
    frame = log(10)

    def error(meta: dict[str, Any] | str | None, name: str = "r.predictions.csv") -> str:
        path = write_log(tmp_path, frame, name, meta)
        with pytest.raises(ExportError) as info:
            read_predictions(path, name)
        return str(info.value)

    (tmp_path / "x.predictions.csv.meta.json").unlink(missing_ok=True)
    assert error(None, "x.predictions.csv") == (
        "x.predictions.csv: a prediction log needs a sidecar x.predictions.csv.meta.json giving the histogram, e.g. "
        '{"metric": "reco_score", "buckets": [0.1, 0.2, 0.5, 1], "step": 60, "labels": {"job": "reco-ranker"}}')
    assert error("{nope") == (
        "r.predictions.csv.meta.json:1:2: not valid JSON (Expecting property name enclosed in double quotes); "
        'expected an object like {"metric": "reco_score", "buckets": [0.1, 0.2, 0.5, 1], "step": 60, '
        '"labels": {"job": "reco-ranker"}}')
    assert error({**META, "bucket": [1]}) == (
        "r.predictions.csv.meta.json: unknown key 'bucket'; expected metric, buckets, step, labels")
    assert error({"metric": "reco_score", "buckets": [1]}) == (
        "r.predictions.csv.meta.json: missing key 'step'; expected an object like "
        '{"metric": "reco_score", "buckets": [0.1, 0.2, 0.5, 1], "step": 60, "labels": {"job": "reco-ranker"}}')
    assert error({**META, "buckets": [0.1, "0.5"]}) == (
        "r.predictions.csv.meta.json: buckets[1]: expected a finite number (+Inf is added), got '0.5'")
    assert error({**META, "labels": {"job": 1}}) == (
        "r.predictions.csv.meta.json: labels.job: expected a non-empty string, got 1")
    assert error({**META, "step": "1m"}) == (
        "r.predictions.csv.meta.json: step: expected a positive number of seconds, got '1m'")


def test_csv_log_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "r.predictions.csv"
    path.write_text(f"timestamp,score\n{START},0.5\n{START + 1},\n", encoding="utf-8")
    (tmp_path / "r.predictions.csv.meta.json").write_text(json.dumps(META), encoding="utf-8")
    with pytest.raises(ExportError) as info:
        read_predictions(path, "r.predictions.csv")
    assert str(info.value) == "r.predictions.csv: row 2, column 'score': expected a number, got a missing value"
    path.write_bytes(f"request,timestamp,score\nab,{START},0.5\n".encode() + "é,1,0.6\n".encode("latin-1") * 5000
                     + b"x,1,0.\xe96\n")
    with pytest.raises(ExportError) as info:
        read_predictions(path, "r.predictions.csv")
    assert str(info.value) == "r.predictions.csv: column 'score': not UTF-8 text; save the file as UTF-8"
    path.write_text("ts,prediction,request\n1,0.5,a\n", encoding="utf-8")
    with pytest.raises(ExportError) as info:
        read_predictions(path, "r.predictions.csv")
    assert str(info.value) == ("r.predictions.csv: missing column 'timestamp'; expected a prediction log with "
                               "columns timestamp, score and optionally version; found: ts, prediction, request")
