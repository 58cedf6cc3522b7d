"""driftgate.synth: determinism, Prometheus-shaped output the reader accepts, and the modelled effects.

The configs are small (1-2 days, a few pods) so the whole module runs in a few seconds.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from driftgate import synth
from driftgate.exports.promjson import read_query_range
from driftgate.exports.series import FloatArray, Series

START = int(datetime(2026, 10, 20, tzinfo=UTC).timestamp())  # a Tuesday
STEP = 300
HOUR = 3600

SMALL = synth.ServiceModel(
    job="toy-ranker",
    namespace="toy",
    metric_prefix="toy",
    pods=2,
    pod_template_hash="5f7c9b8d6",
    peak_rps=40.0,
    score=synth.ScoreModel(
        bounds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        components=(synth.BetaComponent(0.6, 2.0, 6.0, swing=-0.1), synth.BetaComponent(0.4, 5.0, 3.0, 0.1)),
    ),
    latency=synth.LatencyModel(bounds=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
                               mu=-3.1, sigma=0.6),
    error_prob=0.004,
    impressions_per_request=10.0,
    ctr=0.05,
    restarts=2,
)

Generate = Callable[..., dict[str, list[Series]]]


def repaired(v: np.ndarray) -> np.ndarray:
    """Cumulative values with counter resets undone: ``R[i] = V[i] + sum of V[j-1] at resets j <= i``."""
    if v.size < 2:
        return v.copy()
    drops = np.zeros_like(v)
    d = np.diff(v)
    drops[1:] = np.where(d < 0, v[:-1], 0.0)
    return v + np.cumsum(drops)


@pytest.fixture()
def gen_series(tmp_path: Path) -> Generate:
    """Generate, write, read back with the project's reader: ``{metric: [Series]}``."""
    counter = iter(range(1000))

    def run(model: synth.ServiceModel = SMALL, days: float = 2, seed: int = 7,
            incidents: tuple[synth.Incident, ...] = ()) -> dict[str, list[Series]]:
        out = tmp_path / f"run{next(counter)}"
        paths = synth.write_exports(synth.generate(model, START, days, STEP, seed, incidents), out)
        return {p.stem: read_query_range(p, p.name) for p in paths}

    return run


def _files(tmp: Path, seed: int, model: synth.ServiceModel = SMALL) -> dict[str, bytes]:
    paths = synth.write_exports(synth.generate(model, START, 1, STEP, seed), tmp)
    return {p.name: p.read_bytes() for p in paths}


def _by_pod(series: list[Series]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.label("pod") or "", []).append(s)
    return out


def _bins(series: list[Series], t0: float, t1: float, pod_hash: str | None = None) -> FloatArray:
    """Observations per histogram bin in (t0, t1], summed over pods (resets repaired per series)."""
    les = sorted({s.label("le") or "" for s in series}, key=float)
    cum = np.zeros(len(les))
    for s in series:
        if pod_hash is not None and s.label("rollouts_pod_template_hash") != pod_hash:
            continue
        r = repaired(s.v)
        inside = (s.t > t0) & (s.t <= t1)
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            continue
        before = r[idx[0] - 1] if idx[0] > 0 else 0.0
        cum[les.index(s.label("le") or "")] += r[idx[-1]] - before
    return np.diff(cum, prepend=0.0)


def _tvd(a: FloatArray, b: FloatArray) -> float:
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    first = _files(tmp_path / "a", seed=1)
    again = _files(tmp_path / "b", seed=1)
    other = _files(tmp_path / "c", seed=2)
    assert first == again
    assert set(first) == set(other)
    assert all(first[name] != other[name] for name in first)


def test_files_are_compact_prometheus_json(tmp_path: Path) -> None:
    data = _files(tmp_path, seed=3)
    assert set(data) == {f"{m}.json" for m in SMALL.metric_names()}
    text = data["toy_requests_total.json"].decode()
    assert text.startswith('{"data":{"result":[{"metric":{"__name__":"toy_requests_total","job":"toy-ranker"')
    assert f'"values":[[{START},"' in text  # integer timestamps, values as strings
    assert ": " not in text and ", " not in text and text.endswith("}\n")


