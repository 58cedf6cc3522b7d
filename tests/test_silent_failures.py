"""The silent-failure matrix (issue 13): each row is a misconfiguration that used to render, check and
review clean while the criteria enforced nothing or the wrong thing. Every row must end in exit 1 with
a message naming the cause, at the command a user runs; none may end in exit 0 with nothing said.

Rows proven elsewhere with the real engines (named so the matrix is complete):
- rules not loaded or not evaluating: the freeze gate and ``enforcement-live`` fail the rollout against
  a real Prometheus without the rules (tests/test_argo.py, both flavours, Argo's own evaluation);
- a generated promtool test that fails: impossible by construction (render proves the stable version
  silent in numpy or fails), tests/test_promtests_property.py runs randomised fits through promtool;
- an unselected PrometheusRule (kube-prometheus-stack's ``release`` label): ``object_labels`` reaches
  every object, tests/test_deployment_contract.py; unloaded rules fail closed as above;
- ``rollout_info`` arriving as ``exported_namespace``: the freeze rule reads the configured label,
  tests/test_enforcement.py (promtool on both flavours) and tests/test_deployment_contract.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from driftgate import pipeline
from driftgate.cli import main
from driftgate.render.verify import patched_stubs
from tests.conftest import REPO
from tests.test_fit_contract import make_repo, set_spec


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("mini"))
    pipeline.fit(root, root / "specs", force=True)
    pipeline.render(root, root / "specs")
    return root


@pytest.fixture
def repo(mini: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(mini, root)
    return root


def _relabel(root: Path, edit: Callable[[dict[str, str]], None]) -> None:
    """Change the labels of every series of one export (as a scrape without podTargetLabels would)."""
    path = root / "exports/mini/mini_requests_total.json"
    doc = json.loads(path.read_text())
    for r in doc["data"]["result"]:
        edit(r["metric"])
    path.write_text(json.dumps(doc))


def _drop_version(labels: dict[str, str]) -> None:
    del labels["rollouts_pod_template_hash"]


def _release_name(labels: dict[str, str]) -> None:
    labels["rollouts_pod_template_hash"] = "v2.3.1"


def _refit(root: Path, old: str, new: str) -> Path:
    set_spec(root, old, new)
    pipeline.fit(root, root / "specs")
    pipeline.render(root, root / "specs")
    return root


def _rollout_file(root: Path, edit: Callable[[dict[str, Any]], None], hashed: bool = False) -> Path:
    """The user's Rollout built with the generated Component (``hashed``: the hash wiring of before)."""
    (component,) = [d for d in yaml.safe_load_all(
        (root / "generated/argo/mini-rollout/kustomization.yaml").read_text()) if d]
    (obj,) = patched_stubs(component)
    obj["metadata"] = {"name": "mini", "namespace": "mini-ns"}
    if hashed:
        _analysis(obj)["args"] = [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    edit(obj)
    path = root / "manifests/rollout.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(obj))
    return path


def _analysis(obj: dict[str, Any]) -> dict[str, Any]:
    analysis: dict[str, Any] = obj["spec"]["strategy"]["canary"]["analysis"]
    return analysis


ROWS: list[tuple[str, Callable[[Path], list[str]], str]] = [
    # The spec changed after the fit: the rules would compare with thresholds fitted for something else.
    ("stale baseline: direction flipped, render",
     lambda r: (set_spec(r, "    min_events: 1000\n", "    min_events: 1000\n    direction: below\n"),
                ["render", "--root", str(r)])[1],
     "signals.error_ratio.direction is below, but the baseline was fitted for above; run 'driftgate fit'"),
    ("stale baseline: budget raised, check",
     lambda r: (set_spec(r, "auto: 1/quarter", "auto: 6/quarter"), ["check", "--root", str(r)])[1],
     "budget.auto is 6/quarter, but the baseline was fitted for 1/quarter"),
    ("stale baseline: min_events lowered, validate",
     lambda r: (set_spec(r, "    min_events: 500\n", "    min_events: 100\n"), ["validate", "--root", str(r)])[1],
     "signals.score_drift.min_events is 100, but the baseline was fitted for 500"),
    ("stale baseline: labels added, review",
     lambda r: (set_spec(r, "    min_events: 500\n", "    min_events: 500\n    labels: {route: home}\n"),
                ["validate", "--root", str(r)])[1],
     "signals.score_drift.matchers is {\"route\": \"home\"}, but the baseline was fitted for {}"),
    # The data contract: the version label the rules group by and the analysis selects the canary by.
    ("exports without the version label, fit",
     lambda r: (_relabel(r, _drop_version), ["fit", "--root", str(r)])[1],
     "has no 'rollouts_pod_template_hash' label (prometheus.version_label)"),
    ("version label holding a release name while the Rollout passes the hash, fit",
     lambda r: (_relabel(r, _release_name), ["fit", "--root", str(r)])[1],
     "rollouts_pod_template_hash='v2.3.1' is not a pod-template hash"),
    ("custom version label the exports do not carry, render (the fit checked another label)",
     lambda r: (set_spec(r, "selector: {job: mini, namespace: mini-ns}",
                         "selector: {job: mini, namespace: mini-ns}\n  version_label: version\n"
                         "  version_from: {pod_label: version}"), ["render", "--root", str(r)])[1],
     "prometheus.version_label is version, but the baseline was fitted for rollouts_pod_template_hash"),
    ("custom version label the exports do not carry, fit",
     lambda r: (set_spec(r, "selector: {job: mini, namespace: mini-ns}",
                         "selector: {job: mini, namespace: mini-ns}\n  version_label: version\n"
                         "  version_from: {pod_label: version}"), ["fit", "--root", str(r)])[1],
     "has no 'version' label (prometheus.version_label)"),
    # The user's Rollout does not use the criteria as generated.
    ("Rollout passing the hash for a pod-label version, check --rollouts",
     lambda r: ["check", "--root", str(_refit(r, "selector: {job: mini, namespace: mini-ns}",
                                              "selector: {job: mini, namespace: mini-ns}\n"
                                              "  version_from: {pod_label: release}")),
                "--rollouts", str(_rollout_file(r, lambda o: None, hashed=True))],
     'expected valueFrom: {"fieldRef": {"fieldPath": "spec.template.metadata.labels.release"}}'),
    ("Rollout without the background analysis, check --rollouts",
     lambda r: ["check", "--root", str(r), "--rollouts",
                str(_rollout_file(r, lambda o: _analysis(o).update(templates=[])))],
     "does not reference mini-rollback-criteria: nothing rolls the canary back"),
    ("Rollout starting the analysis late, check --rollouts",
     lambda r: ["check", "--root", str(r), "--rollouts",
                str(_rollout_file(r, lambda o: _analysis(o).update(startingStep=2)))],
     "startingStep: 2: the steps before it run unguarded"),
    # Deployment contract keys: wrong values never reach the cluster.
    ("object label value Kubernetes would reject, validate",
     lambda r: (set_spec(r, "model: mini\n", "model: mini\nobject_labels: {release: kube prometheus}\n"),
                ["validate", "--root", str(r)])[1],
     "object_labels.release: expected a Kubernetes label value"),
    ("a new spec checked before it has data, validate --spec-only",
     lambda r: (set_spec(r, "    min_events: 500\n", "    min_events: many\n"),
                ["validate", "--root", str(r), "--spec-only"])[1],
     "signals[0].min_events"),
]


@pytest.mark.parametrize(("row", "setup", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_each_misconfiguration_ends_in_an_error(repo: Path, row: str, setup: Callable[[Path], list[str]],
                                                message: str) -> None:
    args = setup(repo)  # (a row may refit and render first, as the user would)
    before = {p: p.read_bytes() for p in (repo / "generated").rglob("*") if p.is_file()}
    code, output = _run(*args)
    assert code == 1, f"{row}: exit {code}\n{output}"
    assert message in output, f"{row}:\n{output}"
    after = {p: p.read_bytes() for p in (repo / "generated").rglob("*") if p.is_file()}
    assert after == before, f"{row}: a failing command changed generated/"


def test_the_unbroken_repository_passes_every_command(repo: Path) -> None:
    """The matrix's control: the same commands on the untouched repository exit 0."""
    rollout = _rollout_file(repo, lambda o: None)
    for args in (["validate", "--root", str(repo)], ["validate", "--root", str(repo), "--spec-only"],
                 ["check", "--root", str(repo), "--rollouts", str(rollout)], ["render", "--root", str(repo)]):
        code, output = _run(*args)
        assert code == 0, (args, output)


def test_spec_only_needs_no_exports_nor_baseline(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    shutil.copy(REPO / "specs/reco-ranker.yaml", tmp_path / "specs")
    code, output = _run("validate", "--root", str(tmp_path), "--spec-only")
    assert code == 0, output
    assert "1 spec(s) valid: reco-ranker (spec only" in output
    code, output = _run("validate", "--root", str(tmp_path))
    assert code == 1 and "no baseline; run 'driftgate fit'" in output
