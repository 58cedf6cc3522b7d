"""Strict validation against schema documents with ``definitions`` (driftgate.validate.crd): the Argo
Events JSON schema (EventSource, Sensor and the k8s.io/api types it embeds), fetched from the Go module
proxy by scripts/fetch_crds.py, and a small OpenAPI v2 (swagger.json) document for the generic parts."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate.validate import crd
from tests.conftest import REPO, fetch_crds

CONTRACT = REPO / "tests" / "data" / "argo_events_contract.yaml"
SCHEMA_NAME = "argo-events/schema.json"

ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: driftgate-reco-ranker-undo
  namespace: reco
  labels: {app.kubernetes.io/managed-by: driftgate}
rules:
- apiGroups: [argoproj.io]
  resources: [rollouts]
  resourceNames: [reco-ranker]
  verbs: [get, patch]
"""

ROLE_BINDING = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: driftgate-reco-ranker-undo
  namespace: reco
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: driftgate-reco-ranker-undo
subjects:
- kind: ServiceAccount
  name: driftgate-reco-ranker-undo
  namespace: reco
"""

PLACEHOLDER_SENSOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: sensors.argoproj.io
spec:
  group: argoproj.io
  names: {kind: Sensor, listKind: SensorList, plural: sensors, singular: sensor}
  scope: {scope}
  versions:
  - name: v1alpha1
    served: {served}
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [metadata, spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def load(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


@pytest.fixture(scope="module")
def schema_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upstream schema.json: from the suite's CRD directory, else fetched into a temporary one."""
    path = crd.reference_dir() / SCHEMA_NAME
    if not path.is_file():  # a CRD directory fetched before the file was added
        try:
            path = fetch_crds.fetch(tmp_path_factory.mktemp("fetched")) / SCHEMA_NAME
        except SystemExit as exc:
            pytest.fail(f"cannot fetch {SCHEMA_NAME} from the Go module proxy: {exc}")
    digest = next(d for _, _, name, d in fetch_crds.FILES if name == SCHEMA_NAME)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return path


