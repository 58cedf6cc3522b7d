#!/usr/bin/env python3
"""The external tools the test suite runs, in the versions users run.

* **Prometheus 2.x and Alertmanager 0.25**: Debian's packages ``prometheus`` and
  ``prometheus-alertmanager`` (``/usr/bin``; installed by ``make tools`` with apt-get).
* **A current Prometheus 3.x and Alertmanager**: built here from the Go module proxy with
  ``go install module/cmd/x@version`` into ``.tools/<name>-<version>/`` (a few minutes the first
  time; the Go build cache makes later builds instant). ``-ldflags -X`` stamps the release version
  into the binaries, as upstream's release build does, so ``--version`` says what they are.
* **The upstream CRD schemas**: ``scripts/fetch_crds.py`` (Go module proxy as well).

``python scripts/tools.py`` builds and fetches whatever is missing and prints each tool's path,
version and the time it took. The tests import :data:`FLAVOURS` from here, so the versions live in
one place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools"

# Newest releases that build with this machine's Go (1.26.8) from the module proxy (checked 2026-12-02).
PROMETHEUS_MODULE, PROMETHEUS_VERSION, PROMETHEUS_RELEASE = "github.com/prometheus/prometheus", "v0.316.0", "3.16.0"
ALERTMANAGER_MODULE, ALERTMANAGER_VERSION, ALERTMANAGER_RELEASE = ("github.com/prometheus/alertmanager",
                                                                   "v0.35.0", "0.35.0")


@dataclass(frozen=True)
class Build:
    name: str  # the folder under .tools/
    module: str
    version: str
    release: str
    commands: tuple[str, ...]

    @property
    def bin(self) -> Path:
        return TOOLS / f"{self.name}-{self.release}"

    def path(self, command: str) -> Path:
        return self.bin / command


PROMETHEUS_3 = Build("prometheus", PROMETHEUS_MODULE, PROMETHEUS_VERSION, PROMETHEUS_RELEASE,
                     ("promtool", "prometheus"))
ALERTMANAGER_NEW = Build("alertmanager", ALERTMANAGER_MODULE, ALERTMANAGER_VERSION, ALERTMANAGER_RELEASE,
                         ("amtool",))
BUILDS = (PROMETHEUS_3, ALERTMANAGER_NEW)

# Argo Rollouts' own analysis code (utils/evaluate, metricproviders/prometheus) behind a small driver
# (tests/argo_eval/main.go, go.mod and go.sum committed): the tests' Argo decisions come from it.
ARGO_EVAL_SOURCE = REPO / "tests" / "argo_eval"
ARGO_EVAL = TOOLS / "argo-eval" / "argo-eval"

# Argo Events' own Sensor code (pkg/sensors/dependencies filters, pkg/sensors/triggers/standard-k8s) behind a
# small driver (tests/argo_events_eval/main.go, go.mod and go.sum committed): what a Sensor does with a webhook.
ARGO_EVENTS_VERSION = "v1.9.8"
ARGO_EVENTS_EVAL_SOURCE = REPO / "tests" / "argo_events_eval"
ARGO_EVENTS_EVAL = TOOLS / "argo-events-eval" / "argo-events-eval"

# flavour -> {command: path}; the tests run every promtool/amtool check on each flavour.
FLAVOURS: dict[str, dict[str, Path]] = {
    "prometheus-2": {"promtool": Path("/usr/bin/promtool"), "prometheus": Path("/usr/bin/prometheus")},
    "prometheus-3": {c: PROMETHEUS_3.path(c) for c in PROMETHEUS_3.commands},
    # The Alertmanager *server* comes from Debian only: go install of cmd/alertmanager@v0.35.0 fails
    # ("ui/web.go: pattern app/dist: no matching files found": the built web UI is not in the module).
    "alertmanager-0.25": {"amtool": Path("/usr/bin/amtool"), "alertmanager": Path("/usr/bin/prometheus-alertmanager")},
    f"alertmanager-{ALERTMANAGER_RELEASE}": {c: ALERTMANAGER_NEW.path(c) for c in ALERTMANAGER_NEW.commands},
}


def build(spec: Build) -> float:
    """``go install`` the commands of ``spec`` unless they are there; returns the seconds it took."""
    if all(spec.path(c).is_file() for c in spec.commands):
        return 0.0
    if shutil.which("go") is None:
        raise SystemExit(f"building {spec.name} {spec.release} needs the Go toolchain (go), which is not installed")
    start = time.monotonic()
    ldflags = " ".join([f"-X github.com/prometheus/common/version.Version={spec.release}",
                        f"-X github.com/prometheus/common/version.Revision={spec.version}",
                        "-X github.com/prometheus/common/version.Branch=module-proxy",
                        "-X github.com/prometheus/common/version.BuildUser=driftgate",
                        "-X github.com/prometheus/common/version.BuildDate=module"])
    spec.bin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(spec.bin), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    cmd = ["go", "install", "-ldflags", ldflags,
           *(f"{spec.module}/cmd/{c}@{spec.version}" for c in spec.commands)]
    with tempfile.TemporaryDirectory() as scratch:  # outside any Go module
        proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"$ {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return time.monotonic() - start


def build_driver(what: str, source: Path, binary: Path) -> float:
    """``go build`` a test driver (main.go, go.mod and go.sum committed in ``source``) into ``binary``
    unless it is newer than its sources; returns the seconds it took."""
    sources = [source / n for n in ("main.go", "go.mod", "go.sum")]
    if binary.is_file() and all(binary.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return 0.0
    if shutil.which("go") is None:
        raise SystemExit(f"building the {what} driver needs the Go toolchain (go), which is not installed")
    start = time.monotonic()
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    cmd = ["go", "build", "-o", str(binary), "."]
    proc = subprocess.run(cmd, cwd=source, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"$ {' '.join(cmd)} (in {source})\n{proc.stderr[-4000:]}")
    return time.monotonic() - start


def build_argo_eval() -> float:
    """The Argo Rollouts driver (Argo Rollouts v1.10.1 from the module proxy)."""
    return build_driver("Argo Rollouts", ARGO_EVAL_SOURCE, ARGO_EVAL)


def build_argo_events_eval() -> float:
    """The Argo Events driver (Argo Events v1.9.8 from the module proxy)."""
    return build_driver("Argo Events", ARGO_EVENTS_EVAL_SOURCE, ARGO_EVENTS_EVAL)


def version_line(path: Path) -> str:
    proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    return ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]


def main() -> int:
    sys.path.insert(0, str(REPO / "scripts"))
    import fetch_crds

    for spec in BUILDS:
        seconds = build(spec)
        for command in spec.commands:
            took = f"built in {seconds:.0f} s" if seconds else "already built"
            print(f"{spec.path(command)}: {version_line(spec.path(command))} ({took})")
    seconds = build_argo_eval()
    took = f"built in {seconds:.0f} s" if seconds else "already built"
    print(f"{ARGO_EVAL}: Argo Rollouts v1.10.1 utils/evaluate + metricproviders/prometheus ({took})")
    seconds = build_argo_events_eval()
    took = f"built in {seconds:.0f} s" if seconds else "already built"
    print(f"{ARGO_EVENTS_EVAL}: Argo Events {ARGO_EVENTS_VERSION} sensors/dependencies + standard-k8s ({took})")
    start = time.monotonic()
    out = fetch_crds.fetch(TOOLS / "crds")
    print(f"{out}: CRD schemas from the Go module proxy ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
