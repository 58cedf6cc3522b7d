"""Objects validated as built: the PrometheusRule is checked from the data its template renders, not
parsed back (issue 15), and the real parser still proves, in every render the tests run, that the text
reads back as exactly that data (``$DRIFTGATE_CHECK_BUILT``, set by conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate import pipeline
from driftgate.errors import RenderError
from driftgate.render import env as env_mod
from driftgate.render import promtests, targets
from driftgate.spec.load import load_specs
from driftgate.validate import crd
from tests.conftest import REPO

MODELS = ("fraud-scorer", "reco-ranker")


def _context(model: str) -> Any:
    (spec,) = load_specs(REPO, REPO / "specs", only=model, check_exports=False)
    return pipeline.model_context(REPO, spec, [])


def test_the_suite_checks_every_built_text() -> None:
    assert os.environ.get(crd.ENV_CHECK_BUILT) == "1"


@pytest.mark.parametrize("model", MODELS)
def test_prometheus_rule_data_is_what_the_text_reads_back_as(model: str) -> None:
    ctx = _context(model)
    files = targets.prometheus(targets.environment(), ctx)
    (doc,) = [d for d in yaml.safe_load_all(files[f"generated/prometheus/{model}.yaml"]) if d is not None]
    assert doc == targets.prometheus_rule(ctx)
    assert list(doc) == list(targets.prometheus_rule(ctx))  # key order too: it is the HCL's order
    # The plain rule file is the same groups (and is not parsed by verify: targets.emitted).
    plain = yaml.safe_load(files[f"generated/prometheus/rules/{model}.rules.yaml"])
    assert plain == doc["spec"] and targets.emitted(f"generated/prometheus/rules/{model}.rules.yaml")
    assert targets.emitted(f"generated/prometheus/tests/{model}.test.yaml")
    assert not targets.emitted(f"generated/prometheus/{model}.yaml")
    assert not targets.emitted(f"generated/argo/{model}.yaml")


def test_a_text_that_differs_from_its_data_fails_the_render(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _context("reco-ranker")
    real = targets.prometheus_rule

    def drifted(c: Any) -> dict[str, Any]:
        out = real(c)
        out["spec"]["groups"][0]["rules"][3]["expr"] += " > 0"
        return out

    monkeypatch.setattr(targets, "prometheus_rule", drifted)
    with pytest.raises(RenderError, match=r"does not read back .* at spec\.groups\[0\]\.rules\[3\]\.expr"):
        targets.prometheus(targets.environment(), ctx)


def test_a_key_order_difference_is_a_difference() -> None:
    assert crd._first_difference({"a": 1, "b": 2}, {"b": 2, "a": 1}, ()) == ()
    assert crd._first_difference({"a": [1, {"x": "1"}]}, {"a": [1, {"x": 1}]}, ()) == ("a", 1, "x")
    assert crd._first_difference({"a": [1, 2]}, {"a": (1, 2)}, ()) is None


def test_built_documents_are_returned_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crd.ENV_CHECK_BUILT)
    text = "kind: [never parsed\n"
    monkeypatch.setattr(crd, "_CHECKED", {"things"})
    crd.built_documents(text, "x.yaml", [(0, {"kind": "Thing"})], family="things")
    assert crd.parse_documents(text, "x.yaml") == ([(0, {"kind": "Thing"})], [])
    assert crd.parse_documents(text, "y.yaml")[1]  # another source: parsed, and invalid


@pytest.mark.parametrize("checked_before", [False, True])
def test_a_broken_template_fails_the_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            checked_before: bool) -> None:
    """The rule groups are validated as built and the plain rule file is not parsed; a template edit that
    breaks their YAML still stops the render, naming the file: through the first text of the template in
    each process (``checked_before`` False), or the suite's check of every text."""
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    groups = tmp_path / "templates/prometheus/_groups.yaml.j2"
    groups.write_text(groups.read_text().replace("- record: [[ r.record | yq ]]", "- record: [[ r.record | yq ]] x"))
    monkeypatch.setattr(env_mod, "_load", lambda name: (tmp_path / "templates" / name).read_text())
    monkeypatch.setattr(crd, "_CHECKED", {"prometheus/prometheusrule.yaml.j2"} if checked_before else set())
    if not checked_before:
        monkeypatch.delenv(crd.ENV_CHECK_BUILT)
    with pytest.raises(RenderError, match=r"generated/prometheus/reco-ranker\.yaml: invalid YAML"):
        targets.render_model(targets.environment(), _context("reco-ranker"))


def test_promtests_batched_search_equals_the_one_at_a_time_search() -> None:
    """_ambiguous/_moderate evaluate every candidate mixture at once: the same increments and decisions as
    _increments/_decision one mixture at a time, on the examples' sources and on random shares."""
    import numpy as np

    rng = np.random.default_rng(7)
    for _ in range(200):
        shares = rng.dirichlet(np.full(int(rng.integers(2, 40)), 0.3), size=int(rng.integers(1, 30)))
        per_min = int(rng.integers(1, 5000))
        rows = promtests._increments_rows(shares, per_min)
        for row, s in zip(rows, shares, strict=True):
            assert np.array_equal(row, promtests._increments(s, per_min))
    for model in MODELS:
        ctx = _context(model)
        for src in promtests._sources(ctx):
            lams = np.linspace(0.002, 0.6, 300)
            for k in (int(np.argmin(src.q)), int(np.argmax(src.q))):
                batch = promtests._mixtures(src, k, lams, 700)
                target = np.zeros(len(src.q))
                target[k] = 1.0
                for lam, row in zip(lams, batch, strict=True):
                    one = promtests._increments((1 - lam) * src.q / src.q.sum() + lam * target, 700)
                    assert np.array_equal(row, one)
                for signal, windows, _ in src.signals:
                    for w in windows:
                        m = promtests._counted(w.window)
                        got = promtests._decisions(signal, w, batch * m, src.q)
                        want = [promtests._decision(signal, w, row * m, src.q) for row in batch]
                        assert got.tolist() == want