def test_reader_parses_output_with_expected_labels(gen_series: Generate) -> None:
    got = gen_series(days=1)
    assert sorted(got) == sorted(SMALL.metric_names())
    pods = {s.label("pod") for s in got["toy_requests_total"]}
    assert len(pods) == SMALL.pods
    prefix = "toy-ranker-5f7c9b8d6-"
    assert all(p is not None and p.startswith(prefix) and len(p) == len(prefix) + 5 for p in pods)
    for series in got.values():
        for s in series:
            assert s.label("job") == "toy-ranker" and s.label("namespace") == "toy"
            assert s.label("rollouts_pod_template_hash") == "5f7c9b8d6"
            assert s.t.size == 24 * 12 + 1 and s.t[0] == START and np.all(np.diff(s.t) == STEP)
    les = sorted({s.label("le") for s in got["toy_score_bucket"]}, key=lambda x: float(x or "nan"))
    assert les == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1", "+Inf"]
    lat_les = sorted({s.label("le") for s in got["toy_request_duration_seconds_bucket"]},
                     key=lambda x: float(x or "nan"))
    assert lat_les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    assert len(got["toy_score_bucket"]) == SMALL.pods * 11


def test_buckets_are_cumulative_and_inf_matches_request_counters(gen_series: Generate) -> None:
    got = gen_series(days=1)
    requests = {s.label("pod"): s.v for s in got["toy_requests_total"]}
    errors = {s.label("pod"): s.v for s in got["toy_request_errors_total"]}
    for metric, expected in (("toy_request_duration_seconds_bucket", requests),
                             ("toy_score_bucket", {p: requests[p] - errors[p] for p in requests})):
        for pod, series in _by_pod(got[metric]).items():
            series.sort(key=lambda s: float(s.label("le") or "nan"))
            matrix = np.stack([s.v for s in series])  # [le, time]
            assert np.all(np.diff(matrix, axis=0) >= 0), f"{metric} {pod}: not cumulative in le"
            assert series[-1].label("le") == "+Inf"
            np.testing.assert_array_equal(matrix[-1], expected[pod])
    assert all(np.all(errors[p] <= requests[p]) for p in requests)


def test_counters_only_drop_at_injected_restarts(gen_series: Generate) -> None:
    got = gen_series(days=2)
    restarts = 0
    for pod, req in _by_pod(got["toy_requests_total"]).items():
        drops = set(req[0].t[1:][np.diff(req[0].v) < 0].tolist())
        restarts += len(drops)
        for series in got.values():
            for s in series:
                if s.label("pod") == pod:
                    at = set(s.t[1:][np.diff(s.v) < 0].tolist())
                    assert at <= drops, f"{s.describe()} drops outside the pod's restarts"
                    if s.name != "toy_request_errors_total" and s.label("le") not in ("0.1", "0.005"):
                        assert at == drops, f"{s.describe()} did not reset with its pod"
    assert restarts == SMALL.restarts


def test_diurnal_seasonality(gen_series: Generate) -> None:
    req = gen_series(days=2)["toy_requests_total"]
    t = req[0].t[1:]
    per_step = np.sum([np.diff(repaired(s.v)) for s in req], axis=0)
    hour = ((t - STEP / 2) % 86400) // HOUR
    by_hour = np.array([per_step[hour == h].mean() for h in range(24)])
    ratio = by_hour.max() / by_hour.min()
    assert 2 < ratio < 4, ratio
    assert int(np.argmax(by_hour)) in range(15, 24)  # SMALL peaks at 19:00 UTC (noise flattens the top)
    peak_rps = by_hour.max() / STEP
    assert 0.8 * SMALL.peak_rps < peak_rps < 1.25 * SMALL.peak_rps


