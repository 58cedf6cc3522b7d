"""Enforcement that cannot silently fail: shipped promtool tests, sabotage, the freeze gate, and
broken templates caught before anything is written."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from driftgate import pipeline
from driftgate.errors import RenderError
from driftgate.render import targets
from tests.conftest import REPO, Prom

MODELS = ("fraud-scorer", "reco-ranker")


def _promtool_test(path: Path, prom: Prom) -> subprocess.CompletedProcess[str]:
    return subprocess.run([prom.promtool, "test", "rules", str(path)], capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("model", MODELS)
def test_shipped_rule_tests_pass(model: str, prom: Prom) -> None:
    path = REPO / "generated/prometheus/tests" / f"{model}.test.yaml"
    result = _promtool_test(path, prom)
    assert result.returncode == 0, result.stdout + result.stderr
    text = path.read_text()
    for version in ("stable", "collapse", "quiet", "ambiguous"):
        assert f'rollouts_pod_template_hash="{version}"' in text, version
    assert "< bool 1e-09" in text  # the statistic equals numpy's to 1e-9


def _sabotaged(tmp_path: Path, model: str, old: str, new: str, count: int = -1) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (REPO / "generated/prometheus/rules" / f"{model}.rules.yaml").read_text()
    assert old in rules
    (tmp_path / "rules" / f"{model}.rules.yaml").write_text(rules.replace(old, new, count))
    shutil.copy(REPO / "generated/prometheus/tests" / f"{model}.test.yaml", tmp_path / "tests")
    return tmp_path / "tests" / f"{model}.test.yaml"


SABOTAGE = [
    ("smoothing changed", "reco-ranker", ", 0) + 0.5", ", 0) + 0.7"),
    ("event guard dropped", "reco-ranker", ">= 500)", ">= 0)"),
    ("automatic threshold 10x too high", "reco-ranker",
     "psi_excess15m{model=\\\"reco-ranker\\\",signal=\\\"score_drift\\\"} > 0.",
     "psi_excess15m{model=\\\"reco-ranker\\\",signal=\\\"score_drift\\\"} > 10 * 0."),
    ("fast window over the wrong range", "reco-ranker", 'step_increase1m{model=\\"reco-ranker\\"}[14m59s999ms]',
     'step_increase1m{model=\\"reco-ranker\\"}[19m59s999ms]'),
    ("step counted over two evaluations", "reco-ranker", 'namespace=\\"reco\\"} offset 1m',
     'namespace=\\"reco\\"} offset 2m'),
    ("steps counted as the raw counter", "reco-ranker", 'namespace=\\"reco\\"} - reco_score_bucket',
     'namespace=\\"reco\\"} + 0 * reco_score_bucket'),
    ("manual alert lost", "fraud-scorer", "alert: \"DriftgateManualReview\"", "alert: \"DriftgateManualReviewX\""),
    ("young-version guard dropped", "reco-ranker", "), 5))", "), 1))"),
]


@pytest.mark.parametrize(("model", "old", "new"), [c[1:] for c in SABOTAGE], ids=[c[0] for c in SABOTAGE])
def test_shipped_rule_tests_catch_a_broken_rule(tmp_path: Path, model: str, old: str, new: str, prom: Prom) -> None:
    result = _promtool_test(_sabotaged(tmp_path, model, old, new), prom)
    assert result.returncode != 0, result.stdout


# --- the freeze gate -------------------------------------------------------------------------------

def _render_variant(tmp_path: Path, edit: Callable[[str], str]) -> dict[str, str]:
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, tmp_path / part)
    spec = tmp_path / "specs/reco-ranker.yaml"
    spec.write_text(edit(spec.read_text()))
    return pipeline.render_files(tmp_path, tmp_path / "specs", "reco-ranker")


def _freeze_test(rules: str, tmp_path: Path, prom: Prom,
                 exp: list[tuple[str, list[Any]]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "r.yaml").write_text(rules)
    gate = 'max(model:driftgate_freeze:active{model="reco-ranker"}) or on () vector(0)'
    doc = {
        "rule_files": ["r.yaml"], "evaluation_interval": "1m",
        "tests": [{"interval": "10m", "input_series": [
            # The Argo Rollouts controller reports the aborted rollout from minute 20 to minute 60, scraped
            # by a stock ServiceMonitor: the target's namespace wins, the Rollout's is exported_namespace.
            {"series": 'rollout_info{name="reco-ranker",namespace="argo-rollouts",exported_namespace="reco",'
                       'phase="Degraded"}',
             "values": "_ _ 1 1 1 1 1 _ _ _ _ _"},
            # Another namespace's Rollout of the same name never freezes this one.
            {"series": 'rollout_info{name="reco-ranker",namespace="argo-rollouts",exported_namespace="other",'
                       'phase="Degraded"}',
             "values": "1 1 1 1 1 1 1 1 1 1 1 1"}],
            "promql_expr_test": [{"expr": gate, "eval_time": t, "exp_samples": s} for t, s in exp]}],
    }
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    return _promtool_test(tmp_path / "t.yaml", prom)


def test_freeze_gate_fails_inside_the_window_and_opens_after(tmp_path: Path, prom: Prom) -> None:
    files = _render_variant(tmp_path, lambda s: s.replace("window: 24h", "window: 3h"))
    rules = files["generated/prometheus/rules/reco-ranker.rules.yaml"]
    result = _freeze_test(rules, tmp_path, prom, [("10m", [{"labels": "{}", "value": 0}]),
                                           ("30m", [{"labels": "{}", "value": 1}]),
                                           ("3h", [{"labels": "{}", "value": 1}]),
                                           ("4h30m", [{"labels": "{}", "value": 0}])])
    assert result.returncode == 0, result.stdout + result.stderr
    (_, gate) = yaml.safe_load_all(files["generated/argo/reco-ranker.yaml"])
    metric = gate["spec"]["metrics"][0]
    assert metric["consecutiveErrorLimit"] == 0  # fail closed when Prometheus cannot answer
    assert metric["failureCondition"].startswith("len(result) == 0 || isNaN(result[0]) ||")


def test_freeze_lifted_by_the_rollback_authority(tmp_path: Path, prom: Prom) -> None:
    files = _render_variant(tmp_path, lambda s: s.replace(
        "window: 24h", "window: 3h\n  lifted_until: 1970-01-01T01:00:00Z"))
    rules = files["generated/prometheus/rules/reco-ranker.rules.yaml"]
    result = _freeze_test(rules, tmp_path, prom, [("30m", [{"labels": "{}", "value": 0}]),  # lifted
                                           ("1h30m", [{"labels": "{}", "value": 1}])])  # lift expired
    assert result.returncode == 0, result.stdout + result.stderr


# --- broken templates and rules never reach the tree -------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "generated").rglob("*"))
            if p.is_file()}


def _sub(pattern: str, repl: str) -> Callable[[str], str]:
    return lambda text: re.sub(pattern, repl, text, count=1)


_FAIL = r"len\(result\) > 0 && !isNaN\(result\[0\]\) && result\[0\] > ([0-9.]+)"
BREAKS = [
    ("failure condition missing", _sub(r"      failureCondition: ", "      x-removed: "), "failureCondition"),
    ("threshold missing", _sub(_FAIL, "len(result) > 0 && result[0] > "), "right-hand side"),
    ("NaN path", _sub(_FAIL, r"len(result) > 0 && !(result[0] <= \1)"), "NaN"),
    ("empty result unguarded", _sub(_FAIL, r"result[0] > \1"), "len(result)"),
    ("bare isNaN on the vector", _sub(_FAIL, r"len(result) > 0 && !isNaN(result) && result[0] > \1"),
     "isNaN(result)"),
]


@pytest.mark.parametrize(("edit", "needle"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_broken_analysis_template_is_caught_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           edit: Callable[[str], str], needle: str) -> None:
    root = tmp_path / "repo"
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    before = _tree(root)
    original = targets.argo

    def broken(env: jinja2.Environment, ctx: Any) -> dict[str, str]:
        files = original(env, ctx)
        return {k: edit(v) if ctx.spec.name == "reco-ranker" else v for k, v in files.items()}

    monkeypatch.setitem(targets.RENDERERS, "argo", broken)
    with pytest.raises(RenderError) as info:
        pipeline.render(root, root / "specs")
    assert needle in str(info.value)
    assert _tree(root) == before


def test_template_with_undefined_variable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    before = _tree(root)
    real = targets.environment

    def env_with_typo() -> jinja2.Environment:
        env = real()
        source = env.loader.get_source(env, "argo/analysis-templates.yaml.j2")[0]  # type: ignore[union-attr]
        typo = jinja2.DictLoader({"argo/analysis-templates.yaml.j2": source.replace("m.failure |", "m.falure |")})
        env.loader = jinja2.ChoiceLoader([typo, env.loader])  # type: ignore[list-item]
        return env

    monkeypatch.setattr(targets, "environment", env_with_typo)
    with pytest.raises(RenderError, match=r"templates/argo/analysis-templates.yaml.j2: UndefinedError"):
        pipeline.render(root, root / "specs")
    assert _tree(root) == before


# --- compare_with: last_week ------------------------------------------------------------------------

def test_last_week_comparison_in_prometheus(tmp_path: Path, prom: Prom) -> None:
    """score_shift compares each version with the whole model one week earlier (offset 1w)."""
    import numpy as np

    from driftgate import baseline as bl
    from driftgate.fit import statistics as st
    from driftgate.model import Statistic

    base = bl.load(REPO / "baselines/reco-ranker.yaml", "b")
    fit = base.signal("score_shift")
    assert fit.compare_with == "last_week"
    rules = (REPO / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text()
    assert "offset 1w" in rules
    # Evaluate every 5 minutes instead of every minute: a week of history stays cheap to test.
    (tmp_path / "r.yaml").write_text(rules.replace('interval: "1m"', 'interval: "5m"'))
    k = len(fit.les)
    a = np.round(np.array(fit.probabilities) / sum(fit.probabilities) * 500)  # per 5 minutes
    b = a.copy()
    b[int(np.argmax(a))] += 300  # the canary: 300 extra scores in the busiest bin
    week, end = 7 * 24 * 12, 7 * 24 * 12 + 24  # steps of 5m: one week, then two hours
    series = []

    def put(version: str, inc: np.ndarray, first: int, last: int) -> None:
        cum = np.cumsum(inc)
        for i, le in enumerate(fit.les):
            step = int(cum[i])
            values = " ".join(["_"] * first + [f"0+{step}x{last - first}"])
            labels = (f'job="reco-ranker",namespace="reco",le="{le}",rollouts_pod_template_hash="{version}",'
                      f'pod="{version}"')
            series.append({"series": f"reco_score_bucket{{{labels}}}", "values": values})

    put("old", a, 0, week + 4)       # last week: the old version only
    put("stable", a, week, end)      # this week: the same distribution
    put("canary", b, week, end)      # this week: shifted
    bins_now, bins_then = b * 3, a * 3  # 15 minutes of 5m scrapes: from the sample at the start, 3 steps
    tvd = float(st.drift(Statistic.TVD, bins_now[None, :], st.smoothed(bins_then)[None, :])[0])
    n, m = float(bins_now.sum()), float(bins_then.sum())
    n_eff = n * m / (n + m)
    w = fit.fast
    assert tvd - w.noise_coefficient / n_eff**w.noise_power > w.auto.value  # the canary is caught (the test means it)
    t_eval = f"{(end - 1) * 5}m"
    alerts = [{"labels": (f'ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",model="reco-ranker",'
                          f'namespace="reco",rollback="auto",rollouts_pod_template_hash="canary",severity="critical",'
                          f'signal="score_shift",team="ranking",window="{w}"}}'), "value": 1} for w in ("fast", "slow")]
    doc = {"rule_files": ["r.yaml"], "evaluation_interval": "5m", "tests": [{
        "interval": "5m", "input_series": series, "promql_expr_test": [
            {"expr": 'abs(model_version:driftgate_score_shift:tvd15m{rollouts_pod_template_hash="canary"} - '
                     f'{tvd!r}) < bool 1e-9', "eval_time": t_eval,
             "exp_samples": [{"labels": '{model="reco-ranker",rollouts_pod_template_hash="canary",'
                                        'signal="score_shift"}', "value": 1}]},
            {"expr": 'model_version:driftgate_score_shift:tvd15m{rollouts_pod_template_hash="stable"}',
             "eval_time": t_eval,
             "exp_samples": [{"labels": 'model_version:driftgate_score_shift:tvd15m{model="reco-ranker",'
                                        'rollouts_pod_template_hash="stable",signal="score_shift"}', "value": 0}]},
            {"expr": 'ALERTS{alertname="DriftgateAutoRollback",alertstate="firing",signal="score_shift"}',
             "eval_time": t_eval, "exp_samples": alerts},
            # Two samples: the canary's n against the whole model's m a week earlier, n·m/(n+m).
            {"expr": 'abs(model_version:reco_score_count:effective_last_week15m{rollouts_pod_template_hash="canary"}'
                     f' - {n_eff!r}) < bool 1e-9', "eval_time": t_eval,
             "exp_samples": [{"labels": '{model="reco-ranker",rollouts_pod_template_hash="canary"}', "value": 1}]},
        ]}]}
    assert k == len(a)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc, width=1_000_000))
    result = _promtool_test(tmp_path / "t.yaml", prom)
    assert result.returncode == 0, result.stdout + result.stderr

