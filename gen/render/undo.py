"""The opt-in automatic undo after completion (``release.auto_undo``): names and guards for the template.

The chain, every link an existing engine (docs/spec.md, "Automatic undo"):

1. ``DriftgateAutoRollback`` of a release (a version younger than ``release.horizon``) reaches
   Alertmanager's ``<model>-auto-undo`` receiver, grouped by model, namespace and version, which posts it
   to an Argo Events webhook **EventSource**;
2. the **Sensor** passes it on only when it is a *firing* ``DriftgateAutoRollback`` with
   ``rollback="auto"`` of this model and namespace, and its version label is a single well-formed value
   (a group of two versions has none in ``commonLabels``: nothing is undone);
3. its standard Kubernetes trigger creates a **Job** in the model's namespace (the bad version in its
   ``driftgate.io/bad-version`` annotation: the audit answer to "what undid this and why"). Two init
   containers, plain ``kubectl wait --for=jsonpath=...``, are the guards: the Rollout's current version is
   the alert's (so a hotfix already rolling is never reverted, and a repeated notification after the
   undo finds another version and stops) and the Rollout is ``Healthy`` (fully promoted: while a rollout
   runs, Argo Rollouts' abort acts, not the undo). Only then does ``kubectl argo rollouts undo`` run;
   with ``spec.rollbackWindow`` (the generated Rollout wiring) the previous revision is promoted at once.

Kubernetes names are bounded (a Service name is a 63-character DNS label and Argo Events names the
EventSource's Service ``<name>-eventsource-svc``): a name that would exceed its bound is shortened
with a digest of the full name, deterministically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from driftgate.model import ModelSpec

WEBHOOK_PORT = 12000
EVENT_NAME = "alertmanager"
DEPENDENCY = "breach"
# What a version label value may be for the Sensor to act (anchored: Argo Events matches data filter
# strings as regular expressions, unanchored).
POD_TEMPLATE_HASH = "^[bcdfghjklmnpqrstvwxz2456789]{1,10}$"
LABEL_VALUE = "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
GUARD_TIMEOUT = "10s"
JOB_DEADLINE_SECONDS = 300
JOB_TTL_SECONDS = 7 * 86_400  # the Job (and its record of the bad version) outlives the default horizon


def bounded(name: str, limit: int) -> str:
    """``name`` if it fits in ``limit`` characters, else a prefix and 8 hex digits of its SHA-256."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-.')}-{digest}"


def _jsonpath_key(key: str) -> str:
    """A label key as a kubectl JSONPath member (``.`` escaped, as in ``app\\.kubernetes\\.io/version``)."""
    return key.replace(".", "\\.")


@dataclass(frozen=True)
class Undo:
    namespace: str  # Argo Events' namespace (EventSource, Sensor, the Sensor's ServiceAccount)
    event_bus: str
    image: str
    kubectl_image: str
    event_source: str
    sensor: str
    sensor_account: str
    trigger_role: str  # in the model's namespace: the Sensor may create Jobs there
    undo_account: str  # in the model's namespace: the Job may read and patch the Rollout
    job_prefix: str
    endpoint: str
    url: str
    version_label: str
    version_pattern: str
    version_jsonpath: str  # the Rollout's current version, for kubectl wait --for=jsonpath
    deadline_seconds: int = JOB_DEADLINE_SECONDS
    ttl_seconds: int = JOB_TTL_SECONDS
    guard_timeout: str = GUARD_TIMEOUT
    port: int = WEBHOOK_PORT
    event_name: str = EVENT_NAME
    dependency: str = DEPENDENCY

    @property
    def guard_version_arg(self) -> str:
        """The first guard's condition, to which the Sensor appends the alert's version."""
        return f"--for=jsonpath={self.version_jsonpath}="


def undo(spec: ModelSpec) -> Undo | None:
    u = spec.release.auto_undo
    if u is None:
        return None
    source = bounded(f"driftgate-{spec.name}", 63 - len("-eventsource-svc"))
    pod_label = spec.prometheus.version_pod_label
    return Undo(
        namespace=u.namespace, event_bus=u.event_bus, image=u.image, kubectl_image=u.kubectl_image,
        event_source=source,
        sensor=bounded(f"driftgate-{spec.name}-undo", 63 - len("-sensor-xxxxxxxxxx-xxxxx")),
        sensor_account=bounded(f"driftgate-{spec.name}-sensor", 63),
        trigger_role=bounded(f"driftgate-{spec.name}-undo-trigger", 63),
        undo_account=bounded(f"driftgate-{spec.name}-undo", 63),
        job_prefix=bounded(f"{spec.name}-undo", 63 - len("-xxxxx") - 1) + "-",
        endpoint=f"/driftgate/{spec.name}",
        url=f"http://{source}-eventsource-svc.{u.namespace}.svc:{WEBHOOK_PORT}/driftgate/{spec.name}",
        version_label=spec.prometheus.version_label,
        version_pattern=LABEL_VALUE if pod_label else POD_TEMPLATE_HASH,
        version_jsonpath=(f"{{.spec.template.metadata.labels.{_jsonpath_key(pod_label)}}}" if pod_label
                          else "{.status.currentPodHash}"),
    )
