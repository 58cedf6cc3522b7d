"""``export`` → ``fit`` → ``render`` against a real Prometheus (Debian's 2.x and a current 3.x), and the
rules evaluated by it.

One server per module (see :mod:`tests.promserver`): a seeded synthetic history (2 pods, 2 days at
1m, 3 pod restarts) is backfilled with promtool, then

* ``driftgate export`` (through ``--url``, in several chunks, with a bearer token and a tenant
  header the server ignores) writes files byte-identical to the backfilled history;
* ``driftgate fit`` and ``render`` run on them in a temporary repository; the token is nowhere;
* every signal's statistic, as the generated recording-rule chain computes it inside Prometheus,
  equals what the offline fitter computes for the same windows and instants, to 1e-6 relative: the
  per-step series the windows sum are recorded first, as a rule group evaluating every minute would
  have written them (``query_range`` of the rule at each minute, backfilled, the server restarted);
  the rest of the chain is inlined into one expression over them (``tests.promserver.materialise``);
* the generated rule file loads and every group evaluates healthy.

Under CI=true a missing ``prometheus``/``promtool`` fails instead of skipping.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate import synth
from driftgate.cli import main
from driftgate.exports.load import load_store
from driftgate.exports.promhttp import Client
from driftgate.fit.signals import history, resolve
from driftgate.model import SignalKind
from driftgate.spec.load import load_specs
from tests.conftest import PROMETHEUS_FLAVOURS, tool
from tests.promserver import PrometheusServer, backfilled_server, inline, materialise_on, recording_rules, toy_service

pytestmark = pytest.mark.tools

MODEL = "toy-ranker"
START = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())
DAYS = 2
STEP = 60
SEED = 20260901
TOKEN = "s3cr3t-t0ken-for-the-test-only"
TOLERANCE = 1e-6
# Every 11th minute: a JS chain still holds ~180 window sums per instant (Prometheus 2.42 takes ~50 s
# for all 2,800 minutes on 2 cores); 11 does not divide an hour, so the sampled instants move through
# every phase of the windows (and through the windows around each restart).
EVAL_STEP = 11 * STEP

SERVICE = toy_service(MODEL, restarts=3)

SPEC = f"""\
model: {MODEL}
namespace: toy
rollout: {MODEL}
team: {{name: toy, slack_channel: "#toy-alerts", slack_webhook: {{secret: toy-alerting, key: slack}}}}
rollback_authority:
  name: Toy lead
  contact: pager
  pagerduty_routing_key: {{secret: toy-alerting, key: pd}}
prometheus:
  address: http://prometheus.invalid:9090
  selector: {{job: {MODEL}, namespace: toy}}
  auth:
    bearer_token: {{env: DRIFTGATE_TEST_TOKEN}}
    headers: {{X-Scope-OrgID: team-toy}}
budget: {{auto: 1/quarter}}
history:
  minimum: 1d
  exports:
    - exports/{MODEL}/toy_score_bucket.json
    - exports/{MODEL}/toy_request_duration_seconds_bucket.json
    - exports/{MODEL}/toy_requests_total.json
    - exports/{MODEL}/toy_request_errors_total.json
freeze:
  window: 24h
  webhook: {{url: "http://gate:8080/freeze", token: {{secret: toy-alerting, key: gate}}}}
signals:
  - {{name: score_psi, kind: distribution_drift, metric: toy_score, statistic: psi, windows: {{fast: 15m, slow: 1h}}}}
  - {{name: score_tvd, kind: distribution_drift, metric: toy_score, statistic: tvd, windows: {{fast: 15m, slow: 1h}}}}
  - {{name: score_js, kind: distribution_drift, metric: toy_score, statistic: js, windows: {{fast: 15m, slow: 1h}}}}
  - name: latency_p99
    kind: latency_quantile
    metric: toy_request_duration_seconds
    quantile: 0.99
    windows: {{fast: 15m, slow: 1h}}
  - name: error_ratio
    kind: error_ratio
    numerator: toy_request_errors_total
    denominator: toy_requests_total
    windows: {{fast: 15m, slow: 1h}}
