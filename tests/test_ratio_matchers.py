"""The textbook error SLI: ``http_requests_total{code=~"5.."}`` over ``http_requests_total``, each side
with its own matchers (issue 13). Fitted on the same traffic as a dedicated error counter, it must give
the same thresholds; the rules must compute the same ratio in the real Prometheus (both flavours)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate import pipeline
from driftgate.cli import main
from tests.conftest import Prom
from tests.test_fit_contract import ERRORS, make_repo, set_spec

HTTP = """\
  - name: http_errors
    kind: error_ratio
    numerator: mini_http_requests_total
    numerator_labels: {code: {regex: "5.."}}
    denominator: mini_http_requests_total
    windows: {fast: 2h, slow: 3h}
    min_events: 1000
"""


def _http_export(root: Path) -> None:
    """One counter with a code label: 200 = requests - errors, 503 = errors (what a web framework exports)."""
    req = json.loads((root / "exports/mini/mini_requests_total.json").read_text())
    err = json.loads((root / "exports/mini/mini_request_errors_total.json").read_text())
    errs = {json.dumps({k: v for k, v in r["metric"].items() if k != "__name__"}, sort_keys=True): r
            for r in err["data"]["result"]}
    out = []
    for r in req["data"]["result"]:
        key = json.dumps({k: v for k, v in r["metric"].items() if k != "__name__"}, sort_keys=True)
        e = dict(errs[key]["values"])
        ok = [[t, str(float(v) - float(e[t]))] for t, v in r["values"] if t in e]
        bad = [[t, e[t]] for t, _ in r["values"] if t in e]
        for code, values in (("200", ok), ("503", bad)):
            labels = {**r["metric"], "__name__": "mini_http_requests_total", "code": code}
            out.append({"metric": labels, "values": values})
    doc = {"status": "success", "data": {"resultType": "matrix", "result": out}}
    (root / "exports/mini/mini_http_requests_total.json").write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("ratio"), signals=ERRORS + HTTP)
    _http_export(root)
    set_spec(root, "    - exports/mini/mini_clicks_total.json\n",
             "    - exports/mini/mini_clicks_total.json\n    - exports/mini/mini_http_requests_total.json\n")
    pipeline.fit(root, root / "specs", force=True)
    pipeline.render(root, root / "specs")
    return root


def test_the_same_traffic_gives_the_same_thresholds(fitted: Path) -> None:
    base = bl.load(fitted / "baselines/mini.yaml", "b")
    dedicated, http = base.signal("error_ratio"), base.signal("http_errors")
    for which in ("fast", "slow"):
        a, b = dedicated.window(which), http.window(which)
        assert a.auto.value == pytest.approx(b.auto.value, rel=1e-9), which
        assert a.manual.value == pytest.approx(b.manual.value, rel=1e-9), which
        assert a.events_p50 == pytest.approx(b.events_p50, rel=1e-9)
    assert base.fit_inputs["signals.http_errors.numerator_labels"] == '{"code": {"regex": "5.."}}'
    assert "signals.error_ratio.numerator_labels" not in base.fit_inputs


def test_the_rules_compute_the_ratio_in_prometheus(fitted: Path, tmp_path: Path, prom: Prom) -> None:
    rules = (fitted / "generated/prometheus/rules/mini.rules.yaml").read_text()
    exprs = [r["expr"] for g in yaml.safe_load(rules)["groups"] for r in g["rules"]]
    assert any('mini_http_requests_total{job="mini",namespace="mini-ns",code=~"5.."}' in e for e in exprs)
    (tmp_path / "r.yaml").write_text(rules)
    series = []
    for code, step in (("200", 95), ("503", 5), ("404", 400)):  # a 404 is not an error of the SLI
        labels = f'job="mini",namespace="mini-ns",code="{code}",rollouts_pod_template_hash="abc",pod="abc-0"'
        series.append({"series": f"mini_http_requests_total{{{labels}}}", "values": f"0+{step}x200"})
    doc = {"rule_files": ["r.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "promql_expr_test": [{
            "expr": 'abs(model_version:driftgate_http_errors:ratio2h{rollouts_pod_template_hash="abc"} - 0.01) '
                    '< bool 1e-12',
            "eval_time": "190m",
            "exp_samples": [{"labels": '{model="mini",rollouts_pod_template_hash="abc",signal="http_errors"}',
                             "value": 1}]}]}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc, width=1_000_000))
    result = subprocess.run([prom.promtool, "test", "rules", str(tmp_path / "t.yaml")], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "want"), [
    ('{code: {regex: "(?=5)..."}}', "not RE2"),
    ('{code: {regex: "5.."}, job: api}', "label 'job' is set by driftgate, the selector"),
    ('{code: {regex: "[5"}}', "not a valid regular expression"),
    ("{code: {glob: 5xx}}", "unknown key 'glob'"),
    ("{}", "expected a mapping of label matchers"),
])
def test_bad_side_matchers_are_refused(fitted: Path, tmp_path: Path, labels: str, want: str) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(fitted, root)
    set_spec(root, '    numerator_labels: {code: {regex: "5.."}}\n', f"    numerator_labels: {labels}\n")
    result = CliRunner().invoke(main, ["validate", "--root", str(root), "--spec-only"])
    assert result.exit_code == 1, result.output
    assert want in result.output, result.output


def test_both_sides_the_same_series_is_refused(fitted: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(fitted, root)
    set_spec(root, "    denominator: mini_http_requests_total\n",
             '    denominator: mini_http_requests_total\n    denominator_labels: {code: {regex: "5.."}}\n')
    result = CliRunner().invoke(main, ["validate", "--root", str(root), "--spec-only"])
    assert result.exit_code == 1 and "select the same series" in result.output, result.output
