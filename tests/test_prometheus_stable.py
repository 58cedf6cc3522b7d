"""``compare_with: stable`` in a real Prometheus (Debian's 2.x and a current 3.x): a young version against
the established one, as the generated rule chain computes it inside Prometheus, equals what the offline
fitter computes for the history's real release (:func:`driftgate.fit.signals.version_pairs`), for a drift
statistic, a latency quantile and an error ratio, to 1e-6 relative.

A seeded synthetic history (2 pods for 2 days at 1m, one pod restart) with a canary release (its own
pod-template hash, 15% of the traffic, from hour 36 to hour 42, with twice the errors) is
backfilled; the spec's signals compare with the stable version; ``driftgate fit`` and ``render`` run on
the exports. The per-step series and every recorded series a rule reads over a range or with an offset
(the release horizon's ``offset 24h``) are recorded first, as a rule group evaluating every minute would
have written them (:func:`tests.promserver.materialise`); the rest of the chain is inlined.

Under CI=true a missing ``prometheus``/``promtool`` fails instead of skipping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from driftgate import baseline as bl
from driftgate import pipeline, synth
from driftgate.exports.load import load_store
from driftgate.exports.promhttp import Client
from driftgate.fit.signals import Stable, resolve, version_pairs
from driftgate.fit.windows import eval_grid
from driftgate.model import SignalKind
from driftgate.render.rules import statistic_token
from driftgate.spec.load import load_specs
from tests.conftest import PROMETHEUS_FLAVOURS, tool
from tests.promserver import PrometheusServer, backfilled_server, inline, materialise_on, recording_rules, toy_service

pytestmark = pytest.mark.tools

MODEL = "toy-canary"
START = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())
DAYS = 2
STEP = 60
SEED = 20261204
TOLERANCE = 1e-6
EVAL_STEP = 7 * STEP  # every 7th minute of the release: ~50 instants per signal and window
RELEASE = (START + 36 * 3600, START + 42 * 3600)

SERVICE = toy_service(MODEL, restarts=1)
CANARY = synth.Canary(weight=0.15, pods=1)
INCIDENTS = (synth.Incident(synth.IncidentKind.ERROR_REGRESSION, *RELEASE, magnitude=2.0, canary=CANARY),)

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
  - name: score_psi
    kind: distribution_drift
    metric: toy_score
    compare_with: stable
    windows: {{fast: 15m, slow: 1h}}
  - name: latency_p99
    kind: latency_quantile
    metric: toy_request_duration_seconds
    quantile: 0.99
    compare_with: stable
    windows: {{fast: 15m, slow: 1h}}
  - name: error_ratio
    kind: error_ratio
    numerator: toy_request_errors_total
    denominator: toy_requests_total
    compare_with: stable
    windows: {{fast: 15m, slow: 1h}}
"""


@dataclasses.dataclass(frozen=True)
class Setup:
    server: PrometheusServer
    promtool: str
    root: Path
    work: Path


@pytest.fixture(scope="module", params=PROMETHEUS_FLAVOURS)
def setup(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Setup]:
    binary, promtool = tool("prometheus", request.param), tool("promtool", request.param)
    base = tmp_path_factory.mktemp("prometheus-stable")
    docs = synth.generate(SERVICE, START, DAYS, STEP, SEED, INCIDENTS)
    root = tmp_path_factory.mktemp("repo-stable")
    (root / "specs").mkdir()
    (root / "specs" / f"{MODEL}.yaml").write_text(SPEC)
    synth.write_exports(docs, root / "exports" / MODEL)
    pipeline.fit(root, root / "specs", MODEL)
    pipeline.render(root, root / "specs")
    with backfilled_server(binary, promtool, docs, base) as (server, _rules_dir):
        yield Setup(server, promtool, root, base)


def test_the_release_against_stable_equals_the_offline_fitter(setup: Setup) -> None:
    root = setup.root
    (spec,) = load_specs(root, root / "specs")
    base = bl.load(root / "baselines" / f"{MODEL}.yaml", MODEL)
    assert all(base.signal(s.name).compare_with == "stable" for s in spec.signals)
    doc = yaml.safe_load((root / "generated/prometheus/rules" / f"{MODEL}.rules.yaml").read_text())
    rules = recording_rules(doc)
    store = load_store(root, spec)
    start, end = store.time_range()
    client = Client(setup.server.url, timeout=300)
    materialised = materialise_on(setup.server, setup.promtool, setup.work, rules, start, end, STEP)
    assert any(":increase15m" in name for name in materialised), materialised  # read with offset 24h
    how = Stable(spec.analysis.canary_weight, float(spec.release.horizon.seconds), spec.prometheus.version_label)
    canary = next(s.label(how.version_label) for s in store.select("toy_requests_total", ())
                  if s.label(how.version_label) != SERVICE.pod_template_hash)
    worst: dict[str, float] = {}
    for signal in spec.signals:
        data = resolve(spec, signal, store, start, end)
        for which, w in signal.windows.items():
            t = eval_grid(start, end, STEP, float(w.seconds))
            real = version_pairs(data, t, float(w.seconds), STEP, how)
            assert real is not None, (signal.name, which)
            at, value, n, m, level = real
            decided = at & (t >= RELEASE[0] + float(w.seconds))  # a whole window of the release
            name = f"model_version:driftgate_{signal.name}:{statistic_token(signal)}{w.text}"
            expr = inline(f'{name}{{model="{MODEL}",signal="{signal.name}"}}', rules, materialised=materialised)
            lo, hi = float(t[decided][0]), float(t[decided][-1])
            result = client.query_range(expr, lo, hi, EVAL_STEP)
            # Only the young version has a statistic: the established one has nothing to compare with.
            assert [r["metric"].get(how.version_label) for r in result] == [canary], (signal.name, which)
            times = np.array([float(x) for x, _ in result[0]["values"]])
            prom = np.array([float(v) for _, v in result[0]["values"]])
            idx = np.searchsorted(t, times)
            assert np.array_equal(t[idx], times) and decided[idx].all()
            assert times.size >= 0.9 * ((hi - lo) / EVAL_STEP), (signal.name, which)
            want = value[idx]
            rel = np.abs(prom - want) / np.maximum(np.abs(want), 1e-12)
            worst[f"{signal.name}/{which}"] = float(rel.max())
            # The two-sample count the noise term scales with.
            count = f"{signal.metric}_count" if signal.is_histogram else signal.denominator
            effective = inline(f'model_version:{count}:effective{w.text}{{model="{MODEL}"}}', rules,
                               materialised=materialised)
            mine = next(r for r in client.query_range(effective, lo, hi, EVAL_STEP)
                        if r["metric"].get(how.version_label) == canary)
            got = np.array([float(v) for _, v in mine["values"]])
            assert np.allclose(got, (n * m / (n + m))[idx], rtol=TOLERANCE), (signal.name, which)
            if signal.kind is not SignalKind.DISTRIBUTION_DRIFT:
                assert level is not None
                stable = inline(f'model_stable:driftgate_{signal.name}:{signal.statistic.value}{w.text}'
                                f'{{model="{MODEL}",signal="{signal.name}"}}', rules, materialised=materialised)
                (series,) = client.query_range(stable, lo, hi, EVAL_STEP)
                theirs = np.array([float(v) for _, v in series["values"]])
                assert np.allclose(theirs, level[idx], rtol=TOLERANCE, atol=1e-12), (signal.name, which)
    print("\nmax relative difference PromQL vs numpy, release against stable: "
          + ", ".join(f"{k}={v:.2e}" for k, v in sorted(worst.items())))
    assert max(worst.values()) <= TOLERANCE, worst
