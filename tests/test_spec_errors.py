"""Bad specs: every problem is reported at once, with file:line:col, key path, expected and found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftgate.errors import SpecError
from driftgate.spec.load import load_specs

GOOD = """\
model: demo
namespace: demo-ns
rollout: demo
team:
  name: demo-team
  slack_channel: "#demo"
  slack_webhook: {secret: demo-alerting, key: slack}
rollback_authority:
  name: Demo lead
  contact: pager
  pagerduty_routing_key: {secret: demo-alerting, key: pd}
prometheus:
  address: http://prometheus:9090
  selector: {job: demo}
budget:
  auto: 1/quarter
history:
  exports: [exports/demo.json]
freeze:
  window: 24h
  webhook:
    url: http://gate:8080/freeze
    token: {secret: demo-alerting, key: gate}
signals:
  - name: score_drift
    kind: distribution_drift
    metric: demo_score
  - name: errors
    kind: error_ratio
    numerator: demo_errors_total
    denominator: demo_requests_total
"""


def problems(write_tree: Callable[[dict[str, str]], Path], text: str) -> list[str]:
    root = write_tree({"specs/demo.yaml": text, "exports/demo.json": "{}"})
    with pytest.raises(SpecError) as info:
        load_specs(root, root / "specs")
    return [p.format() for p in info.value.problems]


def test_good_spec_loads(write_tree: Callable[[dict[str, str]], Path]) -> None:
    root = write_tree({"specs/demo.yaml": GOOD, "exports/demo.json": "{}"})
    (spec,) = load_specs(root, root / "specs")
    assert spec.name == "demo"
    assert spec.signals[0].windows.fast.text == "10m"
    assert spec.analysis.interval.text == "1m" and spec.analysis.failure_limit == 0
    assert spec.release.horizon.text == "24h" and spec.release.bake.text == "2h"


CASES = [
    ("unknown top key, with a suggestion",
     ("rollout: demo\n", "rollout: demo\nrolout: x\n"),
     "specs/demo.yaml:4:1: error: rolout: unknown key 'rolout' (did you mean 'rollout'?)"),
    ("model name not a DNS label",
     ("model: demo\n", "model: Demo_Model\n"),
     "specs/demo.yaml:1:1: error: model: expected a DNS-1123 label that starts with a letter (lowercase letters, digits and '-', at most 63 characters; it also names Terraform resources), got 'Demo_Model'"),
    ("missing required key",
     ("rollout: demo\n", ""),
     "specs/demo.yaml:1:1: error: missing required key 'rollout'"),
    ("secret written inline",
     ("slack_webhook: {secret: demo-alerting, key: slack}", "slack_webhook: https://hooks.slack.com/x"),
     "specs/demo.yaml:7:3: error: team.slack_webhook: expected a secret reference {secret: <name>, key: <key>}, "
     "got a literal string; secrets are referenced, never inlined"),
    ("bad budget",
     ("auto: 1/quarter", "auto: often"),
     "specs/demo.yaml:16:3: error: budget.auto: expected a false-rollback budget like 1/quarter, got 'often': write it as <count>/<day|week|month|quarter|year>"),
    ("bad duration",
     ("window: 24h", "window: daily"),
     "specs/demo.yaml:20:3: error: freeze.window: expected a duration like 5m or 1h, got 'daily'"),
    ("unknown signal kind",
     ("kind: error_ratio", "kind: error_rate"),
     "specs/demo.yaml:29:5: error: signals[1].kind: expected one of distribution_drift, latency_quantile, error_ratio, kpi_ratio, got 'error_rate'"),
    ("histogram metric given with _bucket",
     ("metric: demo_score", "metric: demo_score_bucket"),
     "specs/demo.yaml:27:5: error: signals[0].metric: expected the histogram's base name without '_bucket', "
     "got 'demo_score_bucket'"),
    ("metric name that would inject PromQL",
     ("numerator: demo_errors_total", 'numerator: demo_errors_total{job="x"}'),
     "specs/demo.yaml:30:5: error: signals[1].numerator: expected a Prometheus metric name matching "
     "[a-zA-Z_:][a-zA-Z0-9_:]*, got 'demo_errors_total{job=\"x\"}'"),
    ("duplicate signal names",
     ("  - name: errors\n", "  - name: score_drift\n"),
     "specs/demo.yaml:28:5: error: signals[1].name: duplicate signal name 'score_drift'"),
    ("fast window not shorter than slow",
     ("    metric: demo_score\n", "    metric: demo_score\n    windows: {fast: 1h, slow: 10m}\n"),
     "specs/demo.yaml:28:25: error: signals[0].windows.slow: expected the slow window to be longer than the "
     "fast one (1h), got '10m'"),
    ("manual band beyond the automatic threshold",
     ("    metric: demo_score\n", "    metric: demo_score\n    threshold: {auto: 0.1, manual: 0.3}\n"),
     "specs/demo.yaml:28:28: error: signals[0].threshold.manual: expected the manual band to be at most the "
     "automatic threshold 0.1 (direction above), got 0.3"),
    ("export path escaping the repository",
     ("exports: [exports/demo.json]", "exports: [../../etc/passwd]"),
     "specs/demo.yaml:18:13: error: history.exports[0]: expected a path inside the repository, "
     "got '../../etc/passwd'"),
    ("missing export file",
     ("exports: [exports/demo.json]", "exports: [exports/none.json]"),
     "specs/demo.yaml:18:13: error: history.exports[0]: file not found: exports/none.json"),
    ("label matcher on a reserved label",
     ("selector: {job: demo}", "selector: {job: demo, le: '1'}"),
     "specs/demo.yaml:14:25: error: prometheus.selector.le: label 'le' is set by driftgate itself"),
    ("label value with a newline",
     ("selector: {job: demo}", 'selector: {job: "de\\nmo"}'),
     "specs/demo.yaml:14:14: error: prometheus.selector.job: a single line is expected"),
    ("analysis count, removed",
     ("signals:\n", "analysis: {count: 1, failure_limit: 2}\nsignals:\n"),
     "specs/demo.yaml:24:12: error: analysis.count: no longer used: the background analysis measures until the "
     "rollout completes (a count ran out and left the later steps and the bake unguarded); remove it"),
    ("release horizon shorter than the rollout",
     ("signals:\n", "release: {horizon: 1h, bake: 30m}\nsignals:\n"),
     "specs/demo.yaml:24:11: error: release.horizon: expected release.horizon (1h) longer than the generated "
     "rollout (the longest slow window plus release.bake: 1h30m); otherwise a version still rolling out counts as "
     "established and its breach is paged as drift instead of rolled back: set a longer release.horizon or a "
     "shorter release.bake"),
    ("duplicate YAML key",
     ("rollout: demo\n", "rollout: demo\nrollout: other\n"),
     "specs/demo.yaml:4:1: error: rollout: duplicate key 'rollout'; it is already set on line 3"),
    ("quantile out of range",
     ("  - name: errors\n", "  - name: lat\n    kind: latency_quantile\n    metric: demo_seconds\n"
                            "    quantile: 99\n  - name: errors\n"),
     "specs/demo.yaml:31:5: error: signals[1].quantile: expected a number <= 0.9999, got 99"),
]


@pytest.mark.parametrize(("old_new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec(write_tree: Callable[[dict[str, str]], Path], old_new: tuple[str, str], expected: str) -> None:
    old, new = old_new
    assert old in GOOD
    found = problems(write_tree, GOOD.replace(old, new, 1))
    assert len(found) == 1, "\n".join(found)
    assert found[0].startswith(expected), found[0]


def test_all_problems_reported_at_once(write_tree: Callable[[dict[str, str]], Path]) -> None:
    text = GOOD.replace("model: demo", "model: Demo").replace("auto: 1/quarter", "auto: x").replace(
        "window: 24h", "window: y")
    found = problems(write_tree, text)
    assert [p.split(": error: ")[1].split(":")[0] for p in found] == ["model", "budget.auto", "freeze.window"]


def test_not_yaml(write_tree: Callable[[dict[str, str]], Path]) -> None:
    found = problems(write_tree, "model: [unclosed\n")
    assert found[0].startswith("specs/demo.yaml:2:1: error:")


def test_prediction_log_needs_its_sidecar(write_tree: Callable[[dict[str, str]], Path]) -> None:
    text = GOOD.replace("exports: [exports/demo.json]", "exports: [exports/demo.json, exports/p.predictions.csv]")
    root = write_tree({"specs/demo.yaml": text, "exports/demo.json": "{}", "exports/p.predictions.csv": "x\n"})
    with pytest.raises(SpecError) as info:
        load_specs(root, root / "specs")
    assert [p.format() for p in info.value.problems] == [
        "specs/demo.yaml:18:32: error: history.exports[1]: a prediction log needs its sidecar "
        "exports/p.predictions.csv.meta.json (metric, buckets, step); see docs/exports.md"]
    (root / "exports/p.predictions.csv.meta.json").write_text("{}")
    assert load_specs(root, root / "specs")[0].exports[1] == "exports/p.predictions.csv"
