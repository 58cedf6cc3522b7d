"""Exports at the edges (issue 14, second round): the classes behind the corpus cases, across every reader.

* every place a number is read from an export string follows one ASCII grammar: Python's ``float()``
  also reads non-ASCII digits, digit separators and surrounding spaces, Prometheus never writes them;
* ``le`` bucket bounds: the fit and render accept exactly the same spellings (one parser,
  :mod:`driftgate.exports.le`), and every bound driftgate generates is one of them;
* timestamps outside 1970..2200, or in milliseconds / microseconds / nanoseconds, are refused by every
  reader, naming the file and the row or series;
* a partial ``query_range`` response (warnings, a partial flag) is refused, in a file and from a server;
* special files (FIFO, directory, symlink out of the repository, dangling symlink) are refused by every
  reader without blocking;
* sidecar numbers of every type and range, counters that are negative or beyond 2**53.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from driftgate import export as ex
from driftgate.errors import BaselineError, ExportError, FitError
from driftgate.exports import le as lemod
from driftgate.exports import promjson as pj
from driftgate.exports.goformat import format_le
from driftgate.exports.predictions import bin_predictions, read_predictions, read_sidecar
from driftgate.exports.promhttp import PrometheusError
from driftgate.exports.series import Series, checked_series
from driftgate.exports.tabular import read_long_csv, read_long_parquet
from driftgate.fit.histogram import collect_buckets
from driftgate.fit.signals import check_counters
from tests.conftest import REPO
from tests.test_export import Fake, Request, fake, repo, run  # noqa: F401  (fixtures)

T0 = 1_793_232_000
LOOKALIKES = ["١٢", "１２", "1_000", " 12", "12 ", "0x1A", "12\u200b", "+-1", "1e", "."]


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A read that blocks (a FIFO opened for reading) fails the test instead of hanging it."""
    def ring(signum: int, frame: Any) -> None:
        raise TimeoutError("blocked: a read of a special file that never returns")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _doc(values: list[Any], **top: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x_total", "pod": "a"}, "values": values}]}, **top}


def _write(path: Path, doc: Any, compact: bool = True) -> Path:
    path.write_text(json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=1),
                    encoding="utf-8")
    return path


