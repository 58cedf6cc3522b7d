"""``compare_with: stable`` for ratios and quantiles (issue 16): a young version's error ratio, KPI ratio or
latency quantile minus the established versions' pooled value over the same window, with a two-sample noise
term ``b / sqrt(n·m/(n+m))``. The generated rules are evaluated by promtool (2.x and 3.x) and compared with
numpy; the fit's simulated split is checked for what it promises (proportions, the numerator following its
requests, seeded), and the spec and baseline refuse what the comparison cannot mean."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from driftgate import baseline as bl
from driftgate.errors import BaselineError, SpecError
from driftgate.exports.series import Series
from driftgate.fit import statistics as st
from driftgate.fit.signals import SignalData, Stable, history, split_ratio, version_pairs
from driftgate.fit.windows import eval_grid
from driftgate.spec.load import load_specs
from tests.conftest import Prom, edited_examples, promtool_test_rules

LABELS = 'job="reco-ranker",namespace="reco"'


@pytest.fixture(scope="module")
def levels_repo(tmp_path_factory: pytest.TempPathFactory, example_exports: Path) -> Path:
    """The examples, with reco-ranker's latency, error ratio and CTR compared with the stable version."""
    def edit(text: str) -> str:
        for anchor in ("    quantile: 0.99\n", "    denominator: reco_requests_total\n",
                       "    denominator: reco_impressions_total\n"):
            assert text.count(anchor) == 1
            text = text.replace(anchor, anchor + "    compare_with: stable\n")
        return text

    return edited_examples(tmp_path_factory.mktemp("stable-levels") / "infra", example_exports, edit)


def _fit(root: Path, name: str) -> bl.SignalFit:
    return bl.load(root / "baselines/reco-ranker.yaml", "b").signal(name)