"""


@dataclasses.dataclass(frozen=True)
class Setup:
    server: PrometheusServer
    promtool: str
    docs: dict[str, dict[str, Any]]
    root: Path
    rules_dir: Path
    timings: dict[str, float]


@pytest.fixture(scope="module", params=PROMETHEUS_FLAVOURS)
def setup(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Setup]:
    binary, promtool = tool("prometheus", request.param), tool("promtool", request.param)
    timings: dict[str, float] = {}
    clock = time.monotonic()
    base = tmp_path_factory.mktemp("prometheus")
    docs = synth.generate(SERVICE, START, DAYS, STEP, SEED)
    root = tmp_path_factory.mktemp("repo")
    (root / "specs").mkdir()
    (root / "specs" / f"{MODEL}.yaml").write_text(SPEC)
    with backfilled_server(binary, promtool, docs, base) as (server, rules_dir):
        timings["backfill and start"] = time.monotonic() - clock
        yield Setup(server, promtool, docs, root, rules_dir, timings)


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def exported(setup: Setup) -> Setup:
    clock = time.monotonic()
    result = _cli("export", "--root", str(setup.root), "--url", setup.server.url,
                  "--start", "2026-09-01T00:00:00Z", "--end", "2026-09-03T00:00:00Z",
                  "--step", "1m", "--points-per-chunk", "1000", env={"DRIFTGATE_TEST_TOKEN": TOKEN})
    setup.timings["export"] = time.monotonic() - clock
    # 4 metrics x 4 chunks: 2881 points in spans of 1000 steps aligned to the epoch
    assert "chunk 16/16" in result.stderr
    return setup


@pytest.fixture(scope="module")
def rendered(exported: Setup) -> Setup:
    clock = time.monotonic()
    _cli("fit", "--root", str(exported.root))
    exported.timings["fit"] = time.monotonic() - clock
    clock = time.monotonic()
    _cli("render", "--root", str(exported.root))
    exported.timings["render"] = time.monotonic() - clock
    return exported


def test_exported_samples_equal_the_backfilled_ones(exported: Setup) -> None:
    out = exported.root / "exports" / MODEL
    for metric, doc in exported.docs.items():
        assert (out / f"{metric}.json").read_bytes() == synth.render_export(doc), metric
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["server"] == exported.server.url
    assert manifest["auth"] == "bearer" and manifest["headers"] == ["X-Scope-OrgID"]
    assert manifest["chunks_per_query"] == 4 and manifest["step_seconds"] == STEP
    assert not (out / ".partial").exists()


def test_token_is_written_nowhere(rendered: Setup) -> None:
    for path in rendered.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_fit_and_render_produce_the_rules(rendered: Setup) -> None:
    base = bl.load(rendered.root / "baselines" / f"{MODEL}.yaml", MODEL)
    assert base.step_seconds == STEP and not base.provisional
    assert (rendered.root / "generated" / "prometheus" / "rules" / f"{MODEL}.rules.yaml").is_file()


def _rules(setup: Setup) -> dict[str, Any]:
    text = (setup.root / "generated" / "prometheus" / "rules" / f"{MODEL}.rules.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_promql_statistics_equal_the_offline_fitter(rendered: Setup) -> None:
    """Every signal and window, at every 11th minute of the history (where the fitter decides)."""
    root = rendered.root
    (spec,) = load_specs(root, root / "specs")
    base = bl.load(root / "baselines" / f"{MODEL}.yaml", MODEL)
    rules = recording_rules(_rules(rendered))
    store = load_store(root, spec)
    start, end = store.time_range()
    materialised = materialise_on(rendered.server, rendered.promtool, rendered.rules_dir.parent, rules, start, end,
                                  STEP)
    client = Client(rendered.server.url, timeout=300)
    assert any("step_increase" in name for name in materialised), materialised
    worst: dict[str, float] = {}
    compared = 0
    for signal in spec.signals:
        data = resolve(spec, signal, store, start, end)
        if signal.kind is SignalKind.DISTRIBUTION_DRIFT:
            # The rules carry the baseline file's shares (6 significant digits): compare like with like.
            data = dataclasses.replace(data, baseline_q=np.array(base.signal(signal.name).probabilities))
        for which, w in signal.windows.items():
            offline = history(data, float(w.seconds), start, end, STEP)
            name = f"model_version:driftgate_{signal.name}:{signal.statistic.value}{w.text}"
            expr = inline(f'{name}{{model="{MODEL}",signal="{signal.name}"}}', rules, materialised=materialised)
            (series,) = client.query_range(expr, offline.t[0], offline.t[-1], EVAL_STEP)
            t = np.array([float(x) for x, _ in series["values"]])
            prom = np.array([float(v) for _, v in series["values"]])
            idx = np.searchsorted(offline.t, t)
            assert np.array_equal(offline.t[idx], t)
            want = offline.value[idx]
            decided = np.isfinite(want)
            assert decided.sum() > 0.9 * t.size, (signal.name, which)
            rel = np.abs(prom[decided] - want[decided]) / np.maximum(np.abs(want[decided]), 1e-300)
            worst[f"{signal.name}/{which}"] = float(rel.max())
            compared += int(decided.sum())
    print(f"\ncompared {compared} values; max relative difference PromQL vs numpy per signal/window: "
          + ", ".join(f"{k}={v:.2e}" for k, v in sorted(worst.items())))
    print("timings: " + ", ".join(f"{k}={v:.1f}s" for k, v in rendered.timings.items()))
    assert max(worst.values()) <= TOLERANCE, worst


def _stamp(text: str) -> float:
    """Go's RFC 3339 with nanoseconds (``0001-01-01T00:00:00Z`` before the first evaluation)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp() if text else 0.0


def test_rule_groups_load_and_evaluate_healthy(rendered: Setup) -> None:
    doc = _rules(rendered)
    for group in doc["groups"]:
        group["interval"] = "1s"  # the file says 1m; evaluate now rather than in a minute
    shutil.rmtree(rendered.rules_dir)
    rendered.rules_dir.mkdir()
    (rendered.rules_dir / f"{MODEL}.rules.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    reloaded = time.time()
    rendered.server.reload()
    wanted = {g["name"]: len(g["rules"]) for g in doc["groups"]}
    deadline = time.monotonic() + 20
    groups: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        groups = rendered.server.get("/api/v1/rules")["groups"]
        evaluated = [g for g in groups if _stamp(g.get("lastEvaluation", "")) > reloaded]
        if {g["name"] for g in evaluated} == set(wanted):
            break
        time.sleep(0.2)
    assert {g["name"]: len(g["rules"]) for g in groups} == wanted, rendered.server.log_text()
    unhealthy = [(g["name"], r.get("name"), r.get("health"), r.get("lastError")) for g in groups for r in g["rules"]
                 if r.get("health") != "ok"]
    assert not unhealthy
