"""Argo Rollouts' own code decides the generated AnalysisTemplates (tests/argo_eval: Argo Rollouts v1.10.1's
``utils/evaluate`` and ``metricproviders/prometheus``, built from the Go module proxy), and a real
Alertmanager applies the generated inhibition.

* every metric's conditions on the results Prometheus can give (empty, NaN, 0, 1, a scalar):
  the auto metrics fail exactly when their alert fires, the review metrics pause (Inconclusive),
  ``enforcement-live`` and the freeze gate fail closed on an empty result;
* the generated queries through Argo's Prometheus provider against a real Prometheus (2.x and 3.x),
  without driftgate's rules loaded (the gate and ``enforcement-live`` fail) and with them (they pass);
* the generated Rollout wiring (kustomize Component) validates against the upstream Rollout CRD;
* Alertmanager inhibits a manual page only for the same model, version and signal as an automatic one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate import pipeline
from driftgate.model import NoData
from driftgate.render.verify import patched_stubs
from driftgate.validate import crd
from tests.conftest import PROMETHEUS_FLAVOURS, REPO, _missing, tool, toolset
from tests.promserver import PrometheusServer, alertmanager_server

pytestmark = pytest.mark.tools

MODELS = ("fraud-scorer", "reco-ranker")


def argo_eval() -> str:
    path = toolset.ARGO_EVAL
    if not path.is_file():
        _missing(f"Argo Rollouts driver {path} (python scripts/tools.py)")
    return str(path)


def decide(requests: list[dict[str, Any]]) -> list[dict[str, str]]:
    text = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run([argo_eval()], input=text, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(requests)
    return out


def _templates(model: str) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((REPO / "generated/argo" / f"{model}.yaml").read_text()) if d]
    return {d["metadata"]["name"]: d for d in docs}


def _no_data(model: str, metric: str) -> NoData:
    from driftgate.spec.load import load_specs

    (spec,) = load_specs(REPO, REPO / "specs", model, check_exports=False)
    slug = metric.rsplit("-", 1)[0]
    return next(s.no_data for s in spec.signals if s.slug == slug)


RESULTS: dict[str, Any] = {"empty": [], "nan": ["NaN"], "zero": [0.0], "one": [1.0], "two": [2.0]}


def _expected(model: str, name: str) -> dict[str, str]:
    if name == "enforcement-live" or name == "rollout-freeze":
        ok = "one" if name == "enforcement-live" else "zero"
        bad = "zero" if name == "enforcement-live" else "one"
        return {"empty": "Failed", "nan": "Failed", ok: "Successful", bad: "Failed"}
    missing = {NoData.PASS: "Successful", NoData.FAIL: "Failed", NoData.INCONCLUSIVE: "Inconclusive"}[
        _no_data(model, name)]
    fired = "Failed" if name.endswith("-auto") else "Inconclusive"
    return {"empty": missing, "nan": missing, "zero": "Successful", "one": fired, "two": fired}


@pytest.mark.parametrize("model", MODELS)
def test_conditions_decided_by_argo(model: str) -> None:
    cases = []
    for template in _templates(model).values():
        for metric in template["spec"]["metrics"]:
            for label, want in _expected(model, metric["name"]).items():
                cases.append((metric, label, want))
    got = decide([{"metric": m, "result": RESULTS[label]} for m, label, _ in cases])
    wrong = [f"{m['name']} on {label}: {g['phase']} {g['message']}, expected {want}"
             for (m, label, want), g in zip(cases, got, strict=True) if g["phase"] != want]
    assert not wrong, "\n".join(wrong)
    names = [m["name"] for m, _, _ in cases]
    assert "enforcement-live" in names and "rollout-freeze" in names
    assert any(n.endswith("-review") for n in names)


def test_every_auto_metric_of_an_enforced_model_fails_on_its_alert() -> None:
    metrics = _templates("reco-ranker")["reco-ranker-rollback-criteria"]["spec"]["metrics"]
    auto = [m for m in metrics if m["name"].endswith("-auto")]
    assert {m["name"] for m in auto} >= {"score-drift-auto", "error-ratio-auto"}
    for m in auto:
        assert 'alertname=\\"DriftgateAutoRollback\\"' in json.dumps(m["provider"]["prometheus"]["query"])
        assert "count" not in m  # measures until the rollout completes
        assert m["failureLimit"] == 0 and m["interval"] == "1m" and m["initialDelay"] == "2m"
    # The provisional model never fails a rollout on a signal: it only pauses.
    fraud = _templates("fraud-scorer")["fraud-scorer-rollback-criteria"]["spec"]["metrics"]
    assert not [m for m in fraud if m["name"].endswith("-auto")]


def test_a_scalar_result_is_an_error_not_a_pass() -> None:
    metric = _templates("reco-ranker")["reco-ranker-rollback-criteria"]["spec"]["metrics"][1]
    (got,) = decide([{"metric": metric, "result": 0.0}])
    assert got["phase"] == "Error"


@pytest.mark.parametrize("model", MODELS)
def test_rollout_component_validates_against_the_rollout_crd(model: str) -> None:
    text = (REPO / "generated/argo" / f"{model}-rollout/kustomization.yaml").read_text()
    (component,) = [d for d in yaml.safe_load_all(text) if d]
    assert component["kind"] == "Component"
    (rollout,) = patched_stubs(component)
    assert crd.validate(rollout) == []
    canary = rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    names = set(_templates(model))
    assert steps[0]["analysis"]["templates"][0]["templateName"] in names  # the freeze gate first
    assert canary["analysis"]["templates"][0]["templateName"] in names
    assert canary["analysis"]["args"][0]["valueFrom"] == {"podTemplateHashValue": "Latest"}
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights[0] < 100 and weights[-1] == 100
    assert "pause" in steps[-1]  # the bake at full weight, the previous ReplicaSet still up
    assert rollout["spec"]["rollbackWindow"] == {"revisions": 2}  # an undo skips the steps and the frozen gate
    # A misspelt field is caught by the same schema.
    rollout["spec"]["strategy"]["canary"]["steps"][1]["setWieght"] = 5
    assert any("setWieght" in m for m in crd.validate(rollout))


# --- Argo's Prometheus provider against a real Prometheus --------------------------------------------


def _substituted(metric: dict[str, Any], address: str, canary: str) -> dict[str, Any]:
    m = json.loads(json.dumps(metric).replace("{{args.canary-hash}}", canary))
    m["provider"]["prometheus"]["address"] = address
    return m


def _measure(metrics: list[dict[str, Any]], address: str, canary: str = "abc123") -> dict[str, str]:
    got = decide([{"metric": _substituted(m, address, canary), "measure": True} for m in metrics])
    return {m["name"]: g["phase"] for m, g in zip(metrics, got, strict=True)}


@pytest.mark.parametrize("flavour", PROMETHEUS_FLAVOURS)
def test_gate_and_analysis_fail_closed_without_the_rules(flavour: str, tmp_path: Path) -> None:
    binary = tool("prometheus", flavour)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"},
                                      "rule_files": [str(rules_dir / "*.yaml")]}))
    templates = _templates("reco-ranker")
    criteria = templates["reco-ranker-rollback-criteria"]["spec"]["metrics"]
    gate = templates["reco-ranker-freeze-gate"]["spec"]["metrics"]
    watched = [gate[0], criteria[0], next(m for m in criteria if m["name"] == "score-drift-auto")]
    with PrometheusServer(binary, tmp_path / "data", config, tmp_path / "prometheus.log") as server:
        without = _measure(watched, server.url)
        assert without == {"rollout-freeze": "Failed", "enforcement-live": "Failed",
                           "score-drift-auto": "Inconclusive"}, without  # no rules: nothing is enforced
        shutil.copy(REPO / "generated/prometheus/rules/reco-ranker.rules.yaml", rules_dir / "reco.yaml")
        server.reload()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with_rules = _measure(watched, server.url)
            if with_rules["enforcement-live"] == "Successful":
                break
            time.sleep(0.5)
        # Rules loaded: the gate opens (no freeze), the analysis is live; a canary with no series yet
        # follows the signal's no_data policy (inconclusive) until its series exist.
        assert with_rules == {"rollout-freeze": "Successful", "enforcement-live": "Successful",
                              "score-drift-auto": "Inconclusive"}, with_rules


# --- Alertmanager inhibition ---------------------------------------------------------------------------


def _post(url: str, body: Any) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_alertmanager_inhibits_only_the_same_model_version_and_signal(tmp_path: Path) -> None:
    binary = tool("alertmanager", "alertmanager-0.25")  # the server is Debian's (see scripts/tools.py)
    config = tmp_path / "alertmanager.yml"
    config.write_text(pipeline.render_files(REPO, REPO / "specs")["generated/alertmanager/alertmanager.yml"])
    with alertmanager_server(binary, config, tmp_path) as url:
        base = {"model": "reco-ranker", "namespace": "reco", "team": "ranking", "window": "fast"}
        v = "rollouts_pod_template_hash"

        def alert(name: str, rollback: str, version: str, signal: str) -> dict[str, Any]:
            return {"labels": {**base, "alertname": name, "rollback": rollback, v: version, "signal": signal,
                               "severity": "critical" if rollback == "auto" else "warning"}}

        _post(f"{url}/api/v2/alerts", [
            alert("DriftgateAutoRollback", "auto", "new", "score_drift"),
            alert("DriftgateManualReview", "manual", "new", "score_drift"),   # same version and signal
            alert("DriftgateManualReview", "manual", "new", "latency_p99"),   # another signal
            alert("DriftgateManualReview", "manual", "old", "score_drift"),   # another version
        ])
        deadline = time.monotonic() + 30
        inhibited: dict[tuple[str, str, str], bool] = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
                alerts = json.loads(resp.read())
            inhibited = {(a["labels"]["alertname"], a["labels"][v], a["labels"]["signal"]):
                         bool(a["status"]["inhibitedBy"]) for a in alerts}
            if len(inhibited) == 4 and inhibited[("DriftgateManualReview", "new", "score_drift")]:
                break
            time.sleep(0.5)
        assert inhibited == {
            ("DriftgateAutoRollback", "new", "score_drift"): False,
            ("DriftgateManualReview", "new", "score_drift"): True,
            ("DriftgateManualReview", "new", "latency_p99"): False,
            ("DriftgateManualReview", "old", "score_drift"): False,
        }


# --- driftgate check --rollouts: the user's own Rollouts --------------------------------------------------


def _wired_rollout(model: str, namespace: str, rollout: str) -> dict[str, Any]:
    """What `kustomize build` gives for a user's Rollout with the generated Component applied."""
    text = (REPO / "generated/argo" / f"{model}-rollout/kustomization.yaml").read_text()
    (component,) = [d for d in yaml.safe_load_all(text) if d]
    (obj,) = patched_stubs(component)
    obj["metadata"] = {"name": rollout, "namespace": namespace}
    return obj