@pytest.fixture(scope="module")
def events_dir(schema_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema directory holding only the Argo Events schema.json."""
    directory = tmp_path_factory.mktemp("events")
    (directory / "argo-events").mkdir()
    shutil.copy(schema_json, directory / SCHEMA_NAME)
    return directory


@pytest.fixture(scope="module")
def contract() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(CONTRACT.read_text(encoding="utf-8")) if doc}


@pytest.fixture
def sensor(contract: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(contract["Sensor"])


@pytest.fixture
def job(sensor: dict[str, Any]) -> dict[str, Any]:
    [(_, resource)] = crd.embedded_resources(sensor)
    return resource


def test_fetch_table_names_the_schema() -> None:
    assert ("github.com/argoproj/argo-events@v1.9.8", "api/jsonschema/schema.json") in {
        (module, inner) for module, inner, name, _ in fetch_crds.FILES if name == SCHEMA_NAME}


def test_definitions_become_served_entries(events_dir: Path) -> None:
    entries = {(e.group, e.kind, e.version): e for e in crd.known_versions(events_dir)}
    for key in [("argoproj.io", "EventSource", "v1alpha1"), ("argoproj.io", "Sensor", "v1alpha1"),
                ("batch", "Job", "v1"), ("", "ServiceAccount", "v1"),
                ("rbac.authorization.k8s.io", "Role", "v1"), ("rbac.authorization.k8s.io", "RoleBinding", "v1")]:
        entry = entries[key]
        assert entry.served and entry.definition is not None and entry.namespaced is None
    assert entries[("", "ServiceAccount", "v1")].api_version == "v1"
    assert entries[("batch", "Job", "v1")].definition == "io.k8s.api.batch.v1.Job"


def test_contract_objects_are_valid(events_dir: Path, contract: dict[str, dict[str, Any]]) -> None:
    assert set(contract) == {"ServiceAccount", "EventSource", "Sensor", "Role", "RoleBinding"}
    docs = [d for d in yaml.safe_load_all(CONTRACT.read_text(encoding="utf-8")) if d]
    assert len(docs) == 8  # two ServiceAccounts, Roles and RoleBindings: the Sensor's and the Job's
    for doc in docs:
        assert crd.validate(doc, events_dir) == [], doc["kind"]
    for text in (ROLE, ROLE_BINDING):
        assert crd.validate(load(text), events_dir) == []


def test_embedded_job_is_found_and_valid(events_dir: Path, sensor: dict[str, Any]) -> None:
    [(path, job)] = crd.embedded_resources(sensor)
    assert path == ("spec", "triggers", 0, "template", "k8s", "source", "resource")
    assert crd.format_path(path) == "spec.triggers[0].template.k8s.source.resource"
    assert job["kind"] == "Job" and "name" not in job["metadata"]  # generateName is enough
    assert crd.validate(job, events_dir) == []


def test_embedded_resources_of_other_objects(sensor: dict[str, Any]) -> None:
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "w-"}}
    sensor["spec"]["triggers"].append({"template": {"name": "wf", "argoWorkflow": {
        "operation": "submit", "source": {"resource": workflow}}}})
    sensor["spec"]["triggers"].append({"template": {"name": "inline", "k8s": {"source": {"inline": "kind: Job"}}}})
    sensor["spec"]["triggers"].append("not a trigger")
    assert [p for p, _ in crd.embedded_resources(sensor)] == [
        ("spec", "triggers", 0, "template", "k8s", "source", "resource"),
        ("spec", "triggers", 1, "template", "argoWorkflow", "source", "resource"),
    ]
    assert crd.embedded_resources(sensor)[1][1] is workflow
    assert crd.embedded_resources({**sensor, "kind": "EventSource"}) == []
    assert crd.embedded_resources({**sensor, "apiVersion": "example.com/v1"}) == []
    assert crd.embedded_resources({"kind": "Sensor", "apiVersion": "argoproj.io/v1alpha1", "spec": []}) == []
    assert crd.embedded_resources([sensor]) == []


def test_misspelt_keys_through_refs(events_dir: Path, sensor: dict[str, Any], job: dict[str, Any]) -> None:
    sensor["spec"]["dependancies"] = sensor["spec"].pop("dependencies")
    assert crd.validate(sensor, events_dir) == [
        "spec: missing required field 'dependencies'",
        "spec.dependancies: unknown field (did you mean 'dependencies'?)",
    ]
    pod = job["spec"]["template"]["spec"]
    pod["serviceAcountName"] = pod.pop("serviceAccountName")
    pod["containers"][0]["imagePullPolice"] = "Always"
    assert crd.validate(job, events_dir) == [  # document order: the renamed key now comes last
        "spec.template.spec.containers[0].imagePullPolice: unknown field (did you mean 'imagePullPolicy'?)",
        "spec.template.spec.serviceAcountName: unknown field (did you mean 'serviceAccountName'?)",
    ]
    role = load(ROLE)
    role["rules"][0]["verb"] = role["rules"][0].pop("verbs")
    assert crd.validate(role, events_dir) == [
        "rules[0]: missing required field 'verbs'",
        "rules[0].verb: unknown field (did you mean 'verbs'?)",
    ]


def test_deep_sensor_typo(events_dir: Path, sensor: dict[str, Any]) -> None:
    sensor["spec"]["dependencies"][0]["filters"]["data"][0]["valu"] = ["x"]
    sensor["spec"]["triggers"][0]["template"]["k8s"]["parameters"][0]["src"]["datakey"] = "body"
    assert crd.validate(sensor, events_dir) == [
        "spec.dependencies[0].filters.data[0].valu: unknown field (did you mean 'value'?)",
        "spec.triggers[0].template.k8s.parameters[0].src.datakey: unknown field (did you mean 'dataKey'?)",
    ]


def test_wrong_types(events_dir: Path, job: dict[str, Any], contract: dict[str, dict[str, Any]]) -> None:
    job["spec"]["backoffLimit"] = "zero"
    job["spec"]["template"]["spec"]["containers"][0]["args"] = "undo"
    assert crd.validate(job, events_dir) == [
        "spec.backoffLimit: expected integer, got string",
        "spec.template.spec.containers[0].args: expected list, got string",
    ]
    event_source = copy.deepcopy(contract["EventSource"])
    port = event_source["spec"]["service"]["ports"][0]
    port["targetPort"] = "http"  # IntOrString: a name is fine too
    assert crd.validate(event_source, events_dir) == []
    port["targetPort"], port["port"] = [12000], "12000"
    event_source["spec"]["webhook"]["alertmanager"]["port"] = 12000  # a string in Argo Events
    assert crd.validate(event_source, events_dir) == [
        "spec.service.ports[0].port: expected integer, got string",
        "spec.service.ports[0].targetPort: expected integer or string, got list",
        "spec.webhook.alertmanager.port: expected string, got integer",
    ]


def test_quantities_accept_numbers(events_dir: Path, job: dict[str, Any]) -> None:
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": 0.1, "memory": "64Mi"}, "limits": {"cpu": 1}}
    assert crd.validate(job, events_dir) == []
    container["resources"]["limits"]["cpu"] = [1]
    assert crd.validate(job, events_dir) == [
        'spec.template.spec.containers[0].resources.limits.cpu: expected string or number, got list']


def test_missing_required_fields(events_dir: Path, sensor: dict[str, Any]) -> None:
    binding = load(ROLE_BINDING)
    del binding["roleRef"]
    del binding["subjects"][0]["name"]
    assert crd.validate(binding, events_dir) == [
        "missing required field 'roleRef'",
        "subjects[0]: missing required field 'name'",
    ]
    del sensor["spec"]["dependencies"][0]["eventName"]
    del sensor["spec"]["triggers"][0]["template"]["name"]
    assert crd.validate(sensor, events_dir) == [
        "spec.dependencies[0]: missing required field 'eventName'",
        "spec.triggers[0].template: missing required field 'name'",
    ]


def test_required_quirk_webhook_url(events_dir: Path, contract: dict[str, dict[str, Any]]) -> None:
    """The schema lists the webhook ``url`` as required; the upstream webhook example omits it."""
    definitions = json.loads((events_dir / SCHEMA_NAME).read_text(encoding="utf-8"))["definitions"]
    assert "url" in definitions["io.argoproj.events.v1alpha1.WebhookEventSource"]["required"]
    webhook = contract["EventSource"]["spec"]["webhook"]["alertmanager"]
    assert "url" not in webhook
    event_source = copy.deepcopy(contract["EventSource"])
    del event_source["spec"]["webhook"]["alertmanager"]["endpoint"]
    assert crd.validate(event_source, events_dir) == [
        "spec.webhook.alertmanager: missing required field 'endpoint'"]


def test_api_version_not_served(events_dir: Path, job: dict[str, Any]) -> None:
    job["apiVersion"] = "batch/v2"
    assert crd.validate(job, events_dir) == ["apiVersion: 'batch/v2' is not served for kind Job (served: batch/v1)"]
    account = {"apiVersion": "core/v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}
    assert crd.validate(account, events_dir) == [
        "apiVersion: 'core/v1' is not served for kind ServiceAccount (served: v1)"]


def test_metadata_checked_once_as_object_meta(events_dir: Path, sensor: dict[str, Any], job: dict[str, Any]) -> None:
    job["metadata"] = {"name": "Undo_Job", "generateName": "undo_", "labels": {"team": 7}, "lables": {}}
    assert crd.validate(job, events_dir) == [
        "metadata.name: 'Undo_Job' is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
        "alphanumeric at both ends, at most 253 characters)",
        "metadata.generateName: 'undo_' is not a DNS-1123 subdomain prefix (lowercase letters, digits, '-' "
        "and '.', alphanumeric at the start, at most 248 characters)",
        "metadata.labels.team: expected string, got integer (quote it)",
        "metadata.lables: unknown field (did you mean 'labels'?)",
    ]
    job["metadata"] = {"namespace": "reco"}
    assert crd.validate(job, events_dir) == ["metadata: missing required field 'name'"]
    del sensor["metadata"]  # required by the definition and by the ObjectMeta check: one message
    assert crd.validate(sensor, events_dir) == ["missing required field 'metadata'"]


def test_nested_object_meta_is_strict(events_dir: Path, job: dict[str, Any]) -> None:
    job["spec"]["template"]["metadata"]["lables"] = {}
    job["spec"]["template"]["metadata"]["annotations"] = {"a": 1}
    assert crd.validate(job, events_dir) == [
        "spec.template.metadata.lables: unknown field (did you mean 'labels'?)",
        "spec.template.metadata.annotations.a: expected string, got integer",
    ]


def test_const_on_api_version(events_dir: Path, sensor: dict[str, Any]) -> None:
    """The Argo Events definitions pin apiVersion/kind with draft-6 ``const``; nested, it is checked."""
    definitions = json.loads((events_dir / SCHEMA_NAME).read_text(encoding="utf-8"))["definitions"]
    sensor_def = definitions["io.argoproj.events.v1alpha1.Sensor"]
    assert sensor_def["properties"]["apiVersion"]["const"] == "argoproj.io/v1alpha1"
    assert crd.validate(sensor, events_dir) == []
    sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"] = "not an object"
    assert crd.validate(sensor, events_dir) == [
        "spec.triggers[0].template.k8s.source.resource: expected object, got string"]


def test_scope_unknown_for_definitions(events_dir: Path) -> None:
    role = load(ROLE)  # a Role is namespaced; a ClusterRole is not, but the schema cannot tell
    cluster_role = {**role, "kind": "ClusterRole"}
    assert crd.validate(cluster_role, events_dir) == []


def _with_placeholder(events_dir: Path, tmp_path: Path, scope: str, served: bool) -> Path:
    shutil.copytree(events_dir, tmp_path / "crds")
    crd_text = PLACEHOLDER_SENSOR_CRD.replace("{scope}", scope).replace("{served}", str(served).lower())
    (tmp_path / "crds" / "argoproj.io_sensors.yaml").write_text(crd_text, encoding="utf-8")
    return tmp_path / "crds"


def test_placeholder_crd_loses_to_the_definition(events_dir: Path, tmp_path: Path, sensor: dict[str, Any]) -> None:
    directory = _with_placeholder(events_dir, tmp_path, "Cluster", True)
    [entry] = [e for e in crd.known_versions(directory) if e.kind == "Sensor"]
    assert entry.definition == "io.argoproj.events.v1alpha1.Sensor"
    assert entry.namespaced is False  # the scope comes from the CRD
    sensor["spec"]["dependancies"] = sensor["spec"].pop("dependencies")
    assert crd.validate(sensor, directory) == [
        "metadata.namespace: Sensor is cluster-scoped: remove the namespace",
        "spec: missing required field 'dependencies'",
        "spec.dependancies: unknown field (did you mean 'dependencies'?)",
    ]


def test_placeholder_crd_decides_what_is_served(events_dir: Path, tmp_path: Path, sensor: dict[str, Any]) -> None:
    directory = _with_placeholder(events_dir, tmp_path, "Namespaced", False)
    assert crd.validate(sensor, directory) == [
        "apiVersion: 'argoproj.io/v1alpha1' is not served for kind Sensor (served: none)"]


def test_structural_crd_wins_over_the_definition(events_dir: Path, tmp_path: Path, sensor: dict[str, Any]) -> None:
    directory = _with_placeholder(events_dir, tmp_path, "Namespaced", True)
    doc = load(PLACEHOLDER_SENSOR_CRD.replace("{scope}", "Namespaced").replace("{served}", "true"))
    doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object", "properties": {"eventBusName": {"type": "string"}}}
    (directory / "argoproj.io_sensors.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    [entry] = [e for e in crd.known_versions(directory) if e.kind == "Sensor"]
    assert entry.definition is None and not entry.placeholder
    messages = crd.validate(sensor, directory)
    assert messages[0] == "spec.template: unknown field (allowed: eventBusName)"


def test_definitions_file_is_loaded_once(events_dir: Path, tmp_path: Path, sensor: dict[str, Any],
                                         job: dict[str, Any]) -> None:
    directory = tmp_path / "crds"
    shutil.copytree(events_dir, directory)
    before = crd._prepared_definitions.cache_info().misses
    first = time.perf_counter()
    assert crd.validate(sensor, directory) == []
    first = time.perf_counter() - first
    again = time.perf_counter()
    for _ in range(10):
        assert crd.validate(sensor, directory) == []
        assert crd.validate(job, directory) == []
    again = (time.perf_counter() - again) / 10
    assert crd._prepared_definitions.cache_info().misses == before + 1
    assert again < max(first, 0.05)  # nothing is rebuilt per object


# ----------------------------------------------------------- generic: an OpenAPI v2 (swagger.json) file

SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "Kubernetes", "version": "v1.32.0"},
    "paths": {
        "/apis/example.com/v1/namespaces/{namespace}/widgets": {
            "post": {"x-kubernetes-group-version-kind": {"group": "example.com", "kind": "Widget", "version": "v1"}}},
        "/apis/example.com/v1/widgets": {
            "get": {"x-kubernetes-group-version-kind": {"group": "example.com", "kind": "Widget", "version": "v1"}}},
        "/apis/example.com/v1/gadgets/{name}": {
            "parameters": [{"name": "name", "in": "path"}],
            "put": {"x-kubernetes-group-version-kind": {"group": "example.com", "kind": "Gadget", "version": "v1"}}},
    },
    "definitions": {
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
        "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
        "io.k8s.apimachinery.pkg.runtime.RawExtension": {"type": "object"},
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                           "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "com.example.v1.WidgetSpec": {
            "properties": {
                "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
                "size": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
                "extra": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.runtime.RawExtension"},
                "mode": {"type": "string", "enum": ["fast", "slow"]},
            },
            "required": ["mode"],
        },
        "com.example.v1.Widget": {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                "spec": {"$ref": "#/definitions/com.example.v1.WidgetSpec"},
            },
            "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1"}],
        },
        "com.example.v1.Gadget": {
            "type": "object",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}},
            "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Gadget", "version": "v1"}],
        },
    },
}


@pytest.fixture
def swagger_dir(tmp_path: Path) -> Path:
    (tmp_path / "swagger.json").write_text(json.dumps(SWAGGER), encoding="utf-8")
    return tmp_path


def test_swagger_definitions(swagger_dir: Path) -> None:
    entries = {e.kind: e for e in crd.known_versions(swagger_dir)}
    assert set(entries) == {"Widget", "Gadget"}
    assert entries["Widget"].namespaced is True and entries["Gadget"].namespaced is False  # from paths
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns"},
              "spec": {"port": 8080, "size": 2, "mode": "fast", "extra": {"any": {"thing": [1]}}}}
    assert crd.validate(widget, swagger_dir) == []
    widget["spec"].update(port="http", size="2Gi")
    assert crd.validate(widget, swagger_dir) == []
    widget["spec"].update(port=[80], mode="medium", prot=1)
    del widget["spec"]["size"]
    assert crd.validate(widget, swagger_dir) == [
        "spec.port: expected integer or string, got list",
        "spec.mode: must be one of 'fast', 'slow'; got 'medium'",
        "spec.prot: unknown field (did you mean 'port'?)",
    ]
    del widget["spec"]["mode"]
    assert crd.validate(widget, swagger_dir)[0] == "spec: missing required field 'mode'"
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "ns"}}
    assert crd.validate(gadget, swagger_dir) == ["metadata.namespace: Gadget is cluster-scoped: remove the namespace"]
