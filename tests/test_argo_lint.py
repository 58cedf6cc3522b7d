"""Offline lint of AnalysisTemplates (driftgate.validate.argo_lint)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from driftgate.validate import crd
from driftgate.validate.argo_lint import bracket_problem, lint_analysis_template, lint_documents

VALID = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: reco-ranker-drift
  namespace: ml
spec:
  args:
  - name: model
  - name: canary-hash
  - name: prometheus-address
    value: http://prometheus-operated.monitoring.svc:9090
  - name: unused-is-fine
  dryRun:
  - metricName: latency
  measurementRetention:
  - metricName: ^score-tvd$
    limit: 20
  metrics:
  - name: score-tvd
    interval: 5m
    initialDelay: 90s
    count: 6
    failureLimit: 1
    successCondition: len(result) > 0 && !isNaN(result[0]) && result[0] < 0.12
    failureCondition: len(result) > 0 && result[0] >= 0.12
    provider:
      prometheus:
        address: "{{args.prometheus-address}}"
        timeout: 30
        query: |
          sum(abs(
            model:score_bin_share:1h{model="{{args.model}}",
              rollouts_pod_template_hash="{{args.canary-hash}}"}
            - on (le) model:score_bin_baseline:1h{model="{{ args.model }}"}
          )) / 2
  - name: latency-p99
    interval: 2m
    count: "10"
    failureLimit: "2"
    consecutiveSuccessLimit: 3
    successCondition: len(result) > 0 && result[0] <= 0.25
    failureCondition: len(result) > 0 && result[0] > 0.25
    provider:
      prometheus:
        address: "{{args.prometheus-address}}"
        query: >-
          histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{
          model="{{args.model}}", rollouts_pod_template_hash=~"{{args.canary-hash}}|x("}[5m])))
"""

TVD = "(metric 'score-tvd')"
LATENCY = "(metric 'latency-p99')"
NO_GUARD = ("indexes result[...] without a len(result) > 0 guard before it: an empty vector is an "
            "evaluation error, and consecutive errors abort the rollout")


@pytest.fixture
def template() -> dict[str, Any]:
    data = yaml.safe_load(VALID)
    assert isinstance(data, dict)
    return data


