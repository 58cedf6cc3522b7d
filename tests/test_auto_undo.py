"""The opt-in automatic undo after completion (release.auto_undo), end to end with the real engines.

* the spec: off by default, a bearer token required, images pinned, refused in shadow mode;
* the rendered objects: every Kubernetes name within its bound, for any model name;
* the chain: a real Alertmanager (Debian's 0.25) routes a release's ``DriftgateAutoRollback`` to the
  undo receiver, once per version, with the bearer token, and never an established version's
  ``DriftgateDrift`` or a shadow-mode alert; the notification it really posts is then decided by Argo
  Events v1.9.8's own filter and standard Kubernetes trigger code (tests/argo_events_eval): one Job whose
  guards name the bad version, and nothing for anything else.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from driftgate import pipeline
from driftgate.errors import SpecError
from driftgate.model import AutoUndo, SecretRef
from driftgate.render.undo import bounded, undo
from driftgate.spec.load import load_specs
from tests.conftest import REPO, tool
from tests.promserver import alertmanager_server, free_port
from tests.test_spec_errors import GOOD

HASH = "7c9f8d6b5"
Posted = tuple[str, str, dict[str, Any]]  # (path, Authorization header, JSON body) of one POST
MODEL = "reco-ranker"


@pytest.fixture(scope="module")
def files() -> dict[str, Any]:
    return pipeline.render_files(REPO, REPO / "specs")


def _load(write_tree: Callable[[dict[str, str]], Path], release: str) -> Any:
    root = write_tree({"specs/demo.yaml": GOOD.replace("signals:\n", release + "signals:\n", 1),
                       "exports/demo.json": "{}"})
    return load_specs(root, root / "specs")


def _problems(write_tree: Callable[[dict[str, str]], Path], release: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        _load(write_tree, release)
    return [p.format() for p in info.value.problems]


# --- the spec -----------------------------------------------------------------------------------------


def test_off_by_default_and_on_with_a_token(write_tree: Callable[[dict[str, str]], Path]) -> None:
    (spec,) = _load(write_tree, "")
    assert spec.release.auto_undo is None
    (spec,) = _load(write_tree, "release:\n  auto_undo: {token: {secret: demo-alerting, key: undo}}\n")
    assert spec.release.auto_undo == AutoUndo(token=SecretRef("demo-alerting", "undo"))
    (spec,) = _load(write_tree, "release:\n  auto_undo: {token: {secret: a, key: b}, enabled: false}\n")
    assert spec.release.auto_undo is None


@pytest.mark.parametrize(("release", "expected"), [
    ("release:\n  auto_undo: true\n",
     "specs/demo.yaml:25:3: error: release.auto_undo: expected false or a mapping with token: {secret, key}"),
    ("release:\n  auto_undo: s3cr3tvalue\n", "got a string of 11 characters (the value is not shown"),
    ("release:\n  auto_undo: {namespace: argo-events}\n",
     "specs/demo.yaml:25:3: error: release.auto_undo: missing required key 'token'"),
    ("release:\n  auto_undo: {token: hunter2hunter2}\n",
     "specs/demo.yaml:25:15: error: release.auto_undo.token: expected a secret reference"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}, image: quay.io/argoproj/kubectl-argo-rollouts}\n",
     "release.auto_undo.image: expected a container image with a tag or a digest"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}, kubectl_image: 'kubectl:v1 ; rm'}\n",
     "release.auto_undo.kubectl_image: expected a container image with a tag or a digest"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}, namespace: Argo_Events}\n",
     "release.auto_undo.namespace: expected a DNS-1123 label"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}, namespce: x}\n",
     "release.auto_undo.namespce: unknown key 'namespce' (did you mean 'namespace'?)"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}, enabled: 'yes'}\n",
     "release.auto_undo.enabled: expected true or false, got 'yes'"),
    ("release:\n  auto_undo: {token: {secret: a, key: b}}\nanalysis: {dry_run: true}\n",
     "release.auto_undo: expected no automatic undo in shadow mode"),
], ids=["true", "string", "no-token", "literal-token", "untagged-image", "bad-image", "namespace", "typo",
        "enabled", "shadow"])
def test_bad_auto_undo(write_tree: Callable[[dict[str, str]], Path], release: str, expected: str) -> None:
    problems = _problems(write_tree, release)
    assert len(problems) == 1 and expected in problems[0], problems
    assert "s3cr3tvalue" not in problems[0] and "hunter2" not in problems[0]


# --- names ----------------------------------------------------------------------------------------------


def test_bounded_is_deterministic_and_within_the_bound() -> None:
    assert bounded("short", 10) == "short"
    long = "driftgate-" + "a" * 60
    out = bounded(long, 47)
    assert len(out) == 47 and out == bounded(long, 47) and out != bounded(long + "b", 47)
    assert bounded("a" * 38 + "-" + "b" * 20, 47)[38] == "-" and "--" not in bounded("a" * 38 + "-" + "b" * 20, 47)


def test_names_fit_kubernetes_for_the_longest_model_name() -> None:
    (spec,) = [s for s in load_specs(REPO, REPO / "specs", check_exports=False) if s.name == MODEL]
    name = "m" + "x" * 62  # 63 characters: the longest model name
    u = undo(dataclasses.replace(spec, name=name))
    assert u is not None
    assert len(u.event_source) + len("-eventsource-svc") <= 63  # Argo Events' Service for the EventSource
    assert all(len(n) <= 63 for n in (u.sensor_account, u.trigger_role, u.undo_account))
    assert len(u.sensor) <= 39 and len(u.job_prefix) + 5 <= 63 and u.job_prefix.endswith("-")
    assert name in u.url and u.url.startswith(f"http://{u.event_source}-eventsource-svc.argo-events.svc:12000/")


def test_only_models_that_opt_in_get_the_objects(files: dict[str, Any]) -> None:
    assert "generated/argo-events/reco-ranker.yaml" in files
    assert not any(p.startswith("generated/argo-events/fraud-scorer") for p in files)
    am = yaml.safe_load(files["generated/alertmanager/alertmanager.yml"])
    assert not any(r["name"].startswith("fraud-scorer-auto-undo") for r in am["receivers"])


def test_the_token_is_referenced_on_both_sides(files: dict[str, Any]) -> None:
    docs = [d for d in yaml.safe_load_all(files["generated/argo-events/reco-ranker.yaml"]) if d]
    (source,) = [d for d in docs if d["kind"] == "EventSource"]
    assert source["spec"]["webhook"]["alertmanager"]["authSecret"] == {"name": "reco-alerting",
                                                                      "key": "auto-undo-token"}
    (config,) = [d for d in yaml.safe_load_all(files["generated/alertmanager/reco-ranker.yaml"]) if d]
    (receiver,) = [r for r in config["spec"]["receivers"] if r["name"] == "reco-ranker-auto-undo"]
    assert receiver["webhookConfigs"][0]["httpConfig"]["authorization"]["credentials"] == {
        "name": "reco-alerting", "key": "auto-undo-token"}


# --- the chain: Alertmanager -> Argo Events -> a guarded Job --------------------------------------------


class _Capture(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[Posted]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture()
def alertmanager_posts(tmp_path: Path, files: dict[str, Any]) -> Iterator[tuple[str, list[Posted]]]:
    """A real Alertmanager on the generated configuration, the undo receiver pointed at a local server."""
    binary = tool("alertmanager", "alertmanager-0.25")
    (spec,) = [s for s in load_specs(REPO, REPO / "specs", check_exports=False) if s.name == MODEL]
    u = undo(spec)
    assert u is not None and spec.release.auto_undo is not None
    token = spec.release.auto_undo.token
    (tmp_path / "token").write_text("the-undo-token\n")
    hook_port = free_port()
    text = files["generated/alertmanager/alertmanager.yml"]
    assert text.count(u.url) == 1
    text = text.replace(u.url, f"http://127.0.0.1:{hook_port}{u.endpoint}")
    text = text.replace(f"/etc/alertmanager/secrets/{token.name}/{token.key}", str(tmp_path / "token"))
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    _Capture.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with alertmanager_server(binary, config, tmp_path) as url:
            yield url, _Capture.received
    finally:
        server.shutdown()


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _alert(name: str, rollback: str, version: str, **extra: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "model": MODEL, "namespace": "reco", "rollback": rollback,
                       "rollouts_pod_template_hash": version, "severity": "critical", "signal": "score_drift",
                       "window": "fast", **extra},
            "annotations": {"summary": "test"}}


def test_a_release_breach_reaches_argo_events_and_creates_one_guarded_job(
        alertmanager_posts: tuple[str, list[Posted]], files: dict[str, Any]) -> None:
    from tests.argo_events import decide

    url, received = alertmanager_posts
    _post(url, [
        _alert("DriftgateAutoRollback", "auto", HASH),
        _alert("DriftgateAutoRollback", "auto", HASH, signal="score_shift"),  # same version: one notification
        _alert("DriftgateDrift", "drift", "bcdfg2456"),                         # an established version
        _alert("DriftgateAutoRollback", "auto", "zzzz22222", shadow="true"),    # shadow mode
    ])
    deadline = time.monotonic() + 40  # group_wait 10s
    while time.monotonic() < deadline and not received:
        time.sleep(0.5)
    time.sleep(3)  # anything else that was going to arrive in the same flush
    assert len(received) == 1, received
    path, authorization, payload = received[0]
    assert path == "/driftgate/reco-ranker" and authorization == "Bearer the-undo-token"
    assert payload["status"] == "firing" and payload["commonLabels"]["rollouts_pod_template_hash"] == HASH
    assert len(payload["alerts"]) == 2

    (sensor,) = [d for d in yaml.safe_load_all(files["generated/argo-events/reco-ranker.yaml"])
                 if d and d["kind"] == "Sensor"]
    decision = decide(sensor, payload)
    assert decision["passed"] is True, decision
    (trigger,) = decision["triggers"]
    job = trigger["created"]
    assert trigger["error"] is None and job["kind"] == "Job" and job["metadata"]["namespace"] == "reco"
    assert job["metadata"]["annotations"]["driftgate.io/bad-version"] == HASH
    pod = job["spec"]["template"]["spec"]
    guard, completed = pod["initContainers"]
    assert guard["args"][-1] == f"--for=jsonpath={{.status.currentPodHash}}={HASH}"
    assert completed["args"][-1] == "--for=jsonpath={.status.phase}=Healthy"
    assert pod["containers"][0]["args"] == ["undo", "reco-ranker", "-n", "reco"]
    assert pod["serviceAccountName"] == "driftgate-reco-ranker-undo" and pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0

    # The same notification, altered: Argo Events' own filters refuse every variant.
    for change in ({"status": "resolved"},
                   {"commonLabels": {**payload["commonLabels"], "alertname": "DriftgateManualReview"}},
                   {"commonLabels": {**payload["commonLabels"], "model": "fraud-scorer"}},
                   {"commonLabels": {**payload["commonLabels"], "namespace": "elsewhere"}},
                   {"commonLabels": {**payload["commonLabels"], "rollouts_pod_template_hash": "x;rm -rf /"}},
                   {"commonLabels": {k: v for k, v in payload["commonLabels"].items()
                                     if k != "rollouts_pod_template_hash"}}):  # two versions in one group
        refused = decide(sensor, {**payload, **change})
        assert refused["passed"] is False and not any(t.get("created") for t in refused["triggers"]), change


def test_render_validates_the_job_the_sensor_creates(files: dict[str, Any]) -> None:
    """A misspelt key inside the Sensor's embedded Job (free-form to the Sensor's schema) stops the render."""
    from driftgate.errors import RenderError
    from driftgate.render.verify import verify
    from driftgate.validate import crd

    source = crd.locate(REPO)  # $DRIFTGATE_CRDS (conftest): Argo Events' schema among them
    rel = "generated/argo-events/reco-ranker.yaml"
    verify({rel: files[rel]}, source)  # as rendered: valid
    broken = files[rel].replace("                backoffLimit: 0\n", "                backofLimit: 0\n")
    assert broken != files[rel]
    with pytest.raises(RenderError) as info:
        verify({rel: broken}, source)
    assert "generated/argo-events/reco-ranker.yaml[2].spec.triggers[0].template.k8s.source.resource" in str(info.value)
    assert "spec.backofLimit: unknown field (did you mean 'backoffLimit'?)" in str(info.value)


def test_make_gen_stops_on_an_undo_in_shadow_mode_and_writes_nothing(tmp_path: Path) -> None:
    """The misconfiguration end to end: the console script exits 1 naming file, line and key; no file changes."""
    root = tmp_path / "infra"
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    spec = root / "specs" / f"{MODEL}.yaml"
    spec.write_text(spec.read_text().replace("analysis:\n", "analysis:\n  dry_run: true\n", 1))
    before = {p: p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, "-m", "driftgate", "render", "--root", str(root)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "specs/reco-ranker.yaml:35:3: error: release.auto_undo: expected no automatic undo in shadow mode" \
        in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file()} == before
    assert not (root / ".driftgate").exists()
