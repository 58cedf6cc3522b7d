"""The deployment contract in the spec: what the cluster's selectors and scrapes need of the generated
objects (issue 13). Each case is a misconfiguration that used to render clean and enforce nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from click.testing import CliRunner

from driftgate import pipeline
from driftgate.cli import main
from driftgate.validate import rollouts
from tests.conftest import REPO
from tests.test_generated import _unquote

SELECTOR = "  selector: {job: reco-ranker, namespace: reco}\n"
LABELS = {"release": "kube-prometheus-stack", "team.example.com/cost-centre": "ranking-42"}
ANNOTATIONS = {"example.com/owner": "ranking@example.com", "argocd.argoproj.io/sync-wave": "-1"}


def _variant(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, tmp_path / part)
    spec = tmp_path / "specs/reco-ranker.yaml"
    text = spec.read_text()
    new = edit(text)
    assert new != text
    spec.write_text(new)
    return tmp_path


def _contract(text: str) -> str:
    return text.replace("model: reco-ranker\n", "model: reco-ranker\n" + yaml.safe_dump(
        {"object_labels": LABELS, "object_annotations": ANNOTATIONS}, sort_keys=False), 1)


def _objects(files: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rel, text in files.items():
        if rel.endswith(".yaml") and "/plans/" not in rel and "-rollout/" not in rel:
            out += [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and "kind" in d
                    and "metadata" in d]
    return out


def test_object_labels_and_annotations_reach_every_generated_object(tmp_path: Path) -> None:
    """A stock kube-prometheus-stack loads only PrometheusRules labelled release: <its name>: without a
    way to set it, the rules were never loaded and every gate failed closed (or, before the heartbeat,
    every Argo query was empty)."""
    root = _variant(tmp_path, _contract)
    files = pipeline.render_files(root, root / "specs", "reco-ranker")
    objs = _objects(files)
    assert {o["kind"] for o in objs} >= {"PrometheusRule", "AnalysisTemplate", "AlertmanagerConfig"}
    for o in objs:
        meta = o["metadata"]
        assert LABELS.items() <= meta["labels"].items(), (o["kind"], meta)
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "driftgate"
        assert ANNOTATIONS.items() <= meta.get("annotations", {}).items(), (o["kind"], meta)
    # The kube-prometheus-stack ruleSelector matches the PrometheusRule.
    (rule,) = [o for o in objs if o["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Both Terraform flavours carry them too.
    tf = _unquote(hcl2.loads(files["generated/terraform/argo_rollouts/reco-ranker.tf"]))
    for res in tf["resource"]:
        (body,) = res["argo_rollouts_analysis_template"].values()
        (meta,) = body["metadata"]
        assert LABELS.items() <= meta["labels"].items()
        assert ANNOTATIONS.items() <= meta["annotations"].items()
    manifests = _unquote(hcl2.loads(files["generated/terraform/kubernetes_manifest/reco-ranker.tf"]))
    kinds = []
    for res in manifests["resource"]:
        (body,) = res["kubernetes_manifest"].values()
        kinds.append(body["manifest"]["kind"])
        assert LABELS.items() <= body["manifest"]["metadata"]["labels"].items()
    assert "PrometheusRule" in kinds


@pytest.mark.parametrize(("block", "want"), [
    ({"object_labels": {"release": "kube prometheus"}}, "object_labels.release: expected a Kubernetes label value"),
    ({"object_labels": {"-bad/key": "x"}}, "object_labels.-bad/key: expected a Kubernetes label key"),
    ({"object_labels": {"app.kubernetes.io/managed-by": "helm"}},
     "object_labels.app.kubernetes.io/managed-by: 'app.kubernetes.io/managed-by' is set by driftgate"),
    ({"object_labels": {"release": 7}}, "object_labels.release: expected a string value"),
    ({"object_annotations": {"driftgate.io/spec": "x"}}, "is set by driftgate on every object"),
    ({"object_annotations": ["a"]}, "object_annotations: expected a mapping of annotation keys"),
])
def test_bad_object_metadata_is_refused(tmp_path: Path, block: dict[str, Any], want: str) -> None:
    root = _variant(tmp_path, lambda t: t.replace("model: reco-ranker\n",
                                                  "model: reco-ranker\n" + yaml.safe_dump(block), 1))
    result = CliRunner().invoke(main, ["validate", "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert want in result.output, result.output


def test_a_custom_version_label_is_passed_by_the_rollout_wiring(tmp_path: Path) -> None:
    """version_label: version used to be fed the pod-template hash: every query matched nothing."""
    import json

    from tests.test_fit_contract import make_repo, set_spec

    root = make_repo(tmp_path / "repo")
    for path in (root / "exports/mini").glob("*.json"):  # scraped with the pod's version label instead
        doc = json.loads(path.read_text())
        for r in doc["data"]["result"]:
            r["metric"]["version"] = "v" + r["metric"].pop("rollouts_pod_template_hash")
        path.write_text(json.dumps(doc))
    set_spec(root, "selector: {job: mini, namespace: mini-ns}",
             "selector: {job: mini, namespace: mini-ns}\n  version_label: version\n"
             "  version_from: {pod_label: version}")
    pipeline.fit(root, root / "specs")
    files = pipeline.render_files(root, root / "specs", "mini")
    component = yaml.safe_load(files["generated/argo/mini-rollout/kustomization.yaml"])
    ops = [op for p in component["patches"] for op in yaml.safe_load(p["patch"])]
    (analysis,) = [op["value"] for op in ops if op["path"] == "/spec/strategy/canary/analysis"]
    (arg,) = analysis["args"]
    assert arg == {"name": "canary-hash",
                   "valueFrom": {"fieldRef": {"fieldPath": "spec.template.metadata.labels.version"}}}
    criteria = next(d for d in yaml.safe_load_all(files["generated/argo/mini.yaml"])
                    if d and d["metadata"]["name"].endswith("rollback-criteria"))
    assert all('version="{{args.canary-hash}}"' in m["provider"]["prometheus"]["query"]
               for m in criteria["spec"]["metrics"] if m["name"] != "enforcement-live")
    assert "spec.template.metadata.labels.version" in files["generated/plans/mini.md"]


def _rollout(value_from: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "reco-ranker", "namespace": "reco"},
        "spec": {"rollbackWindow": {"revisions": 2}, "strategy": {"canary": {
            "analysis": {"templates": [{"templateName": "reco-ranker-rollback-criteria"}],
                         "args": [{"name": "canary-hash", "valueFrom": value_from}]},
            "steps": [{"analysis": {"templates": [{"templateName": "reco-ranker-freeze-gate"}]}},
                      {"setWeight": 10}, {"pause": {"duration": "2h"}}, {"setWeight": 100},
                      {"pause": {"duration": "2h"}}]}}}})


def test_check_rollouts_requires_the_version_the_spec_says(tmp_path: Path) -> None:
    from driftgate.spec.load import load_specs

    root = _variant(tmp_path, lambda t: t.replace(
        SELECTOR, SELECTOR + "  version_label: version\n  version_from: {pod_label: version}\n"))
    (spec,) = load_specs(root, root / "specs", "reco-ranker", check_exports=False)
    hashed = tmp_path / "hash.yaml"
    hashed.write_text(_rollout({"podTemplateHashValue": "Latest"}))
    problems = rollouts.check([spec], [hashed])
    assert any("expected valueFrom: {\"fieldRef\": {\"fieldPath\": \"spec.template.metadata.labels.version\"}}"
               in p.message for p in problems), [p.message for p in problems]
    good = tmp_path / "label.yaml"
    good.write_text(_rollout({"fieldRef": {"fieldPath": "spec.template.metadata.labels.version"}}))
    assert not [p for p in rollouts.check([spec], [good]) if "valueFrom" in p.message]


def test_the_freeze_reads_the_namespace_label_rollout_info_arrives_with(tmp_path: Path) -> None:
    def exprs(text: str) -> str:
        return "\n".join(r["expr"] for g in yaml.safe_load(text)["groups"] for r in g["rules"])

    rules = exprs((REPO / "generated/prometheus/rules/reco-ranker.rules.yaml").read_text())
    assert 'rollout_info{name="reco-ranker",exported_namespace="reco",phase="Degraded"}' in rules
    root = _variant(tmp_path, lambda t: t.replace(SELECTOR, SELECTOR + "  rollout_info_namespace_label: namespace\n"))
    files = pipeline.render_files(root, root / "specs", "reco-ranker")
    text = exprs(files["generated/prometheus/rules/reco-ranker.rules.yaml"])
    assert 'rollout_info{name="reco-ranker",namespace="reco",phase="Degraded"}' in text
    assert "exported_namespace" not in text


def test_shadow_mode_measures_without_acting(tmp_path: Path) -> None:
    """analysis.dry_run: Argo's dryRun for every automatic metric, the freeze only from an abort, the
    alert marked shadow (its route skips the freeze webhook: tests/test_generated.py::test_amtool_routes)."""
    # (the example's release.auto_undo is refused in shadow mode: it would act; tests/test_auto_undo.py)
    root = _variant(tmp_path, lambda t: t.replace("analysis:\n", "analysis:\n  dry_run: true\n", 1)
                    .replace("    token: {secret: reco-alerting, key: auto-undo-token}\n",
                             "    token: {secret: reco-alerting, key: auto-undo-token}\n    enabled: false\n"))
    files = pipeline.render_files(root, root / "specs", "reco-ranker")
    criteria = next(d for d in yaml.safe_load_all(files["generated/argo/reco-ranker.yaml"])
                    if d and d["metadata"]["name"].endswith("rollback-criteria"))
    names = [m["name"] for m in criteria["spec"]["metrics"]]
    dry = [d["metricName"] for d in criteria["spec"]["dryRun"]]
    assert dry == [n for n in names if n.endswith("-auto")] and dry
    assert "enforcement-live" not in dry and not any(n.endswith("-review") for n in dry)
    rules = yaml.safe_load(files["generated/prometheus/rules/reco-ranker.rules.yaml"])
    by_name = {r.get("record") or r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    freeze = by_name["model:driftgate_freeze:active"]["expr"]
    assert "ALERTS" not in freeze and 'phase="Degraded"' in freeze
    autos = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "DriftgateAutoRollback"]
    assert autos and all(r["labels"]["shadow"] == "true" and "SHADOW MODE" in r["annotations"]["description"]
                         for r in autos)
    assert "**Shadow mode**" in files["generated/plans/reco-ranker.md"]
    tf = _unquote(hcl2.loads(files["generated/terraform/kubernetes_manifest/reco-ranker.tf"]))
    manifests = [b["manifest"] for res in tf["resource"] for b in res["kubernetes_manifest"].values()]
    assert any(m.get("spec", {}).get("dryRun") for m in manifests)
    flavour1 = _unquote(hcl2.loads(files["generated/terraform/argo_rollouts/reco-ranker.tf"]))
    blocks = [b for res in flavour1["resource"] for b in res["argo_rollouts_analysis_template"].values()]
    assert [d["metric_name"] for d in blocks[0]["spec"][0]["dry_run"]] == dry
    # Without dry_run none of it.
    plain = (REPO / "generated/argo/reco-ranker.yaml").read_text()
    assert "dryRun" not in plain


def test_dry_run_must_be_a_boolean(tmp_path: Path) -> None:
    root = _variant(tmp_path, lambda t: t.replace("analysis:\n", "analysis:\n  dry_run: sometimes\n", 1))
    result = CliRunner().invoke(main, ["validate", "--root", str(root)])
    assert result.exit_code == 1 and "analysis.dry_run: expected true or false, got 'sometimes'" in result.output


AUTH = ("  analysis_auth:\n    headers: {X-Scope-OrgID: reco-tenant}\n"
        "    bearer_token: {secret: prometheus-reader, key: token}\n")


def test_analysis_auth_reaches_every_query_and_the_secret_stays_a_reference(tmp_path: Path) -> None:
    """Multi-tenant Mimir/Thanos: without the tenant header every Argo query errors (and, past
    consecutiveErrorLimit, aborts every rollout). The headers ride on every metric of both templates;
    the token is an AnalysisTemplate argument from a Secret; Argo's own Prometheus provider sends both."""
    import http.server
    import json
    import threading

    from tests.test_argo import decide

    root = _variant(tmp_path, lambda t: t.replace(SELECTOR, SELECTOR + AUTH))
    files = pipeline.render_files(root, root / "specs", "reco-ranker")
    docs = [d for d in yaml.safe_load_all(files["generated/argo/reco-ranker.yaml"]) if d]
    assert len(docs) == 2
    for doc in docs:
        assert {"name": "prometheus-token",
                "valueFrom": {"secretKeyRef": {"name": "prometheus-reader", "key": "token"}}} in doc["spec"]["args"]
        for m in doc["spec"]["metrics"]:
            assert m["provider"]["prometheus"]["headers"] == [
                {"key": "X-Scope-OrgID", "value": "reco-tenant"},
                {"key": "Authorization", "value": "Bearer {{args.prometheus-token}}"}]
    tf = _unquote(hcl2.loads(files["generated/terraform/argo_rollouts/reco-ranker.tf"]))
    for res in tf["resource"]:
        (body,) = res["argo_rollouts_analysis_template"].values()
        (spec,) = body["spec"]
        secret = [a for a in spec["args"] if a["name"] == "prometheus-token"]
        ref = secret[0]["value_from"][0]["secret_key_ref"][0]
        assert (ref["name"], ref["key"]) == ("prometheus-reader", "token")
        for m in spec["metric"]:
            heads = m["provider"][0]["prometheus"][0]["headers"]
            assert (heads[0]["key"], heads[0]["value"]) == ("X-Scope-OrgID", "reco-tenant")
    # Argo's provider, on a server that answers only with the tenant header and the token.
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})  # Go canonicalises the case
            ok = self.headers.get("X-Scope-OrgID") == "reco-tenant" and \
                self.headers.get("Authorization") == "Bearer s3cret"
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1, "0"]}]}} if ok else {"status": "error", "errorType": "bad_data",
                                                                   "error": "no tenant"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (criteria,) = [d for d in docs if d["metadata"]["name"].endswith("rollback-criteria")]
        metric = next(m for m in criteria["spec"]["metrics"] if m["name"].endswith("-auto"))
        resolved = json.loads(json.dumps(metric).replace("{{args.prometheus-token}}", "s3cret")
                              .replace("{{args.canary-hash}}", "abc123"))
        resolved["provider"]["prometheus"]["address"] = f"http://127.0.0.1:{server.server_port}"
        (got,) = decide([{"metric": resolved, "measure": True}])
        assert got["phase"] == "Successful", got
        assert seen and seen[-1].get("x-scope-orgid") == "reco-tenant"
        assert seen[-1].get("authorization") == "Bearer s3cret"
    finally:
        server.shutdown()
    # Never the secret's value, nowhere: only its reference.
    assert all("s3cret" not in str(text) for text in files.values())


def test_analysis_auth_refuses_a_literal_token(tmp_path: Path) -> None:
    root = _variant(tmp_path, lambda t: t.replace(SELECTOR, SELECTOR + "  analysis_auth:\n    bearer_token: abc\n"))
    result = CliRunner().invoke(main, ["validate", "--root", str(root)])
    assert result.exit_code == 1
    assert "prometheus.analysis_auth.bearer_token: expected a secret reference" in result.output
    assert "got a literal string" in result.output and "abc" not in result.output  # never echoed
