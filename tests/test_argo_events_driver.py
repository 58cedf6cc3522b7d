"""Argo Events v1.9.8's own code decides the auto-undo Sensor driftgate renders for the example
(generated/argo-events/reco-ranker.yaml, rendered afresh here), through tests/argo_events_eval:

* a firing ``DriftgateAutoRollback`` notification for the model passes the filters and the k8s trigger
  creates one guarded Job whose bad version comes from the notification's ``commonLabels``;
* resolved notifications, other alerts, other models, a hash outside the pod-template-hash alphabet and
  a group without one common hash (two versions) are refused by the filters, and nothing is created;
* the Argo Events semantics the Sensor relies on: string data filters are unanchored regexps (a literal value
  lets look-alikes such as namespace ``reco-staging`` through; the rendered Sensor anchors every value and
  refuses them), a missing filter path is an error that discards the event, a missing parameter ``dataKey``
  fails the trigger.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.argo_events import decide
from tests.conftest import REPO

pytestmark = pytest.mark.tools

HASH = "7c9f8d6b5"
# Label values a literal (unanchored) string filter lets through: another namespace, model, alert, mode.
LOOK_ALIKES = [{"namespace": "reco-staging"}, {"model": "reco-ranker-canary"},
               {"alertname": "NotDriftgateAutoRollback"}, {"rollback": "no-auto"}]


@pytest.fixture(scope="module")
def sensor() -> dict[str, Any]:
    from driftgate import pipeline

    text = pipeline.render_files(REPO, REPO / "specs", "reco-ranker")["generated/argo-events/reco-ranker.yaml"]
    (found,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Sensor"]
    return found


def _payload(status: str = "firing", **labels: str | None) -> dict[str, Any]:
    """An Alertmanager (webhook version 4) notification for one group of reco-ranker alerts."""
    common = {"alertname": "DriftgateAutoRollback", "model": "reco-ranker", "namespace": "reco", "rollback": "auto",
              "rollouts_pod_template_hash": HASH, "severity": "critical"}
    common = {k: v for k, v in {**common, **labels}.items() if v is not None}
    alert = {"status": status, "labels": {**common, "signal": "score_drift"}, "annotations": {"summary": "drift"},
             "startsAt": "2026-12-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "0123456789abcdef"}
    return {"version": "4", "groupKey": '{}:{model="reco-ranker"}', "truncatedAlerts": 0, "status": status,
            "receiver": "driftgate-undo-reco-ranker", "groupLabels": {"model": "reco-ranker"},
            "commonLabels": common, "commonAnnotations": {"summary": "drift"},
            "externalURL": "http://alertmanager:9093", "alerts": [alert]}


def _refused(decision: dict[str, Any]) -> None:
    assert decision["passed"] is False, decision
    assert decision["triggers"] == [], decision


def test_a_firing_auto_rollback_creates_one_guarded_undo_job(sensor: dict[str, Any]) -> None:
    decision = decide(sensor, _payload(), dependency="breach")
    assert decision["passed"] is True and decision["filter_error"] is None, decision
    (trigger,) = decision["triggers"]
    assert trigger["name"] == "undo" and trigger["error"] is None, trigger
    job = trigger["created"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["namespace"] == "reco"
    assert meta["annotations"]["driftgate.io/bad-version"] == HASH
    # The fake dynamic client keeps generateName as is; the API server would name the Job.
    assert meta["generateName"] == "reco-ranker-undo-" and "name" not in meta
    assert meta["labels"]["events.argoproj.io/sensor"] == "driftgate-reco-ranker-undo"
    assert meta["labels"]["events.argoproj.io/trigger"] == "undo"
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "driftgate-reco-ranker-undo" and pod["restartPolicy"] == "Never"
    # operation: append concatenates the label onto the template's "...currentPodHash}=".
    assert pod["initContainers"][0]["args"][5] == f"--for=jsonpath={{.status.currentPodHash}}={HASH}"
    assert pod["initContainers"][1]["args"][5] == "--for=jsonpath={.status.phase}=Healthy"
    (undo,) = pod["containers"]
    assert undo["args"] == ["undo", "reco-ranker", "-n", "reco"]
    assert job["spec"]["backoffLimit"] == 0


def test_the_first_dependency_is_the_default(sensor: dict[str, Any]) -> None:
    assert decide(sensor, _payload())["passed"] is True


def test_a_resolved_notification_creates_nothing(sensor: dict[str, Any]) -> None:
    _refused(decide(sensor, _payload(status="resolved")))


def test_a_manual_review_alert_creates_nothing(sensor: dict[str, Any]) -> None:
    _refused(decide(sensor, _payload(alertname="DriftgateManualReview", rollback="review")))
    _refused(decide(sensor, _payload(alertname="DriftgateManualReview")))


def test_another_model_creates_nothing(sensor: dict[str, Any]) -> None:
    _refused(decide(sensor, _payload(model="fraud-scorer")))


@pytest.mark.parametrize("bad", ["x;rm -rf", "x;rm -rf /", "7c9f8d6b5 ", "7C9F8D6B5", "abc", "7c9f8d6b5aa", ""])
def test_a_hash_outside_the_pod_template_hash_alphabet_creates_nothing(sensor: dict[str, Any], bad: str) -> None:
    # The filter's value is a Go regexp (filterData: regexp.Compile(value).Match), anchored in the contract.
    _refused(decide(sensor, _payload(rollouts_pod_template_hash=bad)))


def test_a_group_without_one_common_hash_is_discarded_with_a_filter_error(sensor: dict[str, Any]) -> None:
    # Two versions in one group: Alertmanager leaves the label out of commonLabels. A missing filter path
    # is an error in Argo Events (the Sensor logs "discarded due to filtering error" and drops the event).
    decision = decide(sensor, _payload(rollouts_pod_template_hash=None))
    _refused(decision)
    assert "path 'body.commonLabels.rollouts_pod_template_hash' does not exist" in decision["filter_error"]


def test_string_data_filters_are_unanchored_regexps(sensor: dict[str, Any]) -> None:
    # Argo Events semantics, independent of the contract's values: "reco" matches "reco-staging".
    loose = copy.deepcopy(sensor)
    filters = loose["spec"]["dependencies"][0]["filters"]["data"]
    (namespace,) = [f for f in filters if f["path"] == "body.commonLabels.namespace"]
    assert namespace["value"] == ["^reco$"]
    _refused(decide(loose, _payload(namespace="reco-staging")))
    namespace["value"] = ["reco"]  # a literal, as one might write it
    assert decide(loose, _payload(namespace="reco-staging"))["passed"] is True


@pytest.mark.parametrize("labels", LOOK_ALIKES)
def test_the_rendered_sensor_refuses_look_alike_label_values(sensor: dict[str, Any], labels: dict[str, str]) -> None:
    assert decide(sensor, _payload())["passed"] is True
    _refused(decide(sensor, _payload(**labels)))


def test_a_missing_data_key_fails_the_trigger_instead_of_creating_a_blank_guard(sensor: dict[str, Any]) -> None:
    # Without the hash filter the event passes, and the parameter's missing dataKey (no default value)
    # makes ResolveParamValue fail: the trigger errors, it does not create a Job with an empty hash.
    unguarded = copy.deepcopy(sensor)
    dep = unguarded["spec"]["dependencies"][0]
    dep["filters"]["data"] = [f for f in dep["filters"]["data"]
                              if f["path"] != "body.commonLabels.rollouts_pod_template_hash"]
    decision = decide(unguarded, _payload(rollouts_pod_template_hash=None))
    assert decision["passed"] is True, decision
    (trigger,) = decision["triggers"]
    assert trigger["created"] is None
    assert "unable to resolve 'breach' parameter value" in trigger["error"]