def _error(fn: Callable[[], Any]) -> str:
    with pytest.raises(ExportError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text, text
    return text


# --------------------------------------------------------------------------------------------
# One number grammar


@pytest.mark.parametrize("text", LOOKALIKES)
@pytest.mark.parametrize("compact", [True, False], ids=["fast-path", "json-path"])
def test_query_range_values_refuse_lookalike_numbers(tmp_path: Path, text: str, compact: bool) -> None:
    path = _write(tmp_path / "x.json", _doc([[T0, "1"], [T0 + 60, text]]), compact)
    message = _error(lambda: pj.read_query_range(path, "x.json"))
    assert message.startswith('x.json: data.result[0] (x_total{pod="a"}): sample 2 (at 1793232060): expected a number')


@pytest.mark.parametrize("text", ["12", "0.5", "1e+06", "1E6", ".5", "5.", "-0", "NaN", "nan", "+Inf", "-Inf", "Inf",
                                  "inf", "Infinity", "+infinity"])
def test_query_range_values_accept_what_prometheus_reads(tmp_path: Path, text: str) -> None:
    values = [[T0, "1"], [T0 + 60, text], [T0 + 120, "2"]]
    for compact in (True, False):
        path = _write(tmp_path / "x.json", _doc(values), compact)
        try:
            (s,) = pj.read_query_range(path, "x.json")
        except ExportError as exc:  # only the infinite values are refused, and as such
            assert "inf" in text.lower() and "infinite sample value" in str(exc)
            continue
        expected = float(text)
        assert (s.v.size == 2) if math.isnan(expected) else s.v[1] == expected


@pytest.mark.parametrize("text", LOOKALIKES)
def test_csv_values_and_timestamps_refuse_lookalike_numbers(tmp_path: Path, text: str) -> None:
    (tmp_path / "v.csv").write_text(f"timestamp,metric,label_pod,value\n{T0},x_total,a,1\n{T0 + 60},x_total,a,{text}\n",
                                    encoding="utf-8")
    assert "row 2, column 'value': expected a number" in _error(lambda: read_long_csv(tmp_path / "v.csv", "v.csv"))
    ts = text.replace("12", str(T0))
    (tmp_path / "t.csv").write_text(f"timestamp,metric,label_pod,value\n{T0},x_total,a,1\n{ts},x_total,a,2\n",
                                    encoding="utf-8")
    assert "row 2, column 'timestamp'" in _error(lambda: read_long_csv(tmp_path / "t.csv", "t.csv"))


@pytest.mark.parametrize("text", LOOKALIKES)
def test_prediction_scores_refuse_lookalike_numbers(text: str) -> None:
    frame = pa.table({"timestamp": [float(T0), float(T0 + 1)], "score": ["0.5", text]})
    message = _error(lambda: bin_predictions(frame, metric="s", bounds=[0.5], step=60, labels={}, source="log"))
    assert message.startswith("log: row 2, column 'score': expected a number")


# --------------------------------------------------------------------------------------------
# le: one parser for the fit and render


LE_CANDIDATES = ["0.5", "1", "1.0", ".5", "5.", "2.5e-05", "1e+06", "1E6", "-1", "+Inf", "inf", "Inf", "+inf",
                 "Infinity", "-Inf", "NaN", "nan", " 1", "1 ", "1e3", "0x10", "0x1p-2", "1_0", "١", "１", "1e400",
                 "", "half", "0.5\n"]


def _bucket_series(les: list[str]) -> list[Series]:
    t = np.array([T0, T0 + 60.0])
    return [Series("m_bucket", (("le", le), ("pod", "a")), t, np.array([1.0 + i, 2.0 + i]), "m.json")
            for i, le in enumerate(les)]


@pytest.mark.parametrize("le", LE_CANDIDATES)
def test_fit_and_render_accept_the_same_le(le: str) -> None:
    """What the fit takes into a baseline is exactly what render accepts from one (and vice versa)."""
    les = [le, "+Inf"] if le != "+Inf" else ["1", "+Inf"]
    infinite = lemod.le_problem(le) is None and lemod.parse_le(le) == math.inf
    if infinite:
        les = ["1", le]
    try:
        buckets = collect_buckets(_bucket_series(les), "m")
        fitted: tuple[str, ...] | None = buckets.les
    except ExportError:
        fitted = None
    rendered_ok = lemod.les_problem(les) is None
    assert (fitted is not None) == rendered_ok, (le, fitted)
    if fitted is not None:
        assert list(fitted) == les  # the spelling of the export, unchanged (the rules select it verbatim)


def test_le_grammar() -> None:
    ok = ["0.5", "1", "1.0", ".5", "5.", "2.5e-05", "1e+06", "-1", "+Inf", "7.5e-1"]
    bad = ["inf", "Inf", "+inf", "Infinity", "-Inf", "NaN", " 1", "0x10", "1_0", "١", "1e400", "", "half"]
    assert [le for le in ok if lemod.le_problem(le) is not None] == []
    assert [le for le in bad if lemod.le_problem(le) is None] == []
    assert lemod.les_problem(["0.5", "0.25", "+Inf"]) == (1, "le='0.25': expected bucket bounds in strictly increasing "
                                                             "order, got it after '0.5'")
    assert lemod.les_problem(["0.5", "1"]) == (1, "expected the last bucket to be le='+Inf', got le='1'")


@given(hs.floats(allow_nan=False, allow_infinity=False))
def test_every_generated_le_is_accepted_and_round_trips(x: float) -> None:
    text = format_le(x)
    assert lemod.le_problem(text) is None, text
    assert lemod.parse_le(text) == x


@pytest.mark.parametrize(("les", "where", "phrase"), [
    (("0.05", "half", "+Inf"), 1, "le='half': expected a bucket bound as Prometheus writes it"),
    (("0.05", "١", "+Inf"), 1, "le='<U+0661>': expected a bucket bound"),
    (("0.5", "0.05", "+Inf"), 1, "le='0.05': expected bucket bounds in strictly increasing order"),
    (("0.05", " 0.1", "+Inf"), 1, "without spaces around it"),
])
def test_render_refuses_a_baseline_le_the_fit_would_refuse(les: tuple[str, ...], where: int, phrase: str) -> None:
    from driftgate import baseline as bl
    from driftgate.render.context import check_baseline
    from driftgate.spec.load import load_specs

    spec = next(s for s in load_specs(REPO, REPO / "specs", check_exports=False) if s.name == "fraud-scorer")
    base = bl.load(REPO / "baselines/fraud-scorer.yaml", "baselines/fraud-scorer.yaml", root=REPO)
    i = next(i for i, s in enumerate(base.signals) if s.les)
    check_baseline(spec, base, "baselines/fraud-scorer.yaml")  # as committed: fine
    signals = list(base.signals)
    signals[i] = dataclasses.replace(signals[i], les=(*les[:-1], *signals[i].les[len(les) - 1:]))
    with pytest.raises(BaselineError) as info:
        check_baseline(spec, dataclasses.replace(base, signals=tuple(signals)), "baselines/fraud-scorer.yaml")
    (problem,) = info.value.problems
    assert problem.path == f"signals[{i}].les[{where}]" and phrase in problem.message


# --------------------------------------------------------------------------------------------
# Timestamps: 1970..2200, in seconds


@pytest.mark.parametrize(("scale", "unit"), [(1000, "milliseconds"), (10**6, "microseconds"), (10**9, "nanoseconds")])
def test_every_reader_names_timestamps_in_finer_units(tmp_path: Path, scale: int, unit: str) -> None:
    t = [T0 * scale, (T0 + 60) * scale]
    path = _write(tmp_path / "x.json", _doc([[t[0], "1"], [t[1], "2"]]))
    message = _error(lambda: pj.read_query_range(path, "x.json"))
    assert f"looks like {unit} since the epoch; expected unix seconds" in message
    (tmp_path / "x.csv").write_text(f"timestamp,metric,label_pod,value\n{t[0]},x_total,a,1\n{t[1]},x_total,a,2\n",
                                    encoding="utf-8")
    message = _error(lambda: read_long_csv(tmp_path / "x.csv", "x.csv"))
    assert f"row 1, column 'timestamp': '{t[0]}' looks like {unit}" in message
    pq.write_table(pa.table({"timestamp": pa.array(t, pa.int64()), "metric": ["x_total"] * 2, "label_pod": ["a"] * 2,
                             "value": [1.0, 2.0]}), tmp_path / "x.parquet")
    assert f"looks like {unit}" in _error(lambda: read_long_parquet(tmp_path / "x.parquet", "x.parquet"))
    frame = pa.table({"timestamp": pa.array(t, pa.int64()), "score": [0.1, 0.2]})
    assert f"looks like {unit}" in _error(lambda: bin_predictions(frame, metric="s", bounds=[0.5], step=60, labels={},
                                                                  source="log"))


@pytest.mark.parametrize(("t", "phrase"), [(-1.0, "is before 1970-01-01"), (7_258_118_400.0, "is after 2200-01-01"),
                                           (9.9e10, "is after 2200-01-01")])
def test_series_timestamps_outside_1970_to_2200(t: float, phrase: str) -> None:
    message = _error(lambda: checked_series("x", {}, np.array([t, t + 60]), np.array([1.0, 2.0]), "x.json"))
    assert message.startswith("x.json: series x{}: sample 1: timestamp") and phrase in message


def test_timestamps_at_the_edges_of_the_range_are_read() -> None:
    s = checked_series("x", {}, np.array([0.0, 7_258_118_399.0]), np.array([1.0, 2.0]), "x.json")
    assert s.t.size == 2


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_parquet_timestamp_types_beyond_datetime_are_errors_not_tracebacks(tmp_path: Path, unit: str) -> None:
    big = {"s": 10**12, "ms": 10**15, "us": 10**18, "ns": -(2**62)}[unit]  # (int64 ns cannot pass year 2262)
    for tz in ("UTC", None):
        pq.write_table(pa.table({"timestamp": pa.array([big, big + 1], pa.timestamp(unit, tz=tz)),
                                 "metric": ["x_total"] * 2, "label_pod": ["a"] * 2, "value": [1.0, 2.0]}),
                       tmp_path / "x.parquet")
        message = _error(lambda: read_long_parquet(tmp_path / "x.parquet", "x.parquet"))
        assert message.startswith("x.parquet: row 1, column 'timestamp': ")


def test_rfc3339_offsets_out_of_range(tmp_path: Path) -> None:
    for offset in ("+25:00", "-24:30", "+02:60"):
        (tmp_path / "x.csv").write_text(f"timestamp,metric,label_pod,value\n2026-10-29T00:00:00{offset},x_total,a,1\n",
                                        encoding="utf-8")
        assert f"the UTC offset {offset} is out of range" in _error(lambda: read_long_csv(tmp_path / "x.csv", "x.csv"))


# --------------------------------------------------------------------------------------------
# Partial responses


@pytest.mark.parametrize(("top", "phrase"), [
    ({"warnings": ["store unavailable"]},
     "the response carries warnings, the mark of a partial answer: 'store unavailable'"),
    ({"warnings": "partial"}, "carries warnings"),
    ({"isPartial": True}, "marked partial (isPartial: 'true')"),
])
def test_a_partial_response_is_refused(tmp_path: Path, top: dict[str, Any], phrase: str) -> None:
    for compact in (True, False):
        path = _write(tmp_path / "x.json", _doc([[T0, "1"], [T0 + 60, "2"]], **top), compact)
        assert phrase in _error(lambda p=path: pj.read_query_range(p, "x.json"))


def test_infos_and_empty_warnings_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", _doc([[T0, "1"], [T0 + 60, "2"]], infos=["PromQL info: a note"], warnings=[]))
    assert len(pj.read_query_range(path, "x.json")) == 1


def test_a_warning_is_shown_escaped_and_cut() -> None:
    doc = _doc([[T0, "1"]], warnings=["line one\nline two\u200b" + "x" * 1000])
    message = _error(lambda: pj.parse_query_range(doc, "x.json"))
    assert "'line one line two<U+200B>xxx" in message and "x" * 300 not in message


def test_export_refuses_a_server_answer_with_warnings(repo: Path, fake: Fake) -> None:  # noqa: F811
    def partial(n: int, req: Request) -> tuple[int, dict[str, Any]] | None:
        if n == 2:
            return 200, {"status": "success", "data": {"resultType": "matrix", "result": []},
                         "warnings": ["partial response: store 10.0.0.7:10901 unavailable"]}
        return None

    fake.hook = partial
    with pytest.raises(PrometheusError, match=r"the response carries warnings, the mark of a partial answer: "
                                              r"'partial response: store 10\.0\.0\.7:10901 unavailable'; nothing "
                                              r"was written for it"):
        run(repo, fake)
    assert not any((repo / "exports/toy").glob("*.json"))  # no export file, no manifest


def test_export_accepts_infos(repo: Path, fake: Fake) -> None:  # noqa: F811
    def noted(n: int, req: Request) -> tuple[int, dict[str, Any]] | None:
        fake.hook = None
        reply = fake.answer(req)
        fake.hook = noted
        fake.requests.pop()
        body = dict(reply[1]) if isinstance(reply[1], dict) else {}
        return reply[0], {**body, "infos": ["PromQL info: a note"]}

    fake.hook = noted
    (result,) = run(repo, fake)
    assert len(result.files) == 3


# --------------------------------------------------------------------------------------------
# Special files


def _special(tmp_path: Path, kind: str, name: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir(exist_ok=True)
    path = root / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "outside":
        (tmp_path / "secret.json").write_text('{"secret": "OUTSIDE"}', encoding="utf-8")
        path.symlink_to(tmp_path / "secret.json")
    else:
        path.symlink_to(root / "nowhere")
    return root


KINDS = {"fifo": "a named pipe (FIFO)", "directory": "a directory, not a file",
         "outside": "a symlink that leads outside the repository",
         "dangling": "a symlink to a file that does not exist"}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name", ["x.json", "x.csv", "x.parquet", "x.predictions.csv"])
def test_readers_refuse_special_files(tmp_path: Path, kind: str, name: str) -> None:
    from driftgate.exports.load import reader_for

    root = _special(tmp_path, kind, name)
    if name.endswith(".predictions.csv"):
        (root / (name + ".meta.json")).write_text('{"metric": "s", "buckets": [0.5], "step": 60}', encoding="utf-8")
    message = _error(lambda: reader_for(name)(root / name, name, root))
    assert message.startswith(f"{name}: {KINDS[kind]}") and "OUTSIDE" not in message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sidecars_refuse_special_files(tmp_path: Path, kind: str) -> None:
    root = _special(tmp_path, kind, "x.predictions.csv.meta.json")
    (root / "x.predictions.csv").write_text("timestamp,score\n1793232000,0.5\n", encoding="utf-8")
    message = _error(lambda: read_predictions(root / "x.predictions.csv", "x.predictions.csv", root))
    assert message.startswith(f"x.predictions.csv.meta.json: {KINDS[kind]}") and "OUTSIDE" not in message


def test_a_missing_sidecar_keeps_its_message(tmp_path: Path) -> None:
    message = _error(lambda: read_sidecar(tmp_path / "x.predictions.csv", "x.predictions.csv", tmp_path))
    assert message.startswith("x.predictions.csv: a prediction log needs a sidecar x.predictions.csv.meta.json")


def test_the_input_hash_refuses_a_fifo_sidecar(tmp_path: Path) -> None:
    from driftgate.fit.run import input_hash

    class Spec:  # the two attributes input_hash reads besides fit_inputs
        exports = ("x.predictions.csv",)

    (tmp_path / "x.predictions.csv").write_text("timestamp,score\n", encoding="utf-8")
    os.mkfifo(tmp_path / "x.predictions.csv.meta.json")
    import driftgate.fit.run as run_mod

    original = run_mod.fit_inputs
    run_mod.fit_inputs = lambda spec: {}  # type: ignore[assignment]
    try:
        message = _error(lambda: input_hash(tmp_path, Spec()))  # type: ignore[arg-type]
    finally:
        run_mod.fit_inputs = original
    assert message.startswith("x.predictions.csv.meta.json: a named pipe (FIFO)")


def test_empty_and_oversized_exports_keep_their_messages(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_bytes(b"")
    assert _error(lambda: pj.read_query_range(tmp_path / "e.json", "e.json")) == \
        "e.json: the export is empty; expected a Prometheus query_range JSON response"
    with (tmp_path / "big.json").open("wb") as fh:
        fh.truncate(2_000_000_001)
    assert _error(lambda: pj.read_query_range(tmp_path / "big.json", "big.json")) == \
        "big.json: the export is 2000000001 bytes; the limit is 2000000000"


# --------------------------------------------------------------------------------------------
# Files that are fine


def test_csv_with_a_bom_crlf_and_quoted_headers_reads_like_a_plain_one(tmp_path: Path) -> None:
    plain = f"timestamp,metric,label_pod,value\n{T0},x_total,a,1\n{T0 + 60},x_total,a,2\n"
    (tmp_path / "a.csv").write_text(plain, encoding="utf-8")
    fancy = '\ufeff"timestamp","metric","label_pod","value"\r\n' + "\r\n".join(plain.splitlines()[1:]) + "\r\n"
    (tmp_path / "b.csv").write_bytes(fancy.encode("utf-8"))
    (a,), (b,) = read_long_csv(tmp_path / "a.csv", "a.csv"), read_long_csv(tmp_path / "b.csv", "b.csv")
    assert (a.name, a.labels) == (b.name, b.labels) and np.array_equal(a.t, b.t) and np.array_equal(a.v, b.v)


def test_json_with_a_bom_reads_like_without(tmp_path: Path) -> None:
    doc = _doc([[T0, "1"], [T0 + 60, "2"]])
    (tmp_path / "b.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(doc, separators=(",", ":")).encode())
    (s,) = pj.read_query_range(tmp_path / "b.json", "b.json")
    assert s.v.tolist() == [1.0, 2.0]


# --------------------------------------------------------------------------------------------
# Sidecar numbers, counters


@pytest.mark.parametrize(("key", "value", "phrase"), [
    ("step", 1e300, "step: expected the sample spacing in seconds, from 0.001"),
    ("step", 1e-300, "step: expected the sample spacing in seconds, from 0.001"),
    ("step", -60, "step: expected a positive number of seconds, got -60"),
    ("step", float("nan"), "step: expected a positive number of seconds, got NaN"),
    ("step", True, "step: expected a positive number of seconds, got true"),
    ("step", 10**400, "step: expected a positive number of seconds, got an integer of about 401 digits"),
    ("buckets", [0.5, float("nan")], "buckets[1]: expected a finite number"),
    ("buckets", [0.5, 10**400], "buckets[1]: expected a finite number (+Inf is added), got an integer of about 401"),
    ("buckets", [0.5, True], "buckets[1]: expected a finite number"),
    ("buckets", [i / 10_000 for i in range(1, 1002)], "buckets: expected at most 1000 bounds, got 1001"),
])
def test_sidecar_numbers_are_checked_by_type_and_range(key: str, value: Any, phrase: str) -> None:
    args: dict[str, Any] = {"metric": "s", "bounds": [0.5], "step": 60, "labels": {}}
    args["bounds" if key == "buckets" else key] = value
    frame = pa.table({"timestamp": [float(T0)], "score": [0.1]})
    assert phrase in _error(lambda: bin_predictions(frame, **args, source="log"))


@pytest.mark.parametrize(("values", "phrase"), [
    ([1.0, -5.0], "the counter is -5; expected a raw counter, which is never negative"),
    ([1.0, 1e308], "the counter is 1e+308, above 2^53"),
    ([2.0**53, 2.0**53 + 2], "above 2^53"),
])
def test_counters_are_never_negative_nor_beyond_2_53(values: list[float], phrase: str) -> None:
    s = checked_series("x_total", {"pod": "a"}, np.array([T0, T0 + 60.0]), np.array(values), "x.json")
    assert phrase in _error(lambda: check_counters([s]))
    check_counters([checked_series("x_total", {}, np.array([T0, T0 + 60.0]), np.array([5.0, 1.0]), "x.json")])


def test_number_grammar_of_the_big_integer_paths(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x"},'
                    '"values":[[' + "1" * 5000 + ',"1"]]}]}}', encoding="utf-8")
    assert "a number in the JSON has thousands of digits" in _error(lambda: pj.read_query_range(path, "x.json"))
    _write(path, _doc([[10**400, "1"]]))
    assert "is too large for a number of seconds" in _error(lambda: pj.read_query_range(path, "x.json"))


# --------------------------------------------------------------------------------------------
# driftgate export with a prediction log


def test_export_plan_reads_a_prediction_logs_sidecar(tmp_path: Path) -> None:
    """The plan skips the metric a prediction log provides (it used to look for '<log>.meta.json.meta.json')."""
    from driftgate.spec.load import load_specs
    from tests.test_export import spec_text

    files = ["exports/toy/scores.predictions.csv", "exports/toy/toy_request_errors_total.json",
             "exports/toy/toy_requests_total.json"]
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/toy.yaml").write_text(spec_text(exports=files), encoding="utf-8")
    (tmp_path / "exports/toy").mkdir(parents=True)
    (tmp_path / "exports/toy/scores.predictions.csv").write_text("timestamp,score\n1793232000,0.5\n", encoding="utf-8")
    (tmp_path / "exports/toy/scores.predictions.csv.meta.json").write_text(
        '{"metric": "toy_score", "buckets": [0.5], "step": 60, "labels": {"job": "toy"}}', encoding="utf-8")
    (spec,) = load_specs(tmp_path, tmp_path / "specs", check_exports=False)
    targets, _ = ex.plan(spec, tmp_path)
    assert sorted(t.metric for t in targets) == ["toy_request_errors_total", "toy_requests_total"]


def test_a_fifo_in_the_chunk_cache_is_fetched_again(tmp_path: Path) -> None:
    cache = ex.ChunkCache(tmp_path / ".partial/toy", "http://x")
    chunk = ex.Chunk(0, 60)
    cache.directory.mkdir(parents=True)
    os.mkfifo(cache._path("q", chunk, 60))
    assert cache.get("q", chunk, 60) is None


# --------------------------------------------------------------------------------------------
# Keys given twice, native histograms


def test_a_key_given_twice_is_refused_by_every_json_reader(tmp_path: Path) -> None:
    raw = json.dumps(_doc([[T0, "1"], [T0 + 60, "2"]]), separators=(",", ":"))
    raw = raw.replace('"pod":"a"', '"pod":"a","pod":"b"')
    (tmp_path / "x.json").write_text(raw, encoding="utf-8")
    assert "the key 'pod' appears twice in one JSON object" in _error(lambda: pj.read_query_range(tmp_path / "x.json",
                                                                                                  "x.json"))
    (tmp_path / "x.csv").write_text('timestamp,metric,labels,value\n'
                                    '1793232000,x_total,"{""a"": ""1"", ""a"": ""2""}",1\n', encoding="utf-8")
    assert "label 'a' appears twice" in _error(lambda: read_long_csv(tmp_path / "x.csv", "x.csv"))
    (tmp_path / "x.predictions.csv").write_text("timestamp,score\n1793232000,0.5\n", encoding="utf-8")
    (tmp_path / "x.predictions.csv.meta.json").write_text('{"metric": "s", "buckets": [0.5], "step": 60, "step": 1}',
                                                          encoding="utf-8")
    assert "the key 'step' appears twice" in _error(lambda: read_sidecar(tmp_path / "x.predictions.csv", "x", tmp_path))


def test_a_native_histogram_series_is_named_as_such() -> None:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x"}, "histograms": [[T0, {"count": "1", "sum": "1"}]]}]}}
    assert "a native histogram series ('histograms' instead of 'values')" in _error(
        lambda: pj.parse_query_range(doc, "x.json"))


# --------------------------------------------------------------------------------------------
# RFC 3339 edges; a stray first sample


def test_rfc3339_times_are_never_taken_for_milliseconds(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("timestamp,metric,label_pod,value\n9999-12-31T23:59:59Z,x_total,a,1\n",
                                    encoding="utf-8")
    assert _error(lambda: read_long_csv(tmp_path / "x.csv", "x.csv")) == (
        "x.csv: row 1, column 'timestamp': '9999-12-31T23:59:59Z' is after 2200-01-01; expected a time from 1970 "
        "to 2200")


def test_rfc3339_fractions_beyond_nanoseconds_are_read(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("timestamp,metric,label_pod,value\n"
                                    "2026-10-29T00:00:00.1234567891234Z,x_total,a,1\n"
                                    "2026-10-29T00:01:00Z,x_total,a,2\n", encoding="utf-8")
    (s,) = read_long_csv(tmp_path / "x.csv", "x.csv")
    assert s.t[0] == pytest.approx(T0 + 0.123456789, abs=1e-6)


def test_a_stray_first_sample_is_refused_but_a_gap_inside_is_not() -> None:
    from driftgate.exports.series import SeriesStore
    from driftgate.fit.run import _check_continuous

    t = T0 + 600.0 * np.arange(432)
    ok = checked_series("x_total", {"pod": "a"}, t, np.arange(432.0), "x.json")
    away = checked_series("x_total", {"pod": "b"}, np.concatenate([t[:10], t[-10:]]), np.arange(20.0), "x.json")
    _check_continuous(SeriesStore([ok, away]), float(t[0]), float(t[-1]))  # a version away and back: fine
    stray = checked_series("x_total", {"pod": "c"}, np.concatenate([[0.0], t]), np.arange(433.0), "x.json")
    with pytest.raises(FitError, match=r"the sample at 1970-01-01T00:00:00Z is 20755\.0 days from any other sample"):
        _check_continuous(SeriesStore([ok, stray]), 0.0, float(t[-1]))
