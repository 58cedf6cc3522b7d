"""Long-format CSV/Parquet exports: the same series as query_range JSON, both label styles,
timezones, and each error message verbatim (file, row, column, expected vs found)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftgate import synth
from driftgate.errors import ExportError
from driftgate.exports import series
from driftgate.exports.load import READERS, reader_for
from driftgate.exports.predictions import read_predictions
from driftgate.exports.promjson import parse_query_range, read_query_range
from driftgate.exports.series import Series
from driftgate.exports.tabular import parse_long, read_long_csv, read_long_parquet

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "tests" / "corpus" / "base" / "exports" / "demo" / "demo_score_bucket.json"  # committed
START = int(datetime(2026, 10, 20, tzinfo=UTC).timestamp())  # 1792454400

TOY = synth.ServiceModel(
    job="toy-ranker", namespace="toy", metric_prefix="toy", pods=2, pod_template_hash="5f7c9b8d6",
    peak_rps=5.0,
    score=synth.ScoreModel(bounds=(0.1, 0.25, 0.5, 1.0), components=(synth.BetaComponent(1.0, 2.0, 5.0),)),
    latency=synth.LatencyModel(bounds=(0.01, 0.1, 1.0), mu=-3.0, sigma=0.5),
    restarts=1,
)


def long_frame(doc: dict[str, Any], style: str) -> pd.DataFrame:
    """A query_range document as a long table, values kept as Prometheus' strings."""
    records = []
    for item in doc["data"]["result"]:
        labels = dict(item["metric"])
        name = labels.pop("__name__")
        extra = ({"labels": json.dumps(labels)} if style == "json"
                 else {f"label_{k}": v for k, v in labels.items()})
        records.extend({"timestamp": ts, "metric": name, **extra, "value": value} for ts, value in item["values"])
    return pd.DataFrame.from_records(records)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def ordered(series: list[Series]) -> list[Series]:
    return sorted(series, key=lambda s: (s.name, s.labels))


def assert_same(got: list[Series], want: list[Series]) -> None:
    assert len(got) == len(want)
    for g, w in zip(ordered(got), ordered(want), strict=True):
        assert (g.name, g.labels) == (w.name, w.labels)
        assert g.t.dtype == w.t.dtype == np.float64
        assert g.v.dtype == w.v.dtype == np.float64
        np.testing.assert_array_equal(g.t, w.t)
        np.testing.assert_array_equal(g.v, w.v)


def read(path: Path) -> list[Series]:
    return reader_for(path.name)(path, path.name)


def error_of(path: Path) -> str:
    with pytest.raises(ExportError) as info:
        read(path)
    return str(info.value)