def test_same_hour_on_two_normal_days_is_similar(gen_series: Generate) -> None:
    score = gen_series(days=2)["toy_score_bucket"]
    day1 = _bins(score, START + 10 * HOUR, START + 11 * HOUR)
    day2 = _bins(score, START + 86400 + 10 * HOUR, START + 86400 + 11 * HOUR)
    assert _tvd(day1, day2) < 0.05


def test_score_collapse_shifts_the_distribution(gen_series: Generate) -> None:
    at = START + 30 * HOUR
    inc = synth.Incident(synth.IncidentKind.SCORE_COLLAPSE, start=at, end=at + 4 * HOUR)
    score = gen_series(incidents=(inc,))["toy_score_bucket"]
    before = _bins(score, at - 4 * HOUR, at)
    during = _bins(score, at, at + 4 * HOUR)
    assert _tvd(before, during) > 0.3
    assert during.argmax() == 0  # score_value 0.05 lies in the le="0.1" bucket


def test_feature_default_puts_a_share_in_one_bin(gen_series: Generate) -> None:
    at = START + 30 * HOUR
    inc = synth.Incident(synth.IncidentKind.FEATURE_DEFAULT, start=at, end=at + 4 * HOUR, magnitude=0.15,
                         score_value=0.5)
    score = gen_series(incidents=(inc,))["toy_score_bucket"]
    before = _bins(score, at - 4 * HOUR, at)
    during = _bins(score, at, at + 4 * HOUR)
    share = during / during.sum() - before / before.sum()
    assert int(share.argmax()) == 4  # 0.5 is counted in le="0.5" (le is inclusive)
    assert 0.1 < share[4] < 0.16


def test_incident_leaves_earlier_samples_unchanged(gen_series: Generate) -> None:
    at = START + 30 * HOUR
    plain = gen_series(seed=5)
    regression = synth.Incident(synth.IncidentKind.LATENCY_REGRESSION, at, at + HOUR)
    hit = gen_series(seed=5, incidents=(regression,))
    for metric, series in plain.items():
        for a, b in zip(series, hit[metric], strict=True):
            assert a.labels == b.labels
            before = a.t < at
            np.testing.assert_array_equal(a.v[before], b.v[before])
    lat = "toy_request_duration_seconds_bucket"
    assert _tvd(_bins(plain[lat], at, at + HOUR), _bins(hit[lat], at, at + HOUR)) > 0.1


def test_canary_incident_only_affects_new_pods(gen_series: Generate) -> None:
    at = START + 30 * HOUR
    canary = synth.Canary(weight=0.25, pods=1, pod_template_hash="9b8c7d6f5")
    inc = synth.Incident(synth.IncidentKind.SCORE_SHIFT, at, at + 3 * HOUR, magnitude=0.2, canary=canary)
    got = gen_series(incidents=(inc,))
    req = got["toy_requests_total"]
    new = [s for s in req if s.label("rollouts_pod_template_hash") == "9b8c7d6f5"]
    assert len(new) == 1 and len(req) == SMALL.pods + 1
    assert (new[0].label("pod") or "").startswith("toy-ranker-9b8c7d6f5-")
    assert new[0].t[0] == at + STEP and new[0].t[-1] == at + 3 * HOUR
    stable_rate = sum(float(np.diff(repaired(s.v[(s.t > at) & (s.t <= at + 3 * HOUR)])).sum())
                      for s in req if s not in new)
    canary_rate = float(new[0].v[-1])
    assert 0.18 < canary_rate / (canary_rate + stable_rate) < 0.32
    score = got["toy_score_bucket"]
    stable_before = _bins(score, at - 3 * HOUR, at, "5f7c9b8d6")
    stable_during = _bins(score, at, at + 3 * HOUR, "5f7c9b8d6")
    canary_during = _bins(score, at, at + 3 * HOUR, "9b8c7d6f5")
    assert _tvd(stable_before, stable_during) < 0.05
    assert _tvd(stable_during, canary_during) > 0.25


