"""The generated rules, run by ``promtool test rules`` on synthetic series (DESIGN.md §3).

* The drift statistics Prometheus records equal the numpy formulas the thresholds were fitted on.
* A canary whose score mass collapses fires ``DriftgateAutoRollback`` for both drift signals and
  both windows; the stable version (with a pod restart mid-way) stays silent; a drifted version with
  too little traffic decides nothing.
* The freeze record turns on after an automatic rollback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import yaml

from driftgate import baseline as bl
from driftgate.fit import statistics as st
from driftgate.model import Statistic
from driftgate.render.promql import num
from tests.conftest import REPO, Prom

MODEL = "reco-ranker"
V = "rollouts_pod_template_hash"
PER_MIN = 100  # events per minute per healthy version


def _bucket_series(les: tuple[str, ...], shares: np.ndarray, per_min: float, version: str, pod: str,
                   reset_at: int | None = None, minutes: int = 120) -> list[dict[str, str]]:
    cum = np.cumsum(shares) * per_min
    cum[-1] = per_min
    out = []
    for le, inc in zip(les, cum, strict=True):
        inc = round(float(inc))
        values = f"0+{inc}x{minutes}" if reset_at is None else f"0+{inc}x{reset_at - 1} 0+{inc}x{minutes - reset_at}"
        labels = f'job="reco-ranker",namespace="reco",le="{le}",{V}="{version}",pod="{pod}"'
        out.append({"series": f"reco_score_bucket{{{labels}}}", "values": values})
    return out


def _run(tmp_path: Path, rules: Path, test: dict, prom: Prom) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [test]}))
    return subprocess.run([prom.promtool, "test", "rules", str(path)], capture_output=True, text=True,
                          check=False)


def test_drift_rules(repo: Path, tmp_path: Path, prom: Prom) -> None:
    base = bl.load(repo / "baselines" / f"{MODEL}.yaml", MODEL)
    fit = base.signal("score_drift")
    les = fit.les
    q = np.array(fit.probabilities)
    normal = q / q.sum()
    collapsed = np.zeros(len(les))
    collapsed[0] = 1.0
    series = [
        *_bucket_series(les, normal, PER_MIN, "stable", "stable-a", reset_at=70),
        *_bucket_series(les, collapsed, PER_MIN, "canary", "canary-a"),
        *_bucket_series(les, collapsed, 5, "quiet", "quiet-a"),
    ]
    # What numpy says the canary's 15m statistics are: a 15m window of 1m samples counts from the sample
    # at its start to its last one (15 recorded evaluations, on Prometheus 2.x and 3.x alike): 15 increments.
    inc = np.diff(np.concatenate([[0.0], np.round(np.cumsum(collapsed) * PER_MIN)]))
    bins = inc * 15
    expected = {stat: float(st.drift(stat, bins[None, :], q)[0]) for stat in (Statistic.PSI, Statistic.TVD)}
    alerts = []
    for signal in ("score_drift",):  # score_shift compares with last week: see test_enforcement.py
        for window in ("fast", "slow"):
            alerts.append({"labels": (
                f'ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",model="{MODEL}",'
                f'namespace="reco",rollback="auto",{V}="canary",severity="critical",signal="{signal}",'
                f'team="ranking",window="{window}"}}'), "value": 1})
    test = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": f'abs(model_version:driftgate_score_drift:psi15m{{{V}="canary"}} - '
                     f'{num(expected[Statistic.PSI])}) < bool 0.0001',
             "eval_time": "100m",
             "exp_samples": [{"labels": f'{{model="{MODEL}",{V}="canary",signal="score_drift"}}',
                              "value": 1}]},
            {"expr": 'ALERTS{alertname="DriftgateAutoRollback",alertstate="firing"}', "eval_time": "100m",
             "exp_samples": alerts},
            {"expr": f'model_version:reco_score_count:increase15m{{{V}="quiet"}}', "eval_time": "100m",
             "exp_samples": [{"labels": f'model_version:reco_score_count:increase15m{{model="{MODEL}",'
                                        f'{V}="quiet"}}', "value": 75}]},
            {"expr": f'model:driftgate_freeze:active{{model="{MODEL}"}}', "eval_time": "100m",
             "exp_samples": [{"labels": f'model:driftgate_freeze:active{{model="{MODEL}"}}', "value": 1}]},
        ],
    }
    result = _run(tmp_path, repo / "generated/prometheus/rules" / f"{MODEL}.rules.yaml", test, prom)
    assert result.returncode == 0, result.stdout + result.stderr
    # The stable version is within the thresholds (the test above lists every firing alert).
    assert expected[Statistic.PSI] > fit.fast.auto.value


def test_normal_traffic_is_silent(repo: Path, tmp_path: Path, prom: Prom) -> None:
    base = bl.load(repo / "baselines" / f"{MODEL}.yaml", MODEL)
    fit = base.signal("score_drift")
    q = np.array(fit.probabilities)
    test = {
        "interval": "1m",
        "input_series": _bucket_series(fit.les, q / q.sum(), PER_MIN, "stable", "stable-a", reset_at=40),
        "promql_expr_test": [
            {"expr": 'ALERTS{alertname=~"DriftgateAutoRollback|DriftgateManualReview"}', "eval_time": t,
             "exp_samples": []} for t in ("20m", "60m", "110m")
        ] + [{"expr": f'model:driftgate_freeze:active{{model="{MODEL}"}}', "eval_time": "110m",
              "exp_samples": []}],
    }
    result = _run(tmp_path, repo / "generated/prometheus/rules" / f"{MODEL}.rules.yaml", test, prom)
    assert result.returncode == 0, result.stdout + result.stderr


def _phased_series(les: tuple[str, ...], before: np.ndarray, after: np.ndarray, per_min: float, version: str,
                   switch: int, born: int = 0, minutes: int = 260) -> list[dict[str, str]]:
    """Bucket series of one pod: ``before`` shares until minute ``switch``, ``after`` from then on; no
    samples before minute ``born``."""
    a = np.round(np.cumsum(before) * per_min)
    b = np.round(np.cumsum(after) * per_min)
    a[-1] = b[-1] = per_min
    out = []
    for i, le in enumerate(les):
        lead = f"_x{born} " if born else ""
        head = max(switch - born, 0)
        at_switch = int(a[i]) * head + int(b[i])
        values = (f"{lead}0+{int(a[i])}x{head} {at_switch}+{int(b[i])}x{minutes - born - head - 1}" if head
                  else f"{lead}0+{int(b[i])}x{minutes - born}")
        labels = f'job="reco-ranker",namespace="reco",le="{le}",{V}="{version}",pod="{version}-a"'
        out.append({"series": f"reco_score_bucket{{{labels}}}", "values": values})
    return out


def test_release_rolls_back_and_freezes_established_drift_only_pages(tmp_path: Path, prom: Prom) -> None:
    """release.horizon splits an automatic breach: a version younger than the horizon is a release
    (DriftgateAutoRollback, rollback=auto: Argo aborts, rollouts freeze); an older one is drift
    without a release (DriftgateDrift, rollback=drift: paged, no freeze)."""
    import shutil

    from driftgate import pipeline

    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, tmp_path / part)
    spec = tmp_path / "specs" / f"{MODEL}.yaml"
    text = spec.read_text()  # a release horizon > the 2h window + bake (the example has a release: mapping)
    release = "release:\n  horizon: 3h\n  bake: 30m\n"
    spec.write_text(text.replace("\nrelease:\n", "\n" + release, 1) if "\nrelease:\n" in text else text + release)
    files = pipeline.render_files(tmp_path, tmp_path / "specs", MODEL)
    rules = tmp_path / "rules.yaml"
    rules.write_text(files[f"generated/prometheus/rules/{MODEL}.rules.yaml"])
    assert "offset 3h" in rules.read_text()
    base = bl.load(REPO / "baselines" / f"{MODEL}.yaml", MODEL)
    fit = base.signal("score_drift")
    q = np.array(fit.probabilities) / sum(fit.probabilities)
    collapsed = np.zeros(len(q))
    collapsed[0] = 1.0

    def alert(name: str, version: str, rollback: str) -> dict[str, object]:
        return {"labels": (f'ALERTS{{alertname="{name}",alertstate="firing",model="{MODEL}",namespace="reco",'
                           f'rollback="{rollback}",{V}="{version}",severity="critical",signal="score_drift",'
                           f'team="ranking",window="fast"}}'), "value": 1}

    checks: list[dict[str, object]] = [
        # The established version drifts from minute 200: paged as drift, never a rollback, no freeze.
        {"expr": f'ALERTS{{alertname="DriftgateDrift",alertstate="firing",signal="score_drift",window="fast",'
                 f'{V}="old"}}', "eval_time": "250m", "exp_samples": [alert("DriftgateDrift", "old", "drift")]},
        {"expr": f'ALERTS{{alertname="DriftgateAutoRollback",{V}="old"}}', "eval_time": "250m", "exp_samples": []},
    ]
    only_drift = {"interval": "1m", "input_series": _phased_series(fit.les, q, collapsed, PER_MIN, "old", 200),
                  "promql_expr_test": [*checks, {"expr": f'model:driftgate_freeze:active{{model="{MODEL}"}}',
                                                 "eval_time": "250m", "exp_samples": []}]}
    result = _run(tmp_path, rules, only_drift, prom)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same, with a release born at minute 200 that collapses: it rolls back and freezes.
    release = {"interval": "1m",
               "input_series": [*_phased_series(fit.les, q, collapsed, PER_MIN, "old", 200),
                                *_phased_series(fit.les, collapsed, collapsed, PER_MIN, "new", 200, born=200)],
               "promql_expr_test": [
                   *checks,
                   {"expr": f'ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",signal="score_drift",'
                            f'window="fast",{V}="new"}}', "eval_time": "250m",
                    "exp_samples": [alert("DriftgateAutoRollback", "new", "auto")]},
                   {"expr": f'ALERTS{{alertname="DriftgateDrift",{V}="new"}}', "eval_time": "250m",
                    "exp_samples": []},
                   {"expr": f'model:driftgate_freeze:active{{model="{MODEL}"}}', "eval_time": "250m",
                    "exp_samples": [{"labels": f'model:driftgate_freeze:active{{model="{MODEL}"}}', "value": 1}]}]}
    result = _run(tmp_path, rules, release, prom)
    assert result.returncode == 0, result.stdout + result.stderr
