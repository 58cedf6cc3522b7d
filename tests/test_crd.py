"""Strict CRD validation (driftgate.validate.crd) against the upstream CRDs (fetched from the Go module proxy
by conftest, see scripts/fetch_crds.py), and how a user's CRD folder is found."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate.validate import crd
from tests.conftest import REPO

ANALYSIS_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: reco-ranker-drift
  namespace: ml
  labels:
    app.kubernetes.io/managed-by: driftgate
  annotations:
    driftgate.io/baseline: baselines/reco-ranker.yaml
spec:
  args:
  - name: model
  - name: canary-hash
  - name: prometheus-address
    value: http://prometheus-operated.monitoring.svc:9090
  dryRun:
  - metricName: latency-.*
  metrics:
  - name: score-tvd
    interval: 5m
    initialDelay: 1m
    count: 6
    failureLimit: 1
    consecutiveErrorLimit: 2
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
          model="{{args.model}}", rollouts_pod_template_hash="{{args.canary-hash}}"}[5m])))
"""

PROMETHEUS_RULE = """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: reco-ranker-drift
  namespace: ml
  labels:
    release: kube-prometheus-stack
spec:
  groups:
  - name: reco-ranker.drift
    interval: 1m
    partial_response_strategy: Abort
    rules:
    - record: model:score_tvd:1h
      expr: sum(abs(model:score_bin_share:1h - model:score_bin_baseline:1h)) / 2
      labels:
        model: reco-ranker
    - alert: ModelScoreDrift
      expr: model:score_tvd:1h{model="reco-ranker"} > 0.12
      for: 5m
      labels:
        severity: page
        rollback: manual
        namespace: ml
      annotations:
        summary: "Score distribution of {{ $labels.model }} moved"
        description: "TVD is {{ $value | humanize }} (threshold 0.12)."
        runbook_url: https://runbooks.example.com/driftgate/score-drift
"""

ALERTMANAGER_CONFIG = """
apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata:
  name: reco-ranker
  namespace: ml
spec:
  route:
    receiver: ml-slack
    groupBy: [alertname, model]
    groupWait: 30s
    groupInterval: 5m
    repeatInterval: 4h
    matchers:
    - name: model
      value: reco-ranker
      matchType: "="
    routes:
    - receiver: ml-pagerduty
      matchers:
      - {name: rollback, value: auto, matchType: "="}
      - {name: severity, value: page|critical, matchType: "=~"}
      continue: true
  receivers:
  - name: ml-slack
    slackConfigs:
    - apiURL:
        name: slack-webhook
        key: url
      channel: "#ml-alerts"
      sendResolved: true
  - name: ml-pagerduty
    pagerdutyConfigs:
    - routingKey:
        name: pagerduty
        key: routing-key
      severity: critical
  inhibitRules:
  - sourceMatch:
    - {name: severity, value: page, matchType: "="}
    targetMatch:
    - {name: severity, value: ticket, matchType: "="}
    equal: [model]
"""


def load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def template() -> dict[str, Any]:
    return load(ANALYSIS_TEMPLATE)


@pytest.mark.parametrize("text", [ANALYSIS_TEMPLATE, PROMETHEUS_RULE, ALERTMANAGER_CONFIG])
def test_valid_objects_pass(text: str) -> None:
    assert crd.validate(load(text)) == []


def test_cluster_analysis_template_is_known(template: dict[str, Any]) -> None:
    template["kind"] = "ClusterAnalysisTemplate"
    assert crd.validate(template) == [
        "metadata.namespace: ClusterAnalysisTemplate is cluster-scoped: remove the namespace"
    ]
    del template["metadata"]["namespace"]
    assert crd.validate(template) == []


def test_misspelt_key_names_path_and_suggestion(template: dict[str, Any]) -> None:
    prom = template["spec"]["metrics"][0]["provider"]["prometheus"]
    prom["querry"] = prom.pop("query")
    assert crd.validate(template) == [
        "spec.metrics[0].provider.prometheus.querry: unknown field (did you mean 'query'?)"
    ]


def test_wrong_type_int_or_string(template: dict[str, Any]) -> None:
    template["spec"]["metrics"][1]["count"] = [10]
    assert crd.validate(template) == ["spec.metrics[1].count: expected integer or string, got list"]


