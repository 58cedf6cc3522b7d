"""What Argo Events would do with a rendered Sensor, decided by Argo Events' own code.

``tests/argo_events_eval`` is a small Go driver over Argo Events v1.9.8 (built by ``python
scripts/tools.py`` into ``.tools/argo-events-eval/``): it wraps an Alertmanager webhook payload the way
the webhook EventSource does, runs the dependency's filters (``pkg/sensors/dependencies.Filter``) and,
when they pass, the Sensor's k8s triggers (``pkg/sensors/triggers/standard-k8s``) against fake
Kubernetes clients. Without the binary the tests skip, and under ``CI`` they fail instead.

Semantics worth knowing when reading a decision (Argo Events v1.9.8):

* a ``type: string`` data filter value is an **unanchored Go regexp** (``regexp.Match``): ``reco``
  matches ``reco-staging``; only ``^...$`` pins a value;
* a filter ``path`` missing from the payload is a filter *error* (``passed`` false, ``filter_error``
  "path '...' does not exist"), and the Sensor discards the event;
* a parameter whose ``dataKey`` is missing (and has no ``value`` default) fails the trigger;
* ``operation: append`` concatenates the event's value onto the destination's current string;
* the fake dynamic client does not expand ``metadata.generateName``: a created object has
  ``generateName`` and no ``name`` (the API server would name it).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.conftest import _missing, toolset

JSON_HEADER = {"Content-Type": ["application/json"]}


def argo_events_eval() -> str:
    """Path of the Argo Events driver; skips (fails under ``CI``) when it is not built."""
    path = toolset.ARGO_EVENTS_EVAL
    if not path.is_file():
        _missing(f"Argo Events driver {path} (python scripts/tools.py)")
    return str(path)


def decide(sensor: dict[str, Any], payload: dict[str, Any], dependency: str | None = None) -> dict[str, Any]:
    """Argo Events' decision on ``payload`` (an Alertmanager webhook body) POSTed to ``sensor``'s event
    source: ``{"passed": bool, "filter_error": str | None, "triggers": [{"name", "created", "error"}]}``."""
    request: dict[str, Any] = {"sensor": sensor, "webhook": {"header": JSON_HEADER, "body": payload}}
    if dependency is not None:
        request["dependency"] = dependency
    proc = subprocess.run([argo_events_eval()], input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    result: dict[str, Any] = json.loads(line)
    return result