def metric(template: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = template["spec"]["metrics"][index]
    return found


def test_valid_template_passes_crd_validation_and_lint(template: dict[str, Any]) -> None:
    assert crd.validate(template) == []
    assert lint_analysis_template(template) == []


def test_bare_isnan_result(template: dict[str, Any]) -> None:
    metric(template)["successCondition"] = "len(result) > 0 && !isNaN(result) && result[0] < 0.12"
    assert lint_analysis_template(template) == [
        "spec.metrics[0].successCondition: isNaN(result) is a bug: for a vector query result is a list; "
        f"use isNaN(result[0]) {TVD}"
    ]


def test_missing_len_guard(template: dict[str, Any]) -> None:
    metric(template)["failureCondition"] = "result[0] >= 0.12"
    assert lint_analysis_template(template) == [f"spec.metrics[0].failureCondition: {NO_GUARD} {TVD}"]


def test_len_guard_after_the_index_does_not_count(template: dict[str, Any]) -> None:
    metric(template)["failureCondition"] = "result[0] >= 0.12 && len(result) > 0"
    assert lint_analysis_template(template) == [f"spec.metrics[0].failureCondition: {NO_GUARD} {TVD}"]


def test_missing_failure_condition(template: dict[str, Any]) -> None:
    del metric(template, 1)["failureCondition"]
    assert lint_analysis_template(template) == [
        "spec.metrics[1].failureCondition: missing: set both successCondition and failureCondition "
        "(without conditions a metric passes; with one, NaN or an empty result is decided instead of "
        f"Inconclusive) {LATENCY}"
    ]


def test_job_provider_needs_no_conditions(template: dict[str, Any]) -> None:
    m = metric(template)
    del m["successCondition"], m["failureCondition"]
    m["provider"] = {"job": {"spec": {"template": {"spec": {"containers": []}}}}}
    assert lint_analysis_template(template) == []


def test_missing_count(template: dict[str, Any]) -> None:
    del metric(template)["count"]
    assert lint_analysis_template(template) == [
        f"spec.metrics[0].count: missing: a step analysis never completes without count {TVD}"
    ]


def test_count_above_one_needs_interval(template: dict[str, Any]) -> None:
    del metric(template)["interval"]
    assert lint_analysis_template(template) == [
        f"spec.metrics[0].interval: missing: required when count > 1 (count is 6) {TVD}"
    ]


def test_count_must_cover_failure_and_success_limits(template: dict[str, Any]) -> None:
    metric(template, 1)["count"] = "4"
    assert lint_analysis_template(template) == [
        f"spec.metrics[1].count: must be >= failureLimit + consecutiveSuccessLimit (5), got 4 {LATENCY}"
    ]


def test_int_or_string_values(template: dict[str, Any]) -> None:
    metric(template)["count"] = "{{ args.count }}"
    template["spec"]["args"].append({"name": "count", "value": "6"})
    assert lint_analysis_template(template) == []
    metric(template)["failureLimit"] = "one"
    assert lint_analysis_template(template) == [
        "spec.metrics[0].failureLimit: expected an integer, a digit string or {{args.NAME}}, "
        f"got 'one' {TVD}"
    ]


def test_go_duration_without_d_unit(template: dict[str, Any]) -> None:
    metric(template)["interval"] = "1d"
    metric(template)["initialDelay"] = "30s"
    assert lint_analysis_template(template) == [
        f"spec.metrics[0].interval: invalid Go duration '1d' (Go durations have no 'd' unit; write 24h) {TVD}"
    ]


def test_prometheus_timeout_is_integer_seconds(template: dict[str, Any]) -> None:
    metric(template)["provider"]["prometheus"]["timeout"] = "30s"
    assert lint_analysis_template(template) == [
        "spec.metrics[0].provider.prometheus.timeout: must be a positive whole number of seconds (the CRD "
        f"declares int64, not a Go duration), got '30s' {TVD}"
    ]


def test_duplicate_metric_names(template: dict[str, Any]) -> None:
    metric(template, 1)["name"] = "score-tvd"
    template["spec"]["dryRun"] = [{"metricName": ".*"}]
    assert lint_analysis_template(template) == [
        "spec.metrics[1].name: duplicate metric name 'score-tvd' (also spec.metrics[0])"
    ]


def test_empty_metric_name_and_no_metrics(template: dict[str, Any]) -> None:
    metric(template, 1)["name"] = ""
    template["spec"]["dryRun"] = []
    assert lint_analysis_template(template) == ["spec.metrics[1].name: every metric needs a non-empty name"]
    template["spec"]["metrics"] = []
    template["spec"]["measurementRetention"] = []
    assert lint_analysis_template(template) == ["spec.metrics: at least one metric is required"]


def test_undeclared_arg(template: dict[str, Any]) -> None:
    prom = metric(template)["provider"]["prometheus"]
    prom["query"] = prom["query"].replace("{{args.canary-hash}}", "{{args.canary_hash}}")
    assert lint_analysis_template(template) == [
        "spec.metrics[0].provider.prometheus.query: argument 'canary_hash' is not declared in "
        f"spec.args {TVD}"
    ]


def test_two_providers(template: dict[str, Any]) -> None:
    metric(template)["provider"]["web"] = {"url": "http://example.com/metrics", "jsonPath": "{$.tvd}"}
    assert lint_analysis_template(template) == [
        f"spec.metrics[0].provider: exactly one provider is required, found 2 (prometheus, web) {TVD}"
    ]
    metric(template)["provider"] = {}
    assert lint_analysis_template(template) == [
        f"spec.metrics[0].provider: exactly one provider is required, found none {TVD}"
    ]


def test_dry_run_regex_matching_nothing(template: dict[str, Any]) -> None:
    template["spec"]["dryRun"] = [{"metricName": "latency-p95"}, {"metricName": "latency-("}]
    assert lint_analysis_template(template) == [
        "spec.dryRun[0].metricName: regex 'latency-p95' matches no metric (metrics: score-tvd, latency-p99)",
        "spec.dryRun[1].metricName: 'latency-(' is not a valid regular expression",
    ]


def test_measurement_retention_regex_is_unanchored_but_must_match(template: dict[str, Any]) -> None:
    template["spec"]["measurementRetention"] = [{"metricName": "tvd", "limit": 5},
                                                {"metricName": "^tvd", "limit": 5}]
    assert lint_analysis_template(template) == [
        "spec.measurementRetention[1].metricName: regex '^tvd' matches no metric "
        "(metrics: score-tvd, latency-p99)"
    ]


def test_template_leftovers_and_brackets(template: dict[str, Any]) -> None:
    m = metric(template)
    m["successCondition"] = "len(result) > 0 && (result[0] < {{ threshold }}"
    m["provider"]["prometheus"]["query"] = "sum(rate(x[5m])) {% if canary %}"
    assert lint_analysis_template(template) == [
        "spec.metrics[0].successCondition: unbalanced brackets: '(' at character 20 is never closed " + TVD,
        "spec.metrics[0].successCondition: template leftover '{{ threshold }}': Argo only substitutes "
        "{{args.NAME}} " + TVD,
        "spec.metrics[0].provider.prometheus.query: template leftover '{%' " + TVD,
    ]


def test_bracket_check_ignores_string_literals() -> None:
    assert bracket_problem('sum(x{path=~"/a(b"})') is None
    assert bracket_problem("a)") == "unbalanced brackets: unexpected ')' at character 2"


def test_lint_documents_only_lints_analysis_templates(template: dict[str, Any]) -> None:
    other = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "spec": {}}
    del metric(template)["count"]
    cluster = dict(template, kind="ClusterAnalysisTemplate")
    text = yaml.safe_dump_all([other, template, cluster], sort_keys=False)
    assert lint_documents(text, "argo.yaml") == [
        f"argo.yaml: document 1: spec.metrics[0].count: missing: a step analysis never completes without "
        f"count {TVD}",
        f"argo.yaml: document 2: spec.metrics[0].count: missing: a step analysis never completes without "
        f"count {TVD}",
    ]


def test_lint_never_raises_on_malformed_input() -> None:
    assert lint_analysis_template({"spec": {"metrics": "nope"}}) == []
    assert lint_analysis_template({"spec": {"metrics": [1, None, {"provider": []}]}}) != []
    assert lint_analysis_template([]) == ["spec: missing; an AnalysisTemplate needs spec.metrics"]