def test_wrong_plain_type(template: dict[str, Any]) -> None:
    template["spec"]["metrics"][0]["provider"]["prometheus"]["timeout"] = "30s"
    assert crd.validate(template) == [
        "spec.metrics[0].provider.prometheus.timeout: expected integer, got string"
    ]


def test_missing_required_field(template: dict[str, Any]) -> None:
    del template["spec"]["metrics"][0]["provider"]
    assert crd.validate(template) == ["spec.metrics[0]: missing required field 'provider'"]


def test_unknown_kind_and_unserved_version(template: dict[str, Any]) -> None:
    template["kind"] = "AnalysisTemplat"
    kinds = sorted({e.kind for e in crd.known_versions()})
    assert {"AlertmanagerConfig", "AnalysisTemplate", "ClusterAnalysisTemplate", "PrometheusRule"} <= set(kinds)
    assert crd.validate(template) == [
        f"kind: unknown kind 'AnalysisTemplat' (did you mean 'AnalysisTemplate'?); known: {', '.join(kinds)}"
    ]
    template["kind"] = "AnalysisTemplate"
    template["apiVersion"] = "argoproj.io/v1"
    assert crd.validate(template) == [
        "apiVersion: 'argoproj.io/v1' is not served for kind AnalysisTemplate (served: argoproj.io/v1alpha1)"
    ]
    assert crd.validate({"kind": "PrometheusRule"}) == ["missing required field 'apiVersion'"]
    assert crd.validate([1]) == ["expected object (a Kubernetes resource), got list"]


def test_metadata_is_checked_as_object_meta(template: dict[str, Any]) -> None:
    template["metadata"] = {"name": "Reco_Ranker", "lables": {}, "labels": {"team": 7, "bad key!": "x"}}
    assert crd.validate(template) == [
        "metadata.name: 'Reco_Ranker' is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
        "alphanumeric at both ends, at most 253 characters)",
        "metadata.lables: unknown field (did you mean 'labels'?)",
        "metadata.labels.team: expected string, got integer (quote it)",
        'metadata.labels["bad key!"]: key name \'bad key!\' must be 1-63 characters of letters, digits, '
        "'-', '_' and '.', alphanumeric at both ends",
    ]
    del template["metadata"]
    assert crd.validate(template) == ["missing required field 'metadata'"]
    template["metadata"] = {"namespace": "ml"}
    assert crd.validate(template) == ["metadata: missing required field 'name'"]


def test_preserve_unknown_fields_allows_anything_below(template: dict[str, Any]) -> None:
    template["spec"]["metrics"][0]["provider"] = {"plugin": {"acme/metrics": {"anything": [1, {"x": 2}]}}}
    assert crd.validate(template) == []


def test_prometheus_rule_defects() -> None:
    rule = load(PROMETHEUS_RULE)
    group = rule["spec"]["groups"][0]
    group["rules"][1]["for"] = "5 m"
    group["rules"][1]["annotation"] = group["rules"][1].pop("annotations")
    del group["rules"][0]["expr"]
    rule["spec"]["groups"].append({"name": "reco-ranker.drift", "rules": []})
    pattern = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
    assert crd.validate(rule) == [
        "spec.groups[0].rules[0]: missing required field 'expr'",
        f"spec.groups[0].rules[1].for: '5 m' does not match the pattern {pattern}",
        "spec.groups[0].rules[1].annotation: unknown field (did you mean 'annotations'?)",
        "spec.groups[1]: duplicate entry for name='reco-ranker.drift' (first at [0])",
    ]


def test_go_regex_in_prometheus_rule_schema_is_tolerated() -> None:
    rule = load(PROMETHEUS_RULE)
    rule["spec"]["groups"][0]["partial_response_strategy"] = "ABORT"
    assert crd.validate(rule) == []
    rule["spec"]["groups"][0]["partial_response_strategy"] = "never"
    assert crd.validate(rule) == [
        "spec.groups[0].partial_response_strategy: 'never' does not match the pattern ^(?i)(abort|warn)?$"
    ]
    assert crd.compile_go_regex(r"(?P<x") is None  # does not compile: the check is skipped