def _check(paths: list[str]) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "driftgate", "check", "--root", str(REPO),
                           *(a for p in paths for a in ("--rollouts", p))],
                          capture_output=True, text=True, timeout=300, check=False)


def test_check_rollouts_accepts_wired_rollouts_and_names_what_is_missing(tmp_path: Path) -> None:
    reco = _wired_rollout("reco-ranker", "reco", "reco-ranker")
    fraud = _wired_rollout("fraud-scorer", "payments-risk", "fraud-scorer")
    tree = tmp_path / "manifests"
    (tree / "reco").mkdir(parents=True)
    (tree / "reco" / "rollout.yaml").write_text(yaml.safe_dump(reco))
    (tree / "fraud.yaml").write_text("---\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [fraud]}))
    ok = _check([str(tree)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "generated/ is up to date" in ok.stdout
    # Unwired: the gate removed, the analysis pointing elsewhere, the hash argument dropped.
    broken = json.loads(json.dumps(reco))
    broken["spec"]["strategy"]["canary"]["steps"] = broken["spec"]["strategy"]["canary"]["steps"][1:]
    broken["spec"]["strategy"]["canary"]["analysis"]["args"] = []
    (tree / "reco" / "rollout.yaml").write_text(yaml.safe_dump(broken))
    bad = _check([str(tree)])
    assert bad.returncode == 1
    assert "reco/rollout.yaml: error: document 0: Rollout reco/reco-ranker: spec.strategy.canary.steps[0]" in bad.stdout
    assert "freeze gate (reco-ranker-freeze-gate)" in bad.stdout
    assert "spec.strategy.canary.analysis.args: no 'canary-hash' argument" in bad.stdout
    no_window = json.loads(json.dumps(reco))
    del no_window["spec"]["rollbackWindow"]
    (tree / "reco" / "rollout.yaml").write_text(yaml.safe_dump(no_window))
    assert "spec.rollbackWindow.revisions: missing" in _check([str(tree)]).stdout
    other = json.loads(json.dumps(reco))
    other["spec"]["strategy"]["canary"]["analysis"]["templates"] = [{"templateName": "something-else"}]
    (tree / "reco" / "rollout.yaml").write_text(yaml.safe_dump(other))
    assert "does not reference reco-ranker-rollback-criteria" in _check([str(tree)]).stdout
    # A model whose Rollout is nowhere: its criteria guard nothing.
    (tree / "fraud.yaml").unlink()
    missing = _check([str(tree)])
    assert missing.returncode == 1
    assert "specs/fraud-scorer.yaml: error: rollout: no Rollout payments-risk/fraud-scorer" in missing.stdout
    blue = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "fraud-scorer", "namespace": "payments-risk"},
            "spec": {"strategy": {"blueGreen": {"activeService": "x"}}}}
    (tree / "fraud.yaml").write_text(yaml.safe_dump(blue))
    assert "spec.strategy.canary: missing" in _check([str(tree)]).stdout
