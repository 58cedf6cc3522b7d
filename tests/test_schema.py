"""The spec's JSON Schema for editors (``driftgate schema``, docs/spec.schema.json): current, accepting every
spec the loader accepts, and rejecting the structural mistakes an editor should underline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from driftgate.cli import main
from driftgate.spec.load import load_specs
from driftgate.spec.schema import schema
from tests.conftest import REPO


class _Plain(yaml.SafeLoader):
    """YAML as an editor's language server reads it: a date stays a string."""


_Plain.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
                                  for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Plain)  # a SafeLoader subclass


VALIDATOR = jsonschema.Draft202012Validator(schema())


def _specs() -> list[tuple[str, str]]:
    out = [(p.relative_to(REPO).as_posix(), p.read_text()) for p in sorted((REPO / "specs").glob("*.yaml"))]
    variants = sorted((REPO / "tests/corpus/_specs").glob("*.yaml"))
    out += [(p.relative_to(REPO).as_posix(), p.read_text()) for p in variants]
    out.append(("tests/corpus/base/specs/demo.yaml", (REPO / "tests/corpus/base/specs/demo.yaml").read_text()))
    reco = (REPO / "specs/reco-ranker.yaml").read_text()
    sel = "  selector: {job: reco-ranker, namespace: reco}\n"
    top = "model: reco-ranker\nobject_labels: {release: kps}\nobject_annotations: {a.example.com/x: y}\n"
    out.append(("every optional key", reco.replace("model: reco-ranker\n", top)
                .replace(sel, sel + "  version_from: {pod_label: version}\n  rollout_info_namespace_label: namespace\n"
                         "  analysis_auth: {headers: {X-Scope-OrgID: t}, bearer_token: {secret: s, key: k}}\n")
                .replace("analysis:\n", "analysis:\n  dry_run: true\n  canary_weight: 0.25\n")
                .replace("    numerator: reco_request_errors_total\n",
                         '    numerator: reco_request_errors_total\n    numerator_labels: {code: {regex: "5.."}}\n')
                .replace("release:\n  auto_undo:", "release:\n  horizon: 48h\n  bake: 1h\n  auto_undo:")
                .replace("    token: {secret: reco-alerting, key: auto-undo-token}\n",
                         "    token: {secret: reco-alerting, key: auto-undo-token}\n    enabled: false\n"
                         "    namespace: events\n    event_bus: bus\n    image: example.com/undo:v1\n"
                         "    kubectl_image: example.com/kubectl@sha256:" + "a" * 64 + "\n")))
    return out


SPECS = _specs()


def test_the_committed_schema_is_current() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert (REPO / "docs/spec.schema.json").read_text() == result.output
    json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize(("name", "text"), SPECS, ids=[s[0] for s in SPECS])
def test_every_spec_the_loader_accepts_validates(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "specs").mkdir()
    model = _load(text)["model"]
    (tmp_path / "specs" / f"{model}.yaml").write_text(text)
    assert load_specs(tmp_path, tmp_path / "specs", check_exports=False)  # the loader accepts it
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(_load(text))]
    assert not errors, errors


BAD = [
    ("unknown top-level key", lambda t: t + "owner: me\n", "Additional properties"),
    ("misspelt signal key", lambda t: t.replace("    min_events: 500\n", "    min_event: 500\n", 1), ""),
    ("quantile on a ratio",
     lambda t: t.replace("    min_events: 1000\n", "    min_events: 1000\n    quantile: 0.9\n", 1), ""),
    ("unknown kind", lambda t: t.replace("kind: error_ratio", "kind: error_rate", 1), ""),
    ("dry_run not a boolean", lambda t: t.replace("analysis:\n", "analysis:\n  dry_run: yes please\n", 1), ""),
    ("literal secret", lambda t: t.replace("slack_webhook: {secret: reco-alerting, key: slack-webhook-url}",
                                           "slack_webhook: https://hooks.slack.com/x", 1), ""),
    ("missing required section", lambda t: t.replace("rollout: reco-ranker\n", "", 1), "required"),
    ("window not a duration", lambda t: t.replace("{fast: 15m, slow: 1h}", "{fast: 15 minutes, slow: 1h}", 1), ""),
]


@pytest.mark.parametrize(("why", "edit", "word"), BAD, ids=[b[0] for b in BAD])
def test_structural_mistakes_are_flagged(why: str, edit: Any, word: str) -> None:
    text = edit((REPO / "specs/reco-ranker.yaml").read_text())
    errors = [e.message for e in VALIDATOR.iter_errors(_load(text))]
    assert errors, why
    assert not word or any(word in e for e in errors), errors