def test_alertmanager_config_defects() -> None:
    amc = load(ALERTMANAGER_CONFIG)
    amc["spec"]["route"]["matchers"][0]["matchType"] = "=="
    amc["spec"]["route"]["routes"][0]["matcher"] = amc["spec"]["route"]["routes"][0].pop("matchers")
    slack = amc["spec"]["receivers"][0]["slackConfigs"][0]
    slack["apiURL"] = {"secretKeyRef": slack["apiURL"]}
    del amc["spec"]["receivers"][1]["name"]
    assert crd.validate(amc) == [
        "spec.route.matchers[0].matchType: must be one of '!=', '=', '=~', '!~'; got '=='",
        "spec.route.routes[0].matcher: unknown field (did you mean 'matchers'?)",
        "spec.receivers[0].slackConfigs[0].apiURL: missing required field 'key'",
        "spec.receivers[0].slackConfigs[0].apiURL.secretKeyRef: unknown field (allowed: key, name, optional)",
        "spec.receivers[1]: missing required field 'name'",
    ]


def test_alertmanager_sub_routes_are_checked_recursively() -> None:
    amc = load(ALERTMANAGER_CONFIG)
    amc["spec"]["route"]["routes"][0]["routes"] = [{"recevier": "ml-slack", "groupWait": "soon"}]
    messages = crd.validate(amc)
    assert messages[0] == "spec.route.routes[0].routes[0].recevier: unknown field (did you mean 'receiver'?)"
    assert messages[1].startswith("spec.route.routes[0].routes[0].groupWait: 'soon' does not match")
    assert len(messages) == 2


def test_validate_documents_prefixes_source_and_index() -> None:
    bad = ANALYSIS_TEMPLATE.replace("    interval: 2m\n", "    intervall: 2m\n")
    text = PROMETHEUS_RULE + "---\n" + bad + "---\n"
    assert crd.validate_documents(text, "generated/all.yaml") == [
        "generated/all.yaml: document 1: spec.metrics[1].intervall: unknown field (did you mean 'interval'?)"
    ]


def test_validate_documents_reports_yaml_problems() -> None:
    text = "apiVersion: v1\nkind: PrometheusRule\nkind: PrometheusRule\n"
    messages = crd.validate_documents(text, "x.yaml")
    assert messages[0] == "x.yaml:3: duplicate key 'kind'"
    broken = crd.validate_documents("a: [1, 2\n", "y.yaml")
    assert len(broken) == 1 and broken[0].startswith("y.yaml: invalid YAML:")


def test_crd_loader_reads_the_bare_equals_enum_item() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load("enum:\n- =\n")  # what the upstream file does to PyYAML's plain safe loader
    docs, problems = crd.parse_documents("enum:\n- =\n- '!='\n", "inline")
    assert (docs, problems) == ([(0, {"enum": ["=", "!="]})], [])
    path = crd.reference_dir() / "prometheus-operator" / "monitoring.coreos.com_alertmanagerconfigs.yaml"
    crd_docs = crd.load_crd_file(path)
    spec = crd_docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    enum = spec["properties"]["route"]["properties"]["matchers"]["items"]["properties"]["matchType"]["enum"]
    assert "=" in enum


def test_crd_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = crd.reference_dir() / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml"
    (tmp_path / "prom").mkdir()
    shutil.copy(source, tmp_path / "prom" / source.name)
    monkeypatch.setenv(crd.ENV_CRDS, str(tmp_path))
    assert crd.reference_dir() == tmp_path
    assert crd.validate(load(PROMETHEUS_RULE)) == []
    assert crd.validate(load(ANALYSIS_TEMPLATE)) == [
        "kind: unknown kind 'AnalysisTemplate'; known: PrometheusRule"
    ]


