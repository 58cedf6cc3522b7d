"""``compare_with: stable`` (issue 16): a young version's distribution against the established versions'
over the same window, with a two-sample noise term; fitted on simulated splits of the history's one version.
The rules are evaluated by promtool (2.x and 3.x) and compared with numpy; the fit is checked for what it
promises (seeded, the split's proportions, no decision without both sides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from driftgate import baseline as bl
from driftgate.exports.series import Series
from driftgate.fit import statistics as st
from driftgate.fit.signals import compared, resolve, split_buckets
from driftgate.model import Statistic
from driftgate.spec.load import load_specs
from tests.conftest import Prom, edited_examples, promtool_test_rules


@pytest.fixture(scope="module")
def stable_repo(tmp_path_factory: pytest.TempPathFactory, example_exports: Path) -> Path:
    """The examples, with reco-ranker's score_drift compared with the stable version; fitted and rendered."""
    def edit(text: str) -> str:
        at = text.index("    statistic: psi\n", text.index("  - name: score_drift\n"))
        return text[:at] + "    statistic: psi\n    compare_with: stable\n" + text[at + 19:]

    return edited_examples(tmp_path_factory.mktemp("stable") / "infra", example_exports, edit)


def test_the_baseline_records_the_comparison(stable_repo: Path) -> None:
    base = bl.load(stable_repo / "baselines/reco-ranker.yaml", "b")
    fit = base.signal("score_drift")
    assert fit.compare_with == "stable"
    for w in (fit.fast, fit.slow):
        assert w.noise_coefficient > 0 and w.windows_decided > 0.9 * w.windows_total
    rules = (stable_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    assert "model_stable_le:reco_score_bin:share15m" in rules and "reco_score_count:effective1h" in rules
    # An established version has nothing to be compared with: no drift-without-a-release alert for it.
    alerts = [r for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if "alert" in r]
    drift = {r["labels"]["signal"] for r in alerts if r["alert"] == "DriftgateDrift"}
    assert "score_drift" not in drift and "error_ratio" in drift


def test_young_versions_against_the_stable_one_in_promtool(stable_repo: Path, prom: Prom, tmp_path: Path) -> None:
    """Two canaries next to an established version: the shifted one rolls back, the healthy one does not,
    the stable version has no statistic; the canary's PSI is numpy's two-sample PSI to 1e-9."""
    fit = bl.load(stable_repo / "baselines/reco-ranker.yaml", "b").signal("score_drift")
    rules = (stable_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    q = np.array(fit.probabilities) / sum(fit.probabilities)
    stable = np.round(q * 1500)  # per 5 minutes
    good = np.round(q * 300)
    bad = good.copy()
    bad[int(np.argmax(q))] += 300
    end, young = 312, 290  # 26h of 5m steps; the canaries appeared 110 minutes ago (release.horizon 24h)
    series = []

    def put(version: str, inc: np.ndarray, first: int) -> None:
        cum = np.cumsum(inc)
        for i, le in enumerate(fit.les):
            values = " ".join(["_"] * first + [f"0+{int(cum[i])}x{end - first}"])
            labels = (f'job="reco-ranker",namespace="reco",le="{le}",rollouts_pod_template_hash="{version}",'
                      f'pod="{version}"')
            series.append({"series": f"reco_score_bucket{{{labels}}}", "values": values})

    put("stable", stable, 0)
    put("good", good, young)
    put("bad", bad, young)
    steps = 3  # a 15m window of 5m scrapes holds 3 increments
    psi = {v: float(st.drift(Statistic.PSI, (inc * steps)[None, :], st.smoothed(stable * steps)[None, :])[0])
           for v, inc in (("good", good), ("bad", bad))}
    n_eff = {v: float(inc.sum() * steps * stable.sum() * steps / (inc.sum() * steps + stable.sum() * steps))
             for v, inc in (("good", good), ("bad", bad))}
    assert psi["bad"] - fit.fast.noise_coefficient / n_eff["bad"] > fit.fast.auto.value  # the test means it
    assert psi["good"] - fit.fast.noise_coefficient / n_eff["good"] < fit.fast.manual.value
    t_eval = f"{(end - 1) * 5}m"
    sel = 'model_version:driftgate_score_drift:psi15m{rollouts_pod_template_hash="%s"}'
    tests = [{"expr": f"abs({sel % v} - {psi[v]!r}) < bool 1e-9", "eval_time": t_eval,
              "exp_samples": [{"labels": f'{{model="reco-ranker",rollouts_pod_template_hash="{v}",'
                                         f'signal="score_drift"}}', "value": 1}]} for v in ("good", "bad")]
    tests.append({"expr": sel % "stable", "eval_time": t_eval, "exp_samples": []})
    tests.append({"expr": f'abs(model_version:reco_score_count:effective15m{{rollouts_pod_template_hash="bad"}} - '
                          f'{n_eff["bad"]!r}) < bool 1e-9', "eval_time": t_eval,
                  "exp_samples": [{"labels": '{model="reco-ranker",rollouts_pod_template_hash="bad"}', "value": 1}]})
    alerts = [{"labels": (f'ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",model="reco-ranker",'
                          f'namespace="reco",rollback="auto",rollouts_pod_template_hash="bad",severity="critical",'
                          f'signal="score_drift",team="ranking",window="{w}"}}'), "value": 1} for w in ("fast", "slow")]
    tests.append({"expr": 'ALERTS{alertname="DriftgateAutoRollback",alertstate="firing",signal="score_drift"}',
                  "eval_time": t_eval, "exp_samples": alerts})
    promtool_test_rules(prom.promtool, tmp_path, rules, series, tests)


def test_without_an_established_version_nothing_is_decided(stable_repo: Path, prom: Prom, tmp_path: Path) -> None:
    """A first version alone (no stable one) has no statistic, whatever its distribution."""
    fit = bl.load(stable_repo / "baselines/reco-ranker.yaml", "b").signal("score_drift")
    rules = (stable_repo / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    inc = np.zeros(len(fit.les))
    inc[0] = 2000
    cum = np.cumsum(inc)
    series = [{"series": (f'reco_score_bucket{{job="reco-ranker",namespace="reco",le="{le}",'
                          f'rollouts_pod_template_hash="only",pod="only"}}'), "values": f"0+{int(cum[i])}x40"}
              for i, le in enumerate(fit.les)]
    promtool_test_rules(prom.promtool, tmp_path, rules, series, [
        {"expr": "model_version:driftgate_score_drift:psi15m", "eval_time": "150m", "exp_samples": []},
        # Nothing to compare is not "absent": the version's own shares are there.
        {"expr": 'ALERTS{signal="score_drift"}', "eval_time": "150m", "exp_samples": []},
        {"expr": 'count(model_version_le:reco_score_bin:share15m{rollouts_pod_template_hash="only"})',
         "eval_time": "150m", "exp_samples": [{"labels": "{}", "value": len(fit.les)}]}])


def test_the_simulated_split(stable_repo: Path) -> None:
    (spec,) = load_specs(stable_repo, stable_repo / "specs", only="reco-ranker")
    sig = spec.signal("score_drift")
    from driftgate.exports.load import load_store
    from driftgate.fit.windows import eval_grid

    store = load_store(stable_repo, spec)
    start, end = store.time_range()
    data = resolve(spec, sig, store, start, end)
    step = float(spec.prometheus.evaluation_interval.seconds)
    t = eval_grid(start, end, step, 900.0)[:2000]
    def stable_split(weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, rest = split_buckets(data.buckets, t, 900.0, step, sig, weight)
        value, n, m, _ = compared(sig, None, np.cumsum(c, axis=1), np.cumsum(rest, axis=1))
        return value, n, m

    value, n, m = stable_split(0.15)
    again = stable_split(0.15)
    assert all(np.array_equal(a, b) for a, b in zip((value, n, m), again, strict=True))  # seeded
    share = n[n + m > 0] / (n + m)[n + m > 0]
    assert abs(float(np.median(share)) - 0.15) < 0.01  # the canary's share of the traffic
    other = stable_split(0.5)
    assert abs(float(np.median(other[1] / (other[1] + other[2]))) - 0.5) < 0.01
    # Two samples of one distribution: PSI is about chi2(K-1) (1/n + 1/m); its mean is K-1 over n_eff.
    k = len(data.baseline_q) - 1
    ok = (n > 500) & (m > 500)
    scaled = value[ok] * (n[ok] * m[ok] / (n[ok] + m[ok]))
    assert 0.7 * k < float(np.mean(scaled)) < 1.5 * k


def _counter(version: str, le: str, t0: float, t1: float, per_minute: float) -> Series:
    t = np.arange(t0, t1 + 1, 60.0)
    labels = tuple(sorted((("le", le), ("pod", version), ("rollouts_pod_template_hash", version))))
    return Series("m_bucket", labels, t, per_minute * (t - t0) / 60.0, "x")


def test_a_release_in_the_history_is_a_real_pair(stable_repo: Path) -> None:
    """Where the history holds a young version beside an established one, the fit takes the real pair (as the
    rules compute it); before the release and once the new version is established, the simulated split."""
    import dataclasses

    from driftgate.fit.histogram import collect_buckets
    from driftgate.fit.signals import SignalData, Stable, history, version_pairs
    from driftgate.fit.windows import eval_grid

    (spec,) = load_specs(stable_repo, stable_repo / "specs", only="reco-ranker")
    sig = dataclasses.replace(spec.signal("score_drift"), metric="m", min_events=50)
    end, mid, hour = 6 * 3600.0, 3 * 3600.0, 3600.0
    series = [_counter("old", "1", 0, end, 10), _counter("old", "+Inf", 0, end, 20),
              _counter("new", "1", mid, end, 2), _counter("new", "+Inf", mid, end, 8)]
    buckets = collect_buckets(series, "m")
    t = eval_grid(0.0, end, 60.0, 900.0)
    how = Stable(0.15, hour, "rollouts_pod_template_hash")
    data = SignalData(sig, buckets, np.array([0.5, 0.5]), [], [])
    real = version_pairs(data, t, 900.0, 60.0, how)
    assert real is not None
    at, value, n, m, level = real
    assert level is None  # (a drift statistic has no level of its own)
    # Younger than the 1h horizon, with min_events of its own (after 7 of its 8-a-minute minutes).
    young = (t > mid) & (t - mid < hour) & (n >= 50)
    assert np.array_equal(at, young) and young.sum() == 53  # minutes 7 to 59 after the release
    i = int(np.flatnonzero(t - mid >= 900.0)[0])  # a whole window of the new version
    assert n[i] == pytest.approx(8 * 15) and m[i] == pytest.approx(20 * 15)
    want = st.drift(sig.statistic, np.array([[2 * 15, 6 * 15]], dtype=float), st.smoothed(np.array([[150.0, 150.0]])))
    assert value[i] == pytest.approx(float(want[0]), rel=1e-12)
    h = history(data, 900.0, 0.0, end, 60.0, "x", how)
    assert np.allclose(h.value[young], value[young])
    assert np.allclose(h.events[young], (n * m / (n + m))[young])
    assert np.isfinite(h.value[~young & (t > 900.0)]).mean() > 0.5  # elsewhere: the simulated split decides
    one = dataclasses.replace(data, buckets=collect_buckets(series[:2], "m"))
    assert version_pairs(one, t, 900.0, 60.0, how) is None  # one version