def test_error_and_ctr_incidents(gen_series: Generate) -> None:
    at = START + 30 * HOUR
    got = gen_series(incidents=(synth.Incident(synth.IncidentKind.ERROR_REGRESSION, at, at + 2 * HOUR, 5.0),
                                synth.Incident(synth.IncidentKind.CTR_DROP, at, at + 2 * HOUR, 0.5)))

    def ratio(num: str, den: str, t0: float, t1: float) -> float:
        total = [sum(float(repaired(s.v)[(s.t > t0 - STEP) & (s.t <= t1)][[0, -1]] @ [-1, 1]) for s in got[m])
                 for m in (num, den)]
        return total[0] / total[1]

    spans = ((at - 2 * HOUR, at), (at, at + 2 * HOUR))
    errors = [ratio("toy_request_errors_total", "toy_requests_total", t0, t1) for t0, t1 in spans]
    ctr = [ratio("toy_clicks_total", "toy_impressions_total", t0, t1) for t0, t1 in spans]
    assert errors[1] > 3 * errors[0]
    assert 0.4 < ctr[1] / ctr[0] < 0.65
    assert 0.04 < ctr[0] < 0.065


def test_prom_float_matches_go_formatting() -> None:
    cases = {0.1: "0.1", 1.0: "1", 2.5: "2.5", 0.005: "0.005", 5.0: "5", 100000.0: "100000", 1e6: "1e+06",
             1.5e7: "1.5e+07", 1e-5: "1e-05", 0.0001: "0.0001", float("inf"): "+Inf", 0.3: "0.3", 60.0: "60"}
    assert {x: synth.prom_float(x) for x in cases} == cases


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of step_seconds"):
        synth.generate(SMALL, START, 1, 7, seed=1)
    with pytest.raises(ValueError, match="ctr needs impressions"):
        dataclasses.replace(SMALL, impressions_per_request=None)
    with pytest.raises(ValueError, match="strictly increasing"):
        synth.ScoreModel(bounds=(0.5, 0.2), components=(synth.BetaComponent(1, 1, 1),))
    with pytest.raises(ValueError, match="already in use"):
        clash = synth.Canary(pod_template_hash=SMALL.pod_template_hash)
        synth.generate(SMALL, START, 1, STEP, 1, (synth.Incident(synth.IncidentKind.NONE, START, START + HOUR,
                                                                 canary=clash),))


def _script() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "make_example_exports.py"
    spec = importlib.util.spec_from_file_location("make_example_exports", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_script_writes_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    assert [(m.job, days) for m, days, _ in script.EXAMPLES] == [("reco-ranker", 28), ("fraud-scorer", 10)]
    assert len({seed for _, _, seed in script.EXAMPLES}) == 2
    # Same models, one day each, to keep the test fast.
    monkeypatch.setattr(script, "EXAMPLES", tuple((m, 1, seed) for m, _, seed in script.EXAMPLES))
    out = tmp_path / "exports"
    assert script.main(["--out", str(out)]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert files == [
        "fraud-scorer/fraud_request_duration_seconds_bucket.json",
        "fraud-scorer/fraud_request_errors_total.json",
        "fraud-scorer/fraud_requests_total.json", "fraud-scorer/fraud_score_bucket.json",
        "reco-ranker/reco_clicks_total.json", "reco-ranker/reco_impressions_total.json",
        "reco-ranker/reco_request_duration_seconds_bucket.json", "reco-ranker/reco_request_errors_total.json",
        "reco-ranker/reco_requests_total.json", "reco-ranker/reco_score_bucket.json",
    ]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left behind
    assert len(capsys.readouterr().out.splitlines()) == len(files)
    last = read_query_range(out / "reco-ranker" / "reco_requests_total.json", "x")[0].t[-1]
    assert last == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    assert script.main(["--out", str(out), "--check"]) == 0
    (out / "fraud-scorer" / "fraud_requests_total.json").write_text("{}")
    assert script.main(["--out", str(out), "--check"]) == 1