def csv_file(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.fixture(scope="module")
def example() -> tuple[dict[str, Any], list[Series]]:
    """A committed export (the corpus base's score histogram) and what the JSON reader makes of it."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return doc, parse_query_range(doc, EXAMPLE.name)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("style", ["json", "columns"])
def test_example_export_reads_identically_in_long_format(example: tuple[dict[str, Any], list[Series]],
                                                         tmp_path: Path, suffix: str, style: str) -> None:
    doc, want = example
    frame = long_frame(doc, style)
    if suffix == ".parquet":
        frame["value"] = frame["value"].astype(float)  # Parquet users store numbers
    got = read(write(frame, tmp_path / f"fraud_score_bucket{suffix}"))
    assert_same(got, want)
    assert {s.source for s in got} == {f"fraud_score_bucket{suffix}"}


def test_synth_doc_with_canary_restart_and_stale_samples_round_trips(tmp_path: Path) -> None:
    canary = synth.Incident(kind=synth.IncidentKind.NONE, start=START + 3 * 3600, end=START + 6 * 3600,
                            canary=synth.Canary())
    doc = synth.generate(TOY, START, 0.5, 300, seed=3, incidents=(canary,))[TOY.score_metric]
    doc["data"]["result"][0]["values"][5][1] = "NaN"  # a stale sample, dropped by both readers
    doc["data"]["result"][1]["values"][0][0] = START + 0.25  # a fractional timestamp
    want = read_query_range(Path(synth.write_exports({"toy": doc}, tmp_path)[0]), "toy.json")
    assert len({s.label("rollouts_pod_template_hash") for s in want}) == 2
    assert want[0].t.size == doc["data"]["result"][0]["values"].__len__() - 1
    for style in ("json", "columns"):
        frame = long_frame(doc, style).sample(frac=1.0, random_state=1)  # row order does not matter
        assert_same(read(write(frame, tmp_path / f"toy_{style}.csv")), want)
        assert_same(read(write(frame, tmp_path / f"toy_{style}.parquet")), want)


JQ = ('["timestamp","metric","labels","value"], (.data.result[] | (.metric | del(.__name__) | tojson) as $labels '
      '| .metric.__name__ as $name | .values[] | [.[0], $name, $labels, .[1]]) | @csv')


def test_documented_jq_and_pandas_conversions(tmp_path: Path) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq not installed")
    assert f"jq -r '{JQ}'" in (REPO / "docs" / "exports.md").read_text()
    doc = synth.generate(TOY, START, 0.25, 300, seed=5)[TOY.score_metric]
    doc["data"]["result"][0]["values"][3][1] = "NaN"
    source = synth.write_exports({"toy": doc}, tmp_path)[0]
    want = read_query_range(source, "toy.json")
    out = subprocess.run([jq, "-r", JQ, str(source)], check=True, capture_output=True, text=True).stdout
    csv_path = csv_file(tmp_path, out, "toy.csv")
    assert_same(read(csv_path), want)
    pd.read_csv(csv_path).to_parquet(tmp_path / "toy.parquet", index=False)  # as docs/exports.md shows
    assert_same(read(tmp_path / "toy.parquet"), want)


def test_json_label_spelling_and_order_do_not_split_a_series(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 'timestamp,metric,labels,value\n'
                              '60,up,"{""job"":""a"",""pod"":""p""}",1\n'
                              '0,up,"{ ""pod"": ""p"", ""job"": ""a"" }",0\n'
                              '0,up,,5\n'
                              '30,up,{},6\n')
    got = ordered(read(path))
    assert [s.describe() for s in got] == ['up{}', 'up{job="a",pod="p"}']
    np.testing.assert_array_equal(got[1].t, [0.0, 60.0])
    np.testing.assert_array_equal(got[0].v, [5.0, 6.0])


def test_empty_label_values_mean_no_label(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "timestamp,metric,label_job,label_pod,value\n"
                              "0,x_total,a,,1\n60,x_total,a,,2\n0,x_total,a,p1,3\n")
    assert [s.describe() for s in ordered(read(path))] == ['x_total{job="a"}', 'x_total{job="a",pod="p1"}']
    frame = pd.DataFrame({"timestamp": [0, 60], "metric": ["x_total"] * 2, "labels": ['{"job": "a", "pod": ""}'] * 2,
                          "value": [1.0, None]})
    (series,) = parse_long(frame, "frame")
    assert series.describe() == 'x_total{job="a"}'
    np.testing.assert_array_equal(series.t, [0.0])  # the null value is a stale sample
    nulls = pa.table({"timestamp": [0, 0], "metric": ["x_total"] * 2, "label_job": ["a", None],
                      "label_pod": pa.nulls(2, pa.string()), "value": [1, 2]})
    assert [s.describe() for s in ordered(parse_long(nulls, "t"))] == ["x_total{}", 'x_total{job="a"}']


def test_values_follow_prometheus_spelling(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "timestamp,metric,label_job,value\n"
                              "0,x,a,1e3\n1,x,a,NaN\n2,x,a,nan\n3,x,a,\n4,x,a,.5\n5,x,a,-2.\n")
    (series,) = read(path)
    np.testing.assert_array_equal(series.t, [0.0, 4.0, 5.0])
    np.testing.assert_array_equal(series.v, [1000.0, 0.5, -2.0])


# --------------------------------------------------------------------------------------------
# Timestamps and timezones


def test_rfc3339_timestamps_with_any_offset(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "timestamp,metric,label_job,value\n"
                              "2026-10-20T00:00:00Z,x,a,1\n"
                              "2026-10-20T02:01:00+02:00,x,a,2\n"
                              "2026-10-19t19:02:00.5-05:00,x,a,3\n"
                              "1792454700,x,a,4\n"
                              "2026-10-20 00:06:00z,x,a,5\n")
    (series,) = read(path)
    np.testing.assert_array_equal(series.t, START + np.array([0.0, 60.0, 120.5, 300.0, 360.0]))


def test_parquet_timestamp_types_with_a_timezone(tmp_path: Path) -> None:
    stamps = pd.to_datetime([START, START + 60], unit="s", utc=True)
    for tz in ("UTC", "Europe/Berlin", "America/New_York"):
        for unit in ("s", "ms", "ns"):
            frame = pd.DataFrame({"timestamp": stamps.tz_convert(tz).as_unit(unit), "metric": "x",
                                  "label_job": "a", "value": [1.0, 2.0]})
            (series,) = read(write(frame, tmp_path / "t.parquet"))
            np.testing.assert_array_equal(series.t, [START, START + 60.0])


def test_timezone_naive_timestamps_are_rejected(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "timestamp,metric,label_job,value\n2026-10-20T00:00:00Z,x,a,1\n"
                              "2026-10-20T00:01:00,x,a,1\n")
    assert error_of(path) == ("m.csv: row 2, column 'timestamp': '2026-10-20T00:01:00' has no timezone; write Z "
                              "(UTC) or an offset such as +02:00, e.g. 2026-10-20T00:00:00Z")
    frame = pd.DataFrame({"timestamp": pd.to_datetime([START], unit="s"), "metric": "x", "label_job": "a",
                          "value": [1.0]})
    assert error_of(write(frame, tmp_path / "naive.parquet")) == (
        "naive.parquet: row 1, column 'timestamp': 2026-10-20T00:00:00 has no timezone (the column type is "
        "timestamp[us]); store UTC times with tz='UTC' (pandas: .dt.tz_localize('UTC'))")


# --------------------------------------------------------------------------------------------
# Errors


HEAD = "timestamp,metric,label_job,value\n"
EXPECTED = "timestamp, metric, value, and either labels (a JSON object) or label_<name> columns"

CSV_ERRORS = [
    ("timestamp,metric,label_job\n0,x,a\n",
     f"m.csv: missing column 'value'; expected columns {EXPECTED}; found: timestamp, metric, label_job"),
    ("timestamp,metric,value\n0,x,1\n",
     "m.csv: no labels: expected a 'labels' column (a JSON object) or label_<name> columns such as label_job, "
     "label_le"),
    ("timestamp,metric,labels,label_pod,value\n0,x,{},a,1\n",
     "m.csv: both a 'labels' column and label_ columns (label_pod); use exactly one label style"),
    ("timestamp,metric,pod,label_job,value\n0,x,a,b,1\n",
     f"m.csv: unexpected column 'pod'; expected columns {EXPECTED} (label columns are prefixed: label_pod)"),
    ("timestamp,metric,label_a-b,value\n0,x,a,1\n",
     "m.csv: column 'label_a-b': expected label_ followed by a Prometheus label name matching "
     "[a-zA-Z_][a-zA-Z0-9_]* (not __name__), got 'a-b'"),
    ("timestamp,metric,label_job,value,label_job\n0,x,a,1,a\n",
     "m.csv: column 'label_job' appears twice in the header"),
    (HEAD, "m.csv: the export has a header but no data rows"),
    ("\n\n", "m.csv: the first line is empty; expected a header row naming the columns (a long-format CSV "
             f"file with columns {EXPECTED})"),
    (HEAD + "0,x,a,1\n60,x,a,abc\n",
     "m.csv: row 2, column 'value': expected a number (NaN or empty for a stale sample), got 'abc'"),
    (HEAD + "0,x,a,1\n60,x,a, 1\n",
     "m.csv: row 2, column 'value': expected a number (NaN or empty for a stale sample), got ' 1'"),
    (HEAD + "0,x,a,1\nyesterday,x,a,1\n",
     "m.csv: row 2, column 'timestamp': expected unix seconds or an RFC 3339 time with a timezone "
     "(2026-10-20T00:00:00Z), got 'yesterday'"),
    (HEAD + "0,x,a,1\n,x,a,1\n",
     "m.csv: row 2, column 'timestamp': expected unix seconds or an RFC 3339 time with a timezone "
     "(2026-10-20T00:00:00Z), got ''"),
    (HEAD + "1792454400000,x,a,1\n",
     "m.csv: row 1, column 'timestamp': '1792454400000' looks like milliseconds since the epoch; expected unix "
     "seconds (divide by 1000)"),
    (HEAD + "2026-13-20T00:00:00Z,x,a,1\n",
     "m.csv: row 1, column 'timestamp': '2026-13-20T00:00:00Z' is not a valid date and time"),
    (HEAD + "0,x,a,1\n0,reco-score,a,1\n",
     "m.csv: row 2, column 'metric': expected a Prometheus metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*, "
     "got 'reco-score'"),
    (HEAD + "0,x,a,1\n0,,a,1\n",
     "m.csv: row 2, column 'metric': expected a Prometheus metric name, got an empty value"),
    (HEAD + "0,x,a,1\n60,x,a,2\n60,x,a,3\n",
     'm.csv: series x{job="a"}: duplicate timestamp 60.000'),
    (HEAD + "0,x,a,1\n60,x,a,+Inf\n",
     'm.csv: series x{job="a"}: infinite sample value'),
    (HEAD + "0,x,a,1\n60,x,a,2,3\n",
     "m.csv: line 3: expected 4 fields like the header, got 5: 60,x,a,2,3"),
    ('timestamp,metric,labels,value\n0,x,{},1\n0,y,"{""job"": a}",1\n',
     "m.csv: row 2, column 'labels': not valid JSON (Expecting value at character 9); expected an object of "
     "string labels, got '{\"job\": a}'"),
    ('timestamp,metric,labels,value\n0,x,"[""a""]",1\n',
     "m.csv: row 1, column 'labels': expected a JSON object of string labels such as {\"pod\": \"a\"}, "
     "got '[\"a\"]'"),
    ('timestamp,metric,labels,value\n0,x,"{""le"": 0.1}",1\n',
     "m.csv: row 1, column 'labels': label 'le': expected a string value, got 0.1, got '{\"le\": 0.1}'"),
    ('timestamp,metric,labels,value\n0,x,"{""__name__"": ""x""}",1\n',
     "m.csv: row 1, column 'labels': '__name__' is not a label here; the metric name goes in the 'metric' "
     "column, got '{\"__name__\": \"x\"}'"),
]


@pytest.mark.parametrize(("text", "message"), CSV_ERRORS)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    assert error_of(csv_file(tmp_path, text)) == message


def test_file_level_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert error_of(csv_file(tmp_path, "")) == (
        f"m.csv: the export is empty; expected a long-format CSV file with columns {EXPECTED}")
    (tmp_path / "latin.csv").write_bytes(b"timestamp,metric,label_caf\xe9,value\n0,x,a,1\n")
    assert error_of(tmp_path / "latin.csv") == ("latin.csv: line 1: not UTF-8 text (invalid continuation byte); "
                                                "save the file as UTF-8")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + HEAD.encode() + b"0,x,a,1\r\n")
    assert [s.describe() for s in read(tmp_path / "bom.csv")] == ['x{job="a"}']
    assert error_of(csv_file(tmp_path, '"timestamp,metric\n0,x\n')) == (
        "m.csv: line 1: not a valid CSV header (unexpected end of data); expected a long-format CSV file with "
        f"columns {EXPECTED}")
    (tmp_path / "late.csv").write_bytes(HEAD.encode() + b"0,x,a,1\n1,x,caf\xe9,1\n")
    assert error_of(tmp_path / "late.csv") == ("late.csv: column 'label_job': not UTF-8 text; save the file "
                                             "as UTF-8")
    assert error_of(tmp_path / "missing.csv") == "missing.csv: file not found"
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    assert error_of(tmp_path / "junk.parquet").startswith("junk.parquet: not a readable Parquet file (")
    assert error_of(tmp_path / "junk.parquet").endswith(
        f"); expected a long-format Parquet file with columns {EXPECTED}")
    monkeypatch.setattr(series, "MAX_EXPORT_BYTES", 10)
    assert error_of(csv_file(tmp_path, HEAD + "0,x,a,1\n")) == "m.csv: the export is 41 bytes; the limit is 10"


def test_parquet_column_types_are_checked(tmp_path: Path) -> None:
    def table_error(**columns: Any) -> str:
        base: dict[str, Any] = {"timestamp": [0.0, 60.0], "metric": ["x", "x"], "label_job": ["a", "a"],
                                "value": [1.0, 2.0]}
        base.update(columns)
        path = tmp_path / "t.parquet"
        pq.write_table(pa.table(base), path)
        return error_of(path)

    assert table_error(metric=[1, 2]) == (
        "t.parquet: row 1, column 'metric': expected text (a Prometheus metric name), got 1 "
        "(a column of type int64)")
    assert table_error(value=[True, False]) == (
        "t.parquet: row 1, column 'value': expected a number (NaN or empty for a stale sample), got True "
        "(a column of type bool)")
    assert table_error(label_le=[0.1, 1.0]) == (
        "t.parquet: row 1, column 'label_le': expected text (a label value), got 0.1 (a column of type double)")
    assert table_error(timestamp=[0.0, None]) == (
        "t.parquet: row 2, column 'timestamp': expected unix seconds or an RFC 3339 time with a timezone "
        "(2026-10-20T00:00:00Z), got a missing value")
    dictionary = pa.array(["x", "x"]).dictionary_encode()
    (series,) = read_long_parquet_table(tmp_path, {"metric": dictionary, "value": pa.array(["1", "NaN"])})
    assert series.describe() == 'x{job="a"}'
    np.testing.assert_array_equal(series.v, [1.0])


def read_long_parquet_table(tmp_path: Path, columns: dict[str, Any]) -> list[Series]:
    base: dict[str, Any] = {"timestamp": [0, 60], "metric": ["x", "x"], "label_job": ["a", "a"], "value": [1.0, 2.0]}
    base.update(columns)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(base), path)
    return read_long_parquet(path, path.name)


def test_parse_query_range_and_parse_long_agree_on_a_tiny_doc() -> None:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x_bucket", "le": "+Inf", "job": "a"}, "values": [[0, "1"], [60.5, "NaN"], [90, "3"]]},
    ]}}
    assert_same(parse_long(long_frame(doc, "columns"), "f"), parse_query_range(doc, "f"))


# --------------------------------------------------------------------------------------------
# Registry


def test_longest_suffix_picks_the_reader() -> None:
    assert reader_for("exports/a/reco.predictions.csv") is read_predictions
    assert reader_for("exports/a/reco.PREDICTIONS.parquet") is read_predictions
    assert reader_for("exports/a/reco.csv") is read_long_csv
    assert reader_for("exports/a/predictions.csv") is read_long_csv
    assert reader_for("exports/a/reco.parquet") is read_long_parquet
    assert reader_for("exports/a/reco_score_bucket.json") is read_query_range
    with pytest.raises(ExportError) as info:
        reader_for("exports/a/reco.tsv")
    assert str(info.value) == ("exports/a/reco.tsv: unsupported export type '.tsv'; expected one of .csv, .json, "
                               ".parquet, .predictions.csv, .predictions.parquet")
    assert set(READERS) == {".json", ".csv", ".parquet", ".predictions.csv", ".predictions.parquet"}
