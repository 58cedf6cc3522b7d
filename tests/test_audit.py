"""``driftgate audit``: on a realistic manifest tree, every model spec'd here is found enforced or
reported (issue 13's coverage view), in text, GitHub annotations and SARIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from driftgate.cli import main
from driftgate.render.verify import patched_stubs
from tests.conftest import REPO


def _wired(model: str, namespace: str) -> dict[str, Any]:
    text = (REPO / "generated/argo" / f"{model}-rollout/kustomization.yaml").read_text()
    (component,) = [d for d in yaml.safe_load_all(text) if d]
    (obj,) = patched_stubs(component)
    obj["metadata"] = {"name": model, "namespace": namespace, "labels": {"app": model}}
    return obj


def _deployment(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": f"registry/{name}:1"}]}}}}


def _helm(*docs: dict[str, Any]) -> str:
    """What `helm template` prints: a Source comment before each document."""
    return "".join(f"---\n# Source: platform/templates/{d['kind'].lower()}.yaml\n{yaml.safe_dump(d)}" for d in docs)


def _tree(root: Path, fraud_as_rollout: bool = False, search_template: bool = False) -> Path:
    tree = root / "clusters/prod"
    (tree / "reco").mkdir(parents=True)
    (tree / "payments").mkdir(parents=True)
    (tree / "search").mkdir(parents=True)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reco-ranker", "namespace": "reco"},
               "spec": {"ports": [{"port": 80}]}}
    (tree / "reco/all.yaml").write_text(_helm(service, _wired("reco-ranker", "reco")))
    fraud = _wired("fraud-scorer", "payments-risk") if fraud_as_rollout else \
        _deployment("fraud-scorer", "payments-risk")
    (tree / "payments/fraud.yaml").write_text(yaml.safe_dump(fraud))
    search = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
              "metadata": {"name": "search", "namespace": "search"},
              "spec": {"strategy": {"canary": {"steps": [
                  {"analysis": {"templates": [{"templateName": "search-success"}]}},
                  {"analysis": {"templates": [{"templateName": "global-errors", "clusterScope": True}]}},
                  {"setWeight": 50}]}}}}
    cluster = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate",
               "metadata": {"name": "global-errors"}, "spec": {"metrics": []}}
    docs = [search, cluster]
    if search_template:
        docs.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                     "metadata": {"name": "search-success", "namespace": "search"}, "spec": {"metrics": []}})
    (tree / "search/kustomize-build.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                                      "items": docs}))
    return tree


def _audit(tree: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "--root", str(REPO), str(tree), *extra])
    return result.exit_code, result.output


def test_audit_reports_every_unenforced_model(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    code, out = _audit(tree)
    assert code == 1, out
    assert "payments/fraud.yaml:1: error: [deployment-not-rollout] document 0: Deployment payments-risk/fraud-scorer " \
           "serves model fraud-scorer (specs/fraud-scorer.yaml)" in out
    assert "[missing-template] document 0: Rollout search/search references AnalysisTemplate 'search-success'" in out
    assert "global-errors" not in out  # the ClusterAnalysisTemplate is there
    assert "reco" not in out.split("driftgate audit:")[0].replace("fraud", "")  # reco-ranker is wired
    assert "fix: Convert it to an Argo Rollout" in out
    assert out.rstrip().endswith("driftgate audit: 2 finding(s) (deployment-not-rollout, missing-template)")


def test_audit_names_a_broken_wiring_and_a_missing_rollout(tmp_path: Path) -> None:
    tree = _tree(tmp_path, fraud_as_rollout=True, search_template=True)
    reco = tree / "reco/all.yaml"
    docs = [d for d in yaml.safe_load_all(reco.read_text()) if d]
    docs[1]["spec"]["strategy"]["canary"]["steps"] = docs[1]["spec"]["strategy"]["canary"]["steps"][1:]
    reco.write_text(_helm(*docs))
    (tree / "payments/fraud.yaml").unlink()
    code, out = _audit(tree)
    assert code == 1, out
    assert "[unwired-rollout]" in out and "freeze gate (reco-ranker-freeze-gate)" in out
    assert "specs/fraud-scorer.yaml: error: [missing-rollout] no Rollout payments-risk/fraud-scorer" in out


def test_a_fully_enforced_tree_passes(tmp_path: Path) -> None:
    code, out = _audit(_tree(tmp_path, fraud_as_rollout=True, search_template=True))
    assert code == 0, out
    assert "driftgate audit: 0 finding(s)" in out


def test_sarif_and_github_output(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    report = tmp_path / "audit.sarif"
    code, _ = _audit(tree, "--format", "sarif", "--output", str(report))
    assert code == 1
    doc = json.loads(report.read_text())
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"deployment-not-rollout", "missing-template",
                                                                   "missing-rollout", "unwired-rollout"}
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"deployment-not-rollout", "missing-template"}
    loc = results["deployment-not-rollout"]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("payments/fraud.yaml") and loc["region"]["startLine"] == 1
    assert all(r["level"] == "error" for r in run["results"])
    code, out = _audit(tree, "--format", "github")
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("::error file=") for line in lines)
    assert "title=driftgate deployment-not-rollout::" in out


def test_an_unreadable_manifest_is_an_error(tmp_path: Path) -> None:
    tree = _tree(tmp_path, fraud_as_rollout=True, search_template=True)
    (tree / "broken.yaml").write_text("kind: [unclosed\n")
    code, out = _audit(tree)
    assert code == 1 and "broken.yaml" in out