def test_missing_crd_dir_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(crd.ENV_CRDS, str(missing))
    with pytest.raises(FileNotFoundError) as info:
        crd.validate(load(PROMETHEUS_RULE))
    assert str(missing) in str(info.value)
    assert "DRIFTGATE_CRDS" in str(info.value)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crd.ENV_CRDS, raising=False)
    monkeypatch.delenv(crd.ENV_REFERENCE_DIR, raising=False)


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    root = tmp_path / "infra"
    root.mkdir()
    none = crd.locate(root, None)
    assert none.directory is None and "no crds/ folder" in none.origin
    assert "--crds DIR" in none.skipped() and "$DRIFTGATE_CRDS" in none.skipped()
    (root / "crds").mkdir()
    assert crd.locate(root, None).directory is None  # an empty crds/ is no source
    shutil.copy(_fetched() / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml", root / "crds")
    assert crd.locate(root, None) == crd.Source(root / "crds", "found in crds/")
    env_dir = tmp_path / "env"
    shutil.copytree(root / "crds", env_dir)
    monkeypatch.setenv(crd.ENV_CRDS, str(env_dir))
    assert crd.locate(root, None).directory == env_dir  # the environment wins over the folder
    explicit = tmp_path / "explicit"
    shutil.copytree(root / "crds", explicit)
    assert crd.locate(root, explicit) == crd.Source(explicit, "from --crds")  # the option wins over both
    with pytest.raises(FileNotFoundError, match="from --crds"):
        crd.locate(root, tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no \.yaml"):
        crd.locate(root, tmp_path / "empty")


FETCHED = crd.reference_dir()  # set by conftest before collection; tests below unset the environment


def _fetched() -> Path:
    return FETCHED


def test_kubectl_list_output_and_helm_crds_folder(tmp_path: Path) -> None:
    """``kubectl get crd A B -o yaml`` prints a ``kind: List``; a Helm chart's crds/ holds plain files."""
    items = [crd.load_crd_file(_fetched() / rel)[0] for rel in (
        "argo-rollouts/analysis-template-crd.yaml", "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml")]
    for item in items:  # what the API server adds
        item.setdefault("metadata", {}).update({"resourceVersion": "42", "uid": "u"})
        item["status"] = {"acceptedNames": {}, "storedVersions": ["v1alpha1"]}
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert crd.validate(load(PROMETHEUS_RULE), tmp_path) == []
    assert crd.validate(load(ANALYSIS_TEMPLATE), tmp_path) == []
    assert {e.kind for e in crd.known_versions(tmp_path)} == {"AnalysisTemplate", "PrometheusRule"}
    helm = tmp_path / "chart" / "crds"
    helm.mkdir(parents=True)
    shutil.copy(_fetched() / "argo-rollouts/analysis-template-crd.yaml", helm / "crd-analysistemplate.yml")
    assert crd.validate(load(ANALYSIS_TEMPLATE), helm) == []


def test_render_warns_once_for_kinds_the_crds_lack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   no_env: None) -> None:
    from driftgate import pipeline

    root = tmp_path / "infra"
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, root / part)
    only_argo = tmp_path / "argo-only"
    only_argo.mkdir()
    shutil.copy(_fetched() / "argo-rollouts/analysis-template-crd.yaml", only_argo)
    warnings: list[Any] = []
    pipeline.render_files(root, root / "specs", "reco-ranker", warnings, crds=only_argo)
    lacking = [w for w in warnings if "not validated" in w.message]
    assert len(lacking) == 1 and "PrometheusRule" in lacking[0].message and "AlertmanagerConfig" in lacking[0].message
    warnings = []
    pipeline.render_files(root, root / "specs", "reco-ranker", warnings, crds=None)
    skipped = [w for w in warnings if "schema validation" in w.message]
    assert len(skipped) == 1 and "skipped" in skipped[0].message
    warnings = []
    pipeline.render_files(root, root / "specs", "reco-ranker", warnings, crds=_fetched())
    assert not [w for w in warnings if "schema" in w.message]


def test_render_rejects_an_object_the_crds_reject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The schemas are really applied at render: a CRD that forbids a field the template writes fails it."""
    from driftgate import pipeline
    from driftgate.errors import RenderError

    root = tmp_path / "infra"
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, root / part)
    strict = tmp_path / "crds"
    strict.mkdir()
    doc = copy.deepcopy(crd.load_crd_file(_fetched() / "argo-rollouts/analysis-template-crd.yaml")[0])
    spec = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"]["metrics"]["items"]["properties"]["failureLimit"]
    (strict / "at.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(RenderError, match="failureLimit"):
        pipeline.render_files(root, root / "specs", "reco-ranker", [], crds=strict)


def test_validation_does_not_mutate_cached_schemas(template: dict[str, Any]) -> None:
    before = copy.deepcopy(template)
    crd.validate(template)
    crd.validate(template)
    assert template == before