def test_the_baseline_records_the_stable_level(levels_repo: Path) -> None:
    for name in ("latency_p99", "error_ratio", "ctr"):
        fit = _fit(levels_repo, name)
        assert fit.compare_with == "stable"
        for w in (fit.fast, fit.slow):
            assert w.stable_p50 is not None and w.stable_p50 > 0
            assert w.noise_coefficient > 0 and w.windows_decided > 0.9 * w.windows_total
            # A difference of two samples of one model: centred on zero, the threshold beyond it.
            assert abs(w.statistic_p50) < 0.1 * w.stable_p50
    err = _fit(levels_repo, "error_ratio").fast
    # The noise term is the ratio's, at the stable version's median ratio (not at the difference's ~0).
    assert err.stable_p50 == pytest.approx(0.0025, rel=0.3)
    assert err.noise_coefficient > 0.1
    assert _fit(levels_repo, "score_drift").fast.stable_p50 is None
    rules = (levels_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    for name in ("model_stable:driftgate_error_ratio:ratio15m",
                 "model_version:driftgate_error_ratio:ratio_minus_stable1h",
                 "model_stable:driftgate_latency_p99:quantile15m", "model_version:reco_requests_total:effective15m",
                 "model_version:driftgate_ctr:ratio_minus_stable_manual_excess2h"):
        assert f'record: "{name}"' in rules, name
    alerts = [r for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if "alert" in r]
    drift = {r["labels"]["signal"] for r in alerts if r["alert"] == "DriftgateDrift"}
    assert not drift & {"latency_p99", "error_ratio"}  # an established version has nothing to compare with
    plan = (levels_repo / "generated/plans/reco-ranker.md").read_text()
    assert "the canary's ratio > the stable version's + " in plan and " percentage points at the median" in plan
    assert "the canary's quantile q0.99 > the stable version's + " in plan


def _run(prom: Prom, tmp_path: Path, rules: str, series: list[dict[str, str]], tests: list[dict[str, object]]) -> None:
    promtool_test_rules(prom.promtool, tmp_path, rules, series, tests)


END, YOUNG = 312, 290  # 26h of 5m steps; the canaries appeared 110 minutes ago (release.horizon 24h)
STEPS = 3  # a 15m window of 5m scrapes holds 3 increments


def _counter(name: str, version: str, per_step: float, first: int, extra: str = "") -> dict[str, str]:
    values = " ".join(["_"] * first + [f"0+{per_step:g}x{END - first}"])
    labels = f'{LABELS},{extra}rollouts_pod_template_hash="{version}",pod="{version}"'
    return {"series": f"{name}{{{labels}}}", "values": values}


def _alerts(alert: str, signal: str, version: str, windows: tuple[str, ...], rollback: str, severity: str,
            team: str = "ranking") -> list[dict[str, object]]:
    return [{"labels": (f'ALERTS{{alertname="{alert}",alertstate="firing",model="reco-ranker",namespace="reco",'
                        f'rollback="{rollback}",rollouts_pod_template_hash="{version}",severity="{severity}",'
                        f'signal="{signal}",team="{team}",window="{w}"}}'), "value": 1} for w in windows]


def _differences(signal: str, stat: str, diff: dict[str, float], t_eval: str,
                 tolerance: float) -> list[dict[str, object]]:
    """promtool checks: each canary's recorded difference from the stable version equals ``diff`` (numpy), and
    the stable version has none (nothing to compare it with)."""
    sel = f'model_version:driftgate_{signal}:{stat}_minus_stable15m{{rollouts_pod_template_hash="%s"}}'
    out: list[dict[str, object]] = [
        {"expr": f"abs({sel % v} - {diff[v]!r}) < bool {tolerance:g}", "eval_time": t_eval,
         "exp_samples": [{"labels": f'{{model="reco-ranker",rollouts_pod_template_hash="{v}",signal="{signal}"}}',
                          "value": 1}]} for v in ("good", "bad")]
    out.append({"expr": sel % "stable", "eval_time": t_eval, "exp_samples": []})
    return out


def test_a_canary_with_more_errors_than_stable_rolls_back(levels_repo: Path, prom: Prom, tmp_path: Path) -> None:
    """Beside an established version at 0.25% errors, a canary at 2.5% rolls back on both windows, one at the
    stable version's own rate does not; the statistic is numpy's difference of ratios to 1e-12 and the stable
    version has none; the effective count is n·m/(n+m)."""
    fit = _fit(levels_repo, "error_ratio")
    rules = (levels_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    stable_req, canary_req = 6000.0, 1200.0  # per 5 minutes
    rates = {"stable": 0.0025, "good": 0.0025, "bad": 0.025}
    series = []
    for v, req in (("stable", stable_req), ("good", canary_req), ("bad", canary_req)):
        first = 0 if v == "stable" else YOUNG
        series.append(_counter("reco_requests_total", v, req, first))
        series.append(_counter("reco_request_errors_total", v, req * rates[v], first))
    n, m = canary_req * STEPS, stable_req * STEPS
    diff = {v: rates[v] - rates["stable"] for v in ("good", "bad")}
    eff = n * m / (n + m)
    w = fit.fast
    assert diff["bad"] - w.noise_coefficient / eff**0.5 > w.auto.value  # the test means it
    assert diff["good"] - w.noise_of("manual") / eff**0.5 < w.manual.value
    t_eval = f"{(END - 1) * 5}m"
    tests = _differences("error_ratio", "ratio", diff, t_eval, 1e-12)
    tests.append({"expr": 'model_stable:driftgate_error_ratio:ratio15m', "eval_time": t_eval,
                  "exp_samples": [{"labels": 'model_stable:driftgate_error_ratio:ratio15m{model="reco-ranker",'
                                             'signal="error_ratio"}', "value": rates["stable"]}]})
    tests.append({"expr": f'abs(model_version:reco_requests_total:effective15m{{rollouts_pod_template_hash="bad"}} - '
                          f'{eff!r}) < bool 1e-9', "eval_time": t_eval,
                  "exp_samples": [{"labels": '{model="reco-ranker",rollouts_pod_template_hash="bad"}', "value": 1}]})
    tests.append({"expr": 'ALERTS{alertname="DriftgateAutoRollback",alertstate="firing",signal="error_ratio"}',
                  "eval_time": t_eval,
                  "exp_samples": _alerts("DriftgateAutoRollback", "error_ratio", "bad", ("fast", "slow"), "auto",
                                         "critical")})
    tests.append({"expr": 'ALERTS{signal="error_ratio",rollouts_pod_template_hash=~"good|stable"}',
                  "eval_time": t_eval, "exp_samples": []})
    _run(prom, tmp_path, rules, series, tests)


def test_a_slower_canary_rolls_back_on_its_quantile(levels_repo: Path, prom: Prom, tmp_path: Path) -> None:
    """The canary's p99 minus the stable version's: a canary whose slowest 2% moved to the last finite bucket
    rolls back, a canary like stable does not; the difference is numpy's histogram_quantile difference."""
    fit = _fit(levels_repo, "latency_p99")
    rules = (levels_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    bounds = np.array([float(le) for le in fit.les[:-1]] + [np.inf])
    q = np.array([0.0] * len(fit.les))
    # The stable version's shape: most requests in the middle buckets, 1.5% in the one below the largest bound.
    mid = len(fit.les) // 2
    q[mid - 1], q[mid], q[-3] = 0.585, 0.4, 0.015
    slow = q.copy()
    slow[mid] -= 0.02
    slow[-2] += 0.02
    series = []
    incs = {"stable": np.round(q * 6000), "good": np.round(q * 1500), "bad": np.round(slow * 1500)}
    for v, inc in incs.items():
        cum = np.cumsum(inc)
        for i, le in enumerate(fit.les):
            series.append(_counter("reco_request_duration_seconds_bucket", v, float(cum[i]),
                                   0 if v == "stable" else YOUNG, f'le="{le}",'))
    value = {v: float(st.histogram_quantile(0.99, (np.cumsum(inc) * STEPS)[None, :], bounds)[0])
             for v, inc in incs.items()}
    diff = {v: value[v] - value["stable"] for v in ("good", "bad")}
    n, m = incs["bad"].sum() * STEPS, incs["stable"].sum() * STEPS
    eff = n * m / (n + m)
    assert diff["bad"] - fit.fast.noise_coefficient / eff**0.5 > fit.fast.auto.value
    assert diff["good"] - fit.fast.noise_of("manual") / eff**0.5 < fit.fast.manual.value
    t_eval = f"{(END - 1) * 5}m"
    tests = _differences("latency_p99", "quantile", diff, t_eval, 1e-9)
    tests.append({"expr": 'ALERTS{alertname="DriftgateAutoRollback",alertstate="firing",signal="latency_p99",'
                          'window="fast"}', "eval_time": t_eval,
                  "exp_samples": _alerts("DriftgateAutoRollback", "latency_p99", "bad", ("fast",), "auto", "critical")})
    tests.append({"expr": 'ALERTS{signal="latency_p99",rollouts_pod_template_hash=~"good|stable"}',
                  "eval_time": t_eval, "exp_samples": []})
    _run(prom, tmp_path, rules, series, tests)


def test_a_kpi_drop_against_stable_pages_the_authority(levels_repo: Path, prom: Prom, tmp_path: Path) -> None:
    """direction: below (CTR, a manual-tier signal): a canary whose CTR halved pages for review; one at the
    stable version's CTR does not; a version alone (nothing established) decides nothing."""
    fit = _fit(levels_repo, "ctr")
    rules = (levels_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    ctr = {"stable": 0.05, "good": 0.05, "bad": 0.025}
    series = []
    for v, imp in (("stable", 40000.0), ("good", 8000.0), ("bad", 8000.0)):
        first = 0 if v == "stable" else YOUNG
        series.append(_counter("reco_impressions_total", v, imp, first))
        series.append(_counter("reco_clicks_total", v, imp * ctr[v], first))
    t_eval = f"{(END - 1) * 5}m"
    tests: list[dict[str, object]] = [
        {"expr": 'ALERTS{alertname="DriftgateManualReview",alertstate="firing",signal="ctr"}', "eval_time": t_eval,
         "exp_samples": _alerts("DriftgateManualReview", "ctr", "bad", ("fast", "slow"), "manual", "warning")},
        {"expr": 'ALERTS{signal="ctr",rollouts_pod_template_hash=~"good|stable"}', "eval_time": t_eval,
         "exp_samples": []}]
    assert fit.fast.manual.value < 0  # below the stable version's CTR
    _run(prom, tmp_path, rules, series, tests)
    alone = [_counter("reco_impressions_total", "only", 40000.0, 0), _counter("reco_clicks_total", "only", 100.0, 0)]
    _run(prom, tmp_path, rules, alone, [
        {"expr": "model_version:driftgate_ctr:ratio_minus_stable30m", "eval_time": t_eval, "exp_samples": []},
        {"expr": 'ALERTS{signal="ctr"}', "eval_time": t_eval, "exp_samples": []}])


def _counter_series(name: str, version: str, t0: float, t1: float, per_minute: float) -> Series:
    t = np.arange(t0, t1 + 1, 60.0)
    labels = tuple(sorted((("pod", version), ("rollouts_pod_template_hash", version))))
    return Series(name, labels, t, per_minute * (t - t0) / 60.0, "x")


def test_the_simulated_split_of_a_ratio(levels_repo: Path) -> None:
    """Requests split binomially at the canary weight, errors follow their requests: the canary's share of the
    traffic is the weight, the difference of the two ratios is centred on zero with the two-sample binomial
    spread sqrt(r (1 - r) / n_eff), and the split is seeded."""
    (spec,) = load_specs(levels_repo, levels_repo / "specs", only="reco-ranker")
    sig = spec.signal("error_ratio")
    end = 3 * 86400.0
    num = [_counter_series("e", "a", 0.0, end, 10.0)]
    den = [_counter_series("r", "a", 0.0, end, 4000.0)]
    t = eval_grid(0.0, end, 60.0, 900.0)
    nc, dc, ns, ds = split_ratio(num, den, t, 900.0, 60.0, sig, 0.15)
    again = split_ratio(num, den, t, 900.0, 60.0, sig, 0.15)
    assert all(np.array_equal(a, b) for a, b in zip((nc, dc, ns, ds), again, strict=True))
    assert np.allclose(nc + ns, 150.0) and np.allclose(dc + ds, 60000.0)  # nothing lost or made up
    assert abs(float(np.median(dc / (dc + ds))) - 0.15) < 0.002
    r = 10.0 / 4000.0
    z = (nc / dc - ns / ds) / np.sqrt(r * (1 - r) * (1 / dc + 1 / ds))
    # Non-overlapping windows are independent: their z-scores are standard normal.
    zs = z[::15]
    assert abs(float(np.mean(zs))) < 0.15 and 0.85 < float(np.std(zs)) < 1.15
    # More numerator than denominator events (no subset): the numerator is split on its own, nothing fails.
    odd = split_ratio([_counter_series("e", "a", 0.0, end, 50.0)], [_counter_series("r", "a", 0.0, end, 20.0)],
                      t, 900.0, 60.0, sig, 0.15)
    assert np.allclose(odd[0] + odd[2], 750.0) and np.all(odd[0] >= 0)


def test_a_release_of_a_ratio_signal_is_a_real_pair(levels_repo: Path) -> None:
    (spec,) = load_specs(levels_repo, levels_repo / "specs", only="reco-ranker")
    sig = dataclasses.replace(spec.signal("error_ratio"), metric="e", denominator="r", min_events=50)
    end, mid, hour = 6 * 3600.0, 3 * 3600.0, 3600.0
    num = [_counter_series("e", "old", 0, end, 1.0), _counter_series("e", "new", mid, end, 2.0)]
    den = [_counter_series("r", "old", 0, end, 100.0), _counter_series("r", "new", mid, end, 20.0)]
    data = SignalData(sig, None, np.zeros(0), num, den)
    t = eval_grid(0.0, end, 60.0, 900.0)
    how = Stable(0.15, hour, "rollouts_pod_template_hash")
    real = version_pairs(data, t, 900.0, 60.0, how)
    assert real is not None
    at, value, n, m, level = real
    i = int(np.flatnonzero(t - mid >= 900.0)[0])  # a whole window of the new version
    assert at[i] and n[i] == pytest.approx(300.0) and m[i] == pytest.approx(1500.0)
    assert value[i] == pytest.approx(0.1 - 0.01) and level is not None and level[i] == pytest.approx(0.01)
    h = history(data, 900.0, 0.0, end, 60.0, "x", how)
    assert h.level is not None and h.value[i] == pytest.approx(0.09)
    assert h.events[i] == pytest.approx(300 * 1500 / 1800)
    assert version_pairs(dataclasses.replace(data, numerator=num[:1], denominator=den[:1]), t, 900.0, 60.0,
                         how) is None


def test_the_spec_refuses_last_week_for_a_ratio(levels_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "infra"
    shutil.copytree(levels_repo / "specs", root / "specs")
    spec = root / "specs/reco-ranker.yaml"
    text = spec.read_text().replace("    denominator: reco_requests_total\n    compare_with: stable\n",
                                    "    denominator: reco_requests_total\n    compare_with: last_week\n")
    spec.write_text(text)
    with pytest.raises(SpecError) as info:
        load_specs(root, root / "specs", only="reco-ranker", check_exports=False)
    shown = str(info.value)
    assert "compare_with" in shown and "'last_week' compares distributions only" in shown
    assert "reco-ranker.yaml:" in shown


def test_a_pinned_difference_may_be_negative(levels_repo: Path, tmp_path: Path) -> None:
    """Pinned against the stable version, a KPI's threshold is a (negative) difference; against the baseline it
    is a ratio, never negative."""
    root = tmp_path / "infra"
    shutil.copytree(levels_repo / "specs", root / "specs")
    spec = root / "specs/reco-ranker.yaml"
    text = spec.read_text()
    anchor = "    denominator: reco_impressions_total\n    compare_with: stable\n"
    spec.write_text(text.replace(anchor, anchor + "    threshold: {manual: -0.01}\n"))
    (loaded,) = load_specs(root, root / "specs", only="reco-ranker", check_exports=False)
    assert loaded.signal("ctr").pinned.manual == -0.01
    spec.write_text(text.replace(anchor, "    denominator: reco_impressions_total\n    threshold: {manual: -0.01}\n"))
    with pytest.raises(SpecError, match="threshold"):
        load_specs(root, root / "specs", only="reco-ranker", check_exports=False)


def test_the_baseline_check_knows_the_stable_level(levels_repo: Path, tmp_path: Path) -> None:
    path = levels_repo / "baselines/reco-ranker.yaml"
    text = path.read_text()
    doc = yaml.safe_load(text)
    err = next(s for s in doc["signals"] if s["name"] == "error_ratio")
    drift = next(s for s in doc["signals"] if s["name"] == "score_drift")
    level = err["fast"]["stable_p50"]
    assert f"stable_p50: {level:g}" in text or "stable_p50:" in text
    cases = {"null on a stable ratio": ("error_ratio", None, "expected the stable version's median ratio"),
             "set on a baseline signal": ("score_drift", 0.01, "expected null")}
    for what, (name, value, message) in cases.items():
        bad = yaml.safe_load(text)
        target = next(s for s in bad["signals"] if s["name"] == name)
        target["fast"]["stable_p50"] = value
        out = tmp_path / f"{name}.yaml"
        out.write_text(yaml.safe_dump(bad, sort_keys=True))
        with pytest.raises(BaselineError) as info:
            bl.load(out, f"baselines/{name}.yaml")
        assert message in str(info.value) and "stable_p50" in str(info.value), what
    # The noise term is checked at the stable level: a coefficient off by 10% is refused.
    bad = yaml.safe_load(text)
    target = next(s for s in bad["signals"] if s["name"] == "error_ratio")
    target["fast"]["noise_coefficient"] *= 1.1
    out = tmp_path / "noise.yaml"
    out.write_text(yaml.safe_dump(bad, sort_keys=True))
    with pytest.raises(BaselineError, match="stable_p50"):
        bl.load(out, "baselines/noise.yaml")
    assert drift["fast"]["stable_p50"] is None
