#!/usr/bin/env python3
"""Fetch the upstream CRD schemas the tests validate against, from the Go module proxy.

The Go module zips of ``github.com/argoproj/argo-rollouts`` and
``github.com/prometheus-operator/prometheus-operator`` carry the CRD YAML files of each release byte for
byte (``manifests/crds/``, ``example/prometheus-operator-crd/``). Argo Events' CRDs only say
``x-kubernetes-preserve-unknown-fields``, so from ``github.com/argoproj/argo-events`` the JSON schema
``api/jsonschema/schema.json`` is taken instead: its ``definitions`` describe EventSource and Sensor and
the Kubernetes types they embed (k8s.io/api v0.32: batch/v1 Job, v1 ServiceAccount, rbac/v1 Role and
RoleBinding, ...), each marked with ``x-kubernetes-group-version-kind`` (see driftgate.validate.crd).
``go mod download`` fetches them
through the module proxy and checks them against the checksum database (``go.sum`` semantics), so no
download site is involved and the bytes are those of the tagged release. The files are copied into
``--out`` (default ``.tools/crds``) and their SHA-256 checked against the table below.

Usage: ``python scripts/fetch_crds.py [--out DIR]``; prints the directory. Idempotent: a complete
directory with the right hashes is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ARGO_ROLLOUTS = "github.com/argoproj/argo-rollouts@v1.10.1"
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.93.0"
ARGO_EVENTS = "github.com/argoproj/argo-events@v1.9.8"

# (module, path inside the module, file name here, sha256)
FILES = [
    (ARGO_ROLLOUTS, "manifests/crds/analysis-template-crd.yaml", "argo-rollouts/analysis-template-crd.yaml",
     "bb41aa62329355c5ffb38031822b4515cc2f60c5a94fcae5df6099ddbf8c5a08"),
    (ARGO_ROLLOUTS, "manifests/crds/cluster-analysis-template-crd.yaml",
     "argo-rollouts/cluster-analysis-template-crd.yaml",
     "e9689a6f2566acca3c4580c8756963535289ca5092f9fd92727b5770ea0fea68"),
    (ARGO_ROLLOUTS, "manifests/crds/analysis-run-crd.yaml", "argo-rollouts/analysis-run-crd.yaml",
     "bd5fc4bdabe5fb4e7655bdd5e670244bad5d1757aa52f729a193a5fa6e6a729a"),
    (ARGO_ROLLOUTS, "manifests/crds/rollout-crd.yaml", "argo-rollouts/rollout-crd.yaml",
     "1562decc7b3720c31cbe382eeb62b6fbfd236f8e81a1f98644a9774d1e7d7933"),
    (PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
     "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
     "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d"),
    (PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_alertmanagerconfigs.yaml",
     "prometheus-operator/monitoring.coreos.com_alertmanagerconfigs.yaml",
     "fed47c462483a47a4d1912bf8a7a3767618644cfdee86dc73d7624c55d6a8b9d"),
    (ARGO_EVENTS, "api/jsonschema/schema.json", "argo-events/schema.json",
     "266947ce505c05966f0bf5ce71a1ee00726f1b65a80f2e404c8732ec7089cc76"),
]

REPO = Path(__file__).resolve().parents[1]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def complete(out: Path) -> bool:
    return all((out / name).is_file() and _sha256((out / name).read_bytes()) == digest
               for _, _, name, digest in FILES)


def _module_zip(module: str) -> Path:
    """The module's zip in the Go module cache, downloaded through the proxy if needed."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}
    with tempfile.TemporaryDirectory() as scratch:  # outside any Go module
        proc = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True,
                              cwd=scratch, env=env, timeout=900)
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"go mod download {module} failed:\n{proc.stderr.strip()}") from None
    zip_path = info.get("Zip")
    if not zip_path or not Path(zip_path).is_file():
        raise SystemExit(f"go mod download {module} gave no module zip: {info.get('Error') or proc.stderr.strip()}")
    return Path(zip_path)


def fetch(out: Path) -> Path:
    if complete(out):
        return out
    if shutil.which("go") is None:
        raise SystemExit("the Go toolchain is needed to fetch the CRD schemas from the Go module proxy")
    staged: dict[str, bytes] = {}
    for module in sorted({m for m, _, _, _ in FILES}):
        with zipfile.ZipFile(_module_zip(module)) as zf:
            for mod, inner, name, digest in FILES:
                if mod != module:
                    continue
                data = zf.read(f"{module}/{inner}")
                if _sha256(data) != digest:
                    raise SystemExit(f"{module} {inner}: sha256 {_sha256(data)}, expected {digest}")
                staged[name] = data
    for name, data in staged.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    (out / "SOURCES.md").write_text(
        "CRD and JSON schemas fetched by scripts/fetch_crds.py from the Go module proxy:\n\n"
        + "".join(f"- `{name}`: `{mod}` `{inner}` (sha256 {digest})\n" for mod, inner, name, digest in FILES),
        encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / ".tools" / "crds")
    args = parser.parse_args()
    print(fetch(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
