"""A baseline (and its evidence file) must mean what the fit writes, not only have its shape.

``driftgate.baseline.check_meaning`` holds one rule table, FIELD_RULES, for every field of every
baseline dataclass; ``driftgate.fit.evidence.meaning_problems`` the evidence file's. Here:

1. every field has its entry in the table (a field a future fit adds must say what it may hold);
2. every committed baseline and the corpus base, fitted in a temporary copy, pass every check;
3. for each invariant, a mutation of a real baseline that breaks it is refused by ``driftgate render``
   and ``driftgate validate`` with exit status 1, a message naming the key path, and nothing written;
4. no value of any field, however hostile, ends in anything but a clean refusal (no traceback).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate.cli import main
from driftgate.errors import BaselineError
from driftgate.fit import evidence as ev
from tests.conftest import REPO

CORPUS_BASE = REPO / "tests/corpus/base"


def run_cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus base, fitted and rendered in a temporary copy."""
    root = tmp_path_factory.mktemp("meaning") / "demo"
    shutil.copytree(CORPUS_BASE, root)
    for command in ("fit", "render"):
        code, out, err = run_cli([command, "--root", str(root)])
        assert code == 0, f"{command}: {out}{err}"
    return root


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed example (specs, baselines and what they render), in a temporary copy."""
    root = tmp_path_factory.mktemp("meaning") / "example"
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    return root


# --------------------------------------------------------------------------------- 1. the table


def test_every_field_has_its_rules() -> None:
    for tp in (bl.Baseline, bl.SignalFit, bl.WindowFit, bl.ThresholdFit, bl.Detection):
        fields = {f.name for f in dataclasses.fields(tp)}
        listed = set(bl.FIELD_RULES[tp])
        assert fields == listed, (f"{tp.__name__}: fields without rules {sorted(fields - listed)}, rules without "
                                  f"a field {sorted(listed - fields)}: add them to driftgate.baseline.FIELD_RULES")


def test_every_fit_input_has_its_parser(demo: Path) -> None:
    """The fit inputs the fit records are exactly those MODEL_INPUTS and SIGNAL_INPUTS know."""
    for path in [demo / "baselines/demo.yaml", *sorted((REPO / "baselines").glob("*.yaml"))]:
        baseline = bl.load(path, path.name)
        for key in baseline.fit_inputs:
            if key.startswith("signals."):
                assert key.split(".", 2)[2] in bl.SIGNAL_INPUTS, key
            else:
                assert key in bl.MODEL_INPUTS, key


# --------------------------------------------------------------------------------- 2. real fits pass


def _real_baselines(demo: Path) -> list[tuple[Path, Path]]:
    pairs = [(demo / "baselines/demo.yaml", demo / "baselines/demo.evidence.json")]
    for path in sorted((REPO / "baselines").glob("*.yaml")):
        pairs.append((path, path.with_name(path.name.removesuffix(".yaml") + ".evidence.json")))
    assert len(pairs) >= 3
    return pairs


def test_real_fits_mean_what_the_fit_writes(demo: Path) -> None:
    for path, evidence in _real_baselines(demo):
        baseline = bl.load(path, path.name)  # raises BaselineError on any problem
        loaded = ev.load(evidence, evidence.name, None, baseline)
        assert loaded is not None and not ev.meaning_problems(loaded, evidence.name, baseline)


EXPORTS = "exports/demo/"


def _export(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CORPUS_BASE / EXPORTS / name).read_text(encoding="utf-8"))
    return doc


def _scaled(name: str, factor: float) -> str:
    """An export with every counter scaled (0: a counter that never moves)."""
    doc = _export(name)
    for s in doc["data"]["result"]:
        s["values"] = [[t, str(int(float(v) * factor))] for t, v in s["values"]]
    return json.dumps(doc)


def _one_bin() -> str:
    """Every score in the first bucket."""
    doc = _export("demo_score_bucket.json")
    total = {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "le")): s["values"]
             for s in doc["data"]["result"] if s["metric"]["le"] == "+Inf"}
    for s in doc["data"]["result"]:
        s["values"] = total[tuple(sorted((k, v) for k, v in s["metric"].items() if k != "le"))]
    return json.dumps(doc)


def _successes(factor: float = 1.0) -> str:
    """requests - errors (scaled), a KPI ratio near 1."""
    doc, errors = _export("demo_requests_total.json"), _export("demo_request_errors_total.json")
    by = {tuple(sorted(s["metric"].items())[1:]): dict(s["values"]) for s in errors["data"]["result"]}
    for s in doc["data"]["result"]:
        e = by[tuple(sorted(s["metric"].items())[1:])]
        s["metric"]["__name__"] = "demo_request_success_total"
        s["values"] = [[t, str(int((float(v) - float(e.get(t, 0))) * factor))] for t, v in s["values"]]
    return json.dumps(doc)


LOW = [("    min_events: 200\n", "    min_events: 20\n"),
       ("    quantile: 0.99\n", "    quantile: 0.99\n    min_events: 20\n"),
       ("    denominator: demo_requests_total\n", "    denominator: demo_requests_total\n    min_events: 20\n")]
SUCCESS = [("    kind: error_ratio\n    numerator: demo_request_errors_total\n",
            "    kind: kpi_ratio\n    numerator: demo_request_success_total\n"),
           ("    - exports/demo/demo_request_errors_total.json\n",
            "    - exports/demo/demo_request_errors_total.json\n    - exports/demo/demo_request_success_total.json\n")]
# Unusual but valid histories and specs: what the fit writes for them must pass (no false refusal).
VARIANTS: dict[str, tuple[list[tuple[str, str]], dict[str, Any]]] = {
    "all-mass-in-one-bin": ([], {"demo_score_bucket.json": _one_bin}),
    "sparse-windows": ([("    quantile: 0.99\n", "    quantile: 0.99\n    min_events: 34000\n")], {}),
    "provisional": ([("minimum: 2d", "minimum: 7d")], {}),
    # history.exclude: overlapping spans, one outside the history; and enough excluded to be provisional.
    "excluded": ([("  minimum: 2d\n", "  minimum: 2d\n  exclude:\n"
                   "    - {from: 2026-10-30T10:00:00Z, to: 2026-10-30T10:25:00Z, reason: INC-1}\n"
                   "    - {from: 2026-10-30T10:20:00Z, to: 2026-10-30T12:00:00Z, reason: INC-2}\n"
                   "    - {from: 2025-01-01T00:00:00Z, to: 2025-01-02T00:00:00Z, reason: long before}\n")], {}),
    "excluded-provisional": ([("  minimum: 2d\n", "  minimum: 2d\n  exclude:\n"
                               "    - {from: 2026-10-29T12:00:00Z, to: 2026-10-30T12:00:00Z, reason: INC-3}\n")], {}),
    "js": ([("    metric: demo_score\n", "    metric: demo_score\n    statistic: js\n")], {}),
    "tvd-below": ([("    metric: demo_score\n",
                    "    metric: demo_score\n    statistic: tvd\n    direction: below\n")], {}),
    "latency-below": ([("    quantile: 0.99\n", "    quantile: 0.99\n    direction: below\n")], {}),
    "kpi-from-errors": ([("    kind: error_ratio\n", "    kind: kpi_ratio\n")], {}),
    "kpi-near-one-low-traffic": (SUCCESS + LOW, {
        "demo_request_success_total.json": lambda: _successes(0.01),
        **{n: (lambda n=n: _scaled(n, 0.01)) for n in (
            "demo_requests_total.json", "demo_score_bucket.json", "demo_request_duration_seconds_bucket.json")}}),
    "all-manual": ([("    windows: {fast: 1h, slow: 2h}\n",
                     "    windows: {fast: 1h, slow: 2h}\n    tier: manual\n")], {}),
    "budget-at-the-cap": ([("  auto: 1/quarter\n  manual: 1/week\n", "  auto: 1000/day\n  manual: 1000/day\n")], {}),
    "canary-never-decides": ([("  failure_limit: 1\n", "  failure_limit: 1\n  canary_weight: 0.01\n")], {}),
    "canary-at-full-weight": ([("  failure_limit: 1\n", "  failure_limit: 1\n  canary_weight: 1\n")], {}),
    "odd-windows": ([("windows: {fast: 1h, slow: 2h}", "windows: {fast: 20m, slow: 3h}")], {}),
    "evaluation-5m": ([("  selector: {job: demo, namespace: demo}\n",
                        "  selector: {job: demo, namespace: demo}\n  evaluation_interval: 5m\n")], {}),
    "no-errors": ([], {"demo_request_errors_total.json": lambda: _scaled("demo_request_errors_total.json", 0)}),
    "kpi-near-one": (SUCCESS, {"demo_request_success_total.json": _successes}),
    "low-traffic": (LOW, {n: (lambda n=n: _scaled(n, 0.01)) for n in (
        "demo_request_errors_total.json", "demo_requests_total.json", "demo_score_bucket.json",
        "demo_request_duration_seconds_bucket.json")}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unusual_fits_pass(variant: str, tmp_path: Path) -> None:
    edits, files = VARIANTS[variant]
    root = tmp_path / "repo"
    shutil.copytree(CORPUS_BASE, root)
    spec = root / "specs/demo.yaml"
    text = spec.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    spec.write_text(text, encoding="utf-8")
    for name, make in files.items():
        (root / EXPORTS / name).write_text(make(), encoding="utf-8")
    code, out, err = run_cli(["fit", "--root", str(root)])
    assert code == 0, out + err
    baseline = bl.load(root / "baselines/demo.yaml", "baselines/demo.yaml")  # no BaselineError
    assert ev.load(root / "baselines/demo.evidence.json", "baselines/demo.evidence.json", root, baseline)


def test_the_committed_example_renders_as_committed() -> None:
    code, out, err = run_cli(["check", "--root", str(REPO)])
    assert code == 0, out + err


# --------------------------------------------------------------------------------- 3. each invariant

# (id, repository, file, {key path: value} or {"delete": [key paths]}, the key path the message names).
# repository "demo" is the fitted corpus base; "example" the committed one (reco-ranker has tail fits and a
# KPI ratio with direction below, fraud-scorer a provisional fit).
D, R, F = "baselines/demo.yaml", "baselines/reco-ranker.yaml", "baselines/fraud-scorer.yaml"
DE = "baselines/demo.evidence.json"
MUTATIONS: list[tuple[str, str, str, dict[str, Any], str]] = [
    # the baseline
    ("model-name", "demo", D, {"model": "Demo!"}, "model"),
    ("spec-absolute", "demo", D, {"spec": "/etc/demo.yaml"}, "spec"),
    ("input-hash-shape", "demo", D, {"input_hash": "sha256:abc"}, "input_hash"),
    ("history-start-format", "demo", D, {"history_start": "2026-10-29 00:00"}, "history_start"),
    ("history-end-before-start", "demo", D, {"history_end": "2026-10-01T00:00:00Z"}, "history_end"),
    ("history-days", "demo", D, {"history_days": 30.0}, "history_days"),
    ("step-negative", "demo", D, {"step_seconds": -5}, "step_seconds"),
    ("minimum-days", "demo", D, {"minimum_days": 5.0}, "minimum_days"),
    ("excluded-days-without-spans", "demo", D, {"excluded_days": 1.0}, "excluded_days"),
    ("excluded-days-negative", "demo", D, {"excluded_days": -1.0}, "excluded_days"),
    ("fit-input-exclude-unreadable", "demo", D, {"fit_inputs.history.exclude": '[{"from": "2026-10-30"}]'},
     "fit_inputs.history.exclude"),
    ("provisional-flipped", "example", F, {"provisional": False}, "provisional"),
    ("budget-auto", "demo", D, {"budget_auto": "2/quarter"}, "budget_auto"),
    ("budget-manual-grammar", "demo", D, {"budget_manual": "often"}, "budget_manual"),
    ("auto-configurations", "demo", D, {"auto_configurations": 4}, "auto_configurations"),
    ("manual-configurations", "demo", D, {"manual_configurations": 8}, "manual_configurations"),
    ("signals-empty", "demo", D, {"signals": []}, "signals"),
    # a signal
    ("signal-name-twice", "demo", D, {"signals[1].name": "score_drift"}, "signals[1].name"),
    ("signal-without-inputs", "demo", D, {"signals[2].name": "error_rate"}, "signals[2].name"),
    ("kind-not-fitted", "demo", D, {"signals[1].kind": "error_ratio"}, "signals[1].kind"),
    ("statistic-for-kind", "demo", D, {"signals[0].statistic": "quantile"}, "signals[0].statistic"),
    ("compare-with-ratio", "demo", D, {"signals[2].compare_with": "last_week"}, "signals[2].compare_with"),
    ("les-decreasing", "demo", D, {"signals[1].les": ["0.5", "0.1", "1", "+Inf"]}, "signals[1].les[1]"),
    ("les-for-ratio", "demo", D, {"signals[2].les": ["1", "+Inf"]}, "signals[2].les"),
    ("shares-sum", "demo", D, {"signals[0].probabilities": [0.9, 0.9, 0.9, 0.9]}, "signals[0].probabilities"),
    ("share-above-one", "demo", D, {"signals[0].probabilities[1]": 1.5}, "signals[0].probabilities[1]"),
    ("shares-for-ratio", "demo", D, {"signals[2].probabilities": [1.0]}, "signals[2].probabilities"),
    # a window
    ("window-not-fitted", "demo", D, {"signals[0].fast.window": "30m"}, "signals[0].fast.window"),
    ("slow-not-longer", "demo", D, {"signals[0].slow.window": "30m",
                                     "fit_inputs.signals.score_drift.windows": '{"fast": "1h", "slow": "30m"}'},
     "signals[0].slow.window"),
    ("windows-total", "demo", D, {"signals[0].fast.windows_total": 500}, "signals[0].fast.windows_total"),
    ("windows-decided", "demo", D, {"signals[0].fast.windows_decided": 100}, "signals[0].fast.windows_decided"),
    ("events-negative", "demo", D, {"signals[0].fast.events_p05": -1.0}, "signals[0].fast.events_p05"),
    ("events-median-below-p05", "demo", D, {"signals[0].fast.events_p50": 10.0}, "signals[0].fast.events_p50"),
    ("ratio-statistic-negative", "demo", D, {"signals[2].fast.statistic_p50": -0.5}, "signals[2].fast.statistic_p50"),
    ("tvd-above-one", "example", R, {"signals[1].fast.statistic_max": 1.5}, "signals[1].fast.statistic_max"),
    ("quantile-beyond-buckets", "demo", D, {"signals[1].fast.statistic_max": 0.9}, "signals[1].fast.statistic_max"),
    ("tail-below-median", "demo", D, {"signals[0].fast.statistic_tail": 1e-05}, "signals[0].fast.statistic_tail"),
    ("max-below-tail", "demo", D, {"signals[0].fast.statistic_max": 0.0001}, "signals[0].fast.statistic_max"),
    ("kpi-tail-above-median", "example", R, {"signals[4].fast.statistic_tail": 0.06}, "signals[4].fast.statistic_tail"),
    ("noise-negative", "demo", D, {"signals[0].fast.noise_coefficient": -1.0}, "signals[0].fast.noise_coefficient"),
    ("noise-not-fitted", "demo", D, {"signals[2].fast.noise_coefficient": 0.25}, "signals[2].fast.noise_coefficient"),
    ("noise-power-psi", "demo", D, {"signals[0].fast.noise_power": 0.5}, "signals[0].fast.noise_power"),
    ("noise-power-zero", "demo", D, {"signals[1].fast.noise_power": 0.0}, "signals[1].fast.noise_power"),
    ("smallest-shift-share", "demo", D, {"signals[0].fast.smallest_shift": 1.5}, "signals[0].fast.smallest_shift"),
    ("smallest-shift-quantile", "demo", D, {"signals[1].fast.smallest_shift": 0.5}, "signals[1].fast.smallest_shift"),
    ("detection-sizes", "demo", D, {"signals[0].fast.detection[0].size": 0.07}, "signals[0].fast.detection"),
    ("detection-label", "demo", D, {"signals[0].fast.detection[0].shift": "7% of mass into one bin"},
     "signals[0].fast.detection[0].shift"),
    ("delay-beyond-window", "demo", D, {"signals[0].fast.detection[1].delay_minutes": 500.0},
     "signals[0].fast.detection[1].delay_minutes"),
    ("seasonality-share", "demo", D, {"signals[0].fast.seasonality_hour_of_day": 1.5},
     "signals[0].fast.seasonality_hour_of_day"),
    ("seasonality-week-share", "demo", D, {"signals[2].slow.seasonality_hour_of_week": -0.2},
     "signals[2].slow.seasonality_hour_of_week"),
    ("canary-events", "demo", D, {"signals[0].fast.canary_events": 100000.0}, "signals[0].fast.canary_events"),
    ("canary-decides", "demo", D, {"signals[0].fast.canary_decides_after_minutes": 50.0},
     "signals[0].fast.canary_decides_after_minutes"),
    ("canary-detection-dropped", "demo", D, {"signals[0].fast.canary_detection": []},
     "signals[0].fast.canary_detection"),
    ("canary-delay-too-early", "demo", D, {"signals[0].fast.canary_detection[2].delay_minutes": 1.0},
     "signals[0].fast.canary_detection[2].delay_minutes"),
    ("canary-shift-share", "demo", D, {"signals[0].fast.canary_smallest_shift": 2.0},
     "signals[0].fast.canary_smallest_shift"),
    # a threshold
    ("method-unknown", "demo", D, {"signals[1].fast.auto.method": "best"}, "signals[1].fast.auto.method"),
    ("method-tail-missing", "demo", D, {"signals[1].fast.auto.method": "pot_gpd"}, "signals[1].fast.auto.method"),
    ("method-max-with-tail", "example", R, {"signals[0].fast.auto.method": "max_observed"},
     "signals[0].fast.auto.method"),
    ("method-empirical-few-windows", "example", R, {"signals[4].fast.auto.method": "empirical"},
     "signals[4].fast.auto.method"),
    ("zero-floor-ratio", "demo", D, {"signals[2].fast.auto.method": "zero_floor"}, "signals[2].fast.auto.method"),
    ("zero-floor-not-zero", "demo", D, {"signals[0].fast.auto.value": 0.005}, "signals[0].fast.auto.value"),
    ("drift-threshold-negative", "demo", D, {"signals[0].slow.auto.value": -0.001}, "signals[0].slow.auto.value"),
    ("ratio-threshold-negative", "demo", D, {"signals[2].fast.auto.value": -0.2}, "signals[2].fast.auto.value"),
    ("quantile-threshold-negative", "demo", D, {"signals[1].slow.manual.value": -1.0}, "signals[1].slow.manual.value"),
    ("ratio-threshold-beyond-history", "demo", D, {"signals[2].fast.auto.value": 0.5}, "signals[2].fast.auto.value"),
    ("tail-threshold-below-u", "example", R, {"signals[0].fast.auto.value": 0.005}, "signals[0].fast.auto.value"),
    ("tail-threshold-beyond-reach", "example", R, {"signals[0].fast.auto.value": 0.5}, "signals[0].fast.auto.value"),
    ("kpi-threshold-negative", "example", R, {"signals[4].fast.auto.value": -1.0}, "signals[4].fast.auto.value"),
    ("kpi-threshold-above-u", "example", R, {"signals[4].slow.auto.value": 0.5}, "signals[4].slow.auto.value"),
    ("manual-beyond-auto", "demo", D, {"signals[2].fast.manual.value": 0.004}, "signals[2].fast.manual.value"),
    ("kpi-manual-beyond-auto", "example", R, {"signals[4].fast.manual.value": 0.0425}, "signals[4].fast.manual.value"),
    ("exceedance-above-half", "demo", D, {"signals[1].fast.auto.exceedance_probability": 0.9},
     "signals[1].fast.auto.exceedance_probability"),
    ("exceedance-not-budget", "demo", D, {"signals[1].fast.auto.exceedance_probability": 0.01},
     "signals[1].fast.auto.exceedance_probability"),
    ("band-below-floor", "demo", D, {"signals[1].fast.auto.band_low": -5.0}, "signals[1].fast.auto.band_low"),
    ("band-reversed", "demo", D, {"signals[1].fast.auto.band_high": 0.1}, "signals[1].fast.auto.band_high"),
    ("band-beyond-cap", "example", R, {"signals[0].fast.auto.band_high": 1.5}, "signals[0].fast.auto.band_high"),
    ("tail-u-alone", "demo", D, {"signals[1].fast.auto.tail_u": 0.3}, "signals[1].fast.auto.tail_u"),
    ("tail-u-null", "example", R, {"signals[0].fast.manual.tail_u": None}, "signals[0].fast.manual.tail_u"),
    ("tail-shape", "example", R, {"signals[4].fast.auto.tail_shape": 0.7}, "signals[4].fast.auto.tail_shape"),
    ("tail-scale", "example", R, {"signals[4].fast.auto.tail_scale": 0.0}, "signals[4].fast.auto.tail_scale"),
    ("tail-u-beyond-max", "example", R, {"signals[4].fast.auto.tail_u": 0.01}, "signals[4].fast.auto.tail_u"),
    ("tail-not-shared", "example", F, {"signals[2].fast.manual.tail_u": 0.05}, "signals[2].fast.manual.tail_u"),
    # The manual band's episode tail (driftgate.fit.thresholds.episode_threshold): its own shape bounds, its
    # probability the budget's episodes over the history's, never the automatic threshold's method.
    # The manual band's own noise term: the noise quantile at the manual probability (or the automatic one's).
    ("manual-noise", "example", R, {"signals[0].fast.manual_noise_coefficient": 5.0},
     "signals[0].fast.manual_noise_coefficient"),
    ("manual-noise-negative", "example", R, {"signals[2].slow.manual_noise_coefficient": -0.1},
     "signals[2].slow.manual_noise_coefficient"),
    # Only a ratio or quantile compared with the stable version has the stable side's median.
    ("stable-level-on-baseline", "example", R, {"signals[3].fast.stable_p50": 0.003}, "signals[3].fast.stable_p50"),
    ("episode-shape", "example", R, {"signals[4].fast.manual.tail_shape": -0.4}, "signals[4].fast.manual.tail_shape"),
    ("episode-probability", "example", R, {"signals[0].fast.manual.exceedance_probability": 0.2},
     "signals[0].fast.manual.exceedance_probability"),
    ("episode-method-for-auto", "example", R, {"signals[0].fast.auto.method": "pot_episodes"},
     "signals[0].fast.auto.method"),
    ("episode-beyond-tail", "example", R, {"signals[0].fast.manual.value": 0.05}, "signals[0].fast.manual.value"),
    ("exceedances-without-tail", "demo", D, {"signals[1].fast.auto.tail_exceedances": 50},
     "signals[1].fast.auto.tail_exceedances"),
    ("exceedances-too-few", "example", R, {"signals[0].fast.auto.tail_exceedances": 5,
                                           "signals[0].fast.manual.tail_exceedances": 5},
     "signals[0].fast.auto.tail_exceedances"),
    ("exceedances-beyond-windows", "example", R, {
        "signals[0].slow.auto.tail_exceedances": 99999, "signals[0].slow.manual.tail_exceedances": 99999},
     "signals[0].slow.auto.tail_exceedances"),
    ("backtest-negative", "demo", D, {"signals[1].fast.auto.backtest_alerts": -1},
     "signals[1].fast.auto.backtest_alerts"),
    ("backtest-beyond-history", "demo", D, {"signals[1].fast.auto.backtest_alerts": 100000},
     "signals[1].fast.auto.backtest_alerts"),
    ("expected-alerts-zero", "demo", D, {"signals[1].fast.auto.expected_alerts": 0.0},
     "signals[1].fast.auto.expected_alerts"),
    ("expected-alerts-not-budget", "demo", D, {"signals[1].fast.manual.expected_alerts": 5.0},
     "signals[1].fast.manual.expected_alerts"),
    # the fit inputs
    ("fit-inputs-empty", "demo", D, {"fit_inputs": {}}, "fit_inputs"),
    ("fit-input-unreadable", "demo", D, {"fit_inputs.budget.auto": "lots"}, "fit_inputs.budget.auto"),
    ("fit-input-unknown", "demo", D, {"fit_inputs.signals.score_drift.colour": "blue"},
     "fit_inputs.signals.score_drift.colour"),
    ("fit-input-orphan", "demo", D, {"fit_inputs.signals.ghost.kind": "error_ratio"}, "fit_inputs.signals.ghost.*"),
    ("fit-input-missing", "demo", D, {"delete": ["fit_inputs.alerts.for"]}, "fit_inputs"),
    ("fit-input-direction", "demo", D, {"fit_inputs.signals.error_ratio.direction": "below"},
     "fit_inputs.signals.error_ratio.direction"),
    ("fit-input-statistic", "demo", D, {"fit_inputs.signals.score_drift.statistic": "js"},
     "fit_inputs.signals.score_drift.statistic"),
    # the evidence file
    ("evidence-bins-count", "demo", DE, {"signals.score_drift.recent_bins": [1, 2, 3]},
     "signals.score_drift.recent_bins"),
    ("evidence-bins-for-quantile", "demo", DE, {"signals.latency_p99.recent_bins": [1, 2]},
     "signals.latency_p99.recent_bins"),
    ("evidence-bin-negative", "demo", DE, {"signals.score_drift.recent_bins[1]": -4},
     "signals.score_drift.recent_bins[1]"),
    ("evidence-start-mid-hour", "demo", DE, {"signals.score_drift.fast.start": 1793230000},
     "signals.score_drift.fast.start"),
    ("evidence-ends-apart", "demo", DE, {"delete": ["signals.error_ratio.fast.values[0]",
                                                    "signals.error_ratio.fast.statistic[0]",
                                                    "signals.error_ratio.fast.events[0]"]}, "signals.error_ratio"),
    ("evidence-values-empty", "demo", DE, {"signals.score_drift.fast.values": []}, "signals.score_drift.fast.values"),
    ("evidence-signal-orphan", "demo", DE,
     {"signals.ghost": {"fast": {"start": 0, "values": [1]}, "slow": {"start": 0, "values": [1]}, "recent_bins": []}},
     "signals.ghost"),
    ("evidence-signal-missing", "demo", DE, {"delete": ["signals.error_ratio"]}, "signals"),
    ("evidence-model", "demo", DE, {"model": "other"}, "model"),
]


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    if path.startswith("fit_inputs."):  # its keys have dots
        return ["fit_inputs", path.removeprefix("fit_inputs.")]
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def mutate(root: Path, rel: str, changes: dict[str, Any]) -> None:
    """Apply ``changes`` to a YAML or JSON file the way a hand edit would, keeping its header line."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    for key, value in changes.items():
        for target in (value if key == "delete" else [key]):
            *parents, last = _steps(target)
            node = doc
            for step in parents:
                node = node[step]
            if key == "delete":
                del node[last]
            else:
                node[last] = value
    if path.suffix == ".json":
        path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
        return
    header = text.split("\n", 1)[0] + "\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=1000),
                    encoding="utf-8")


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_mutations_cover_every_rule() -> None:
    """At least one mutation per field of the tables that has a rule of its own."""
    named = {re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1] for *_, path in MUTATIONS}
    for tp, rules in bl.FIELD_RULES.items():
        for field, checks in rules.items():
            if checks and tp is not bl.Detection:
                assert field in named, f"no mutation breaks {tp.__name__}.{field}"


@pytest.mark.parametrize(("case", "repo", "rel", "changes", "where"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_is_refused(case: str, repo: str, rel: str, changes: dict[str, Any], where: str,
                             demo: Path, committed: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(demo if repo == "demo" else committed, root)
    mutate(root, rel, changes)
    before = snapshot(root)
    for command in ("render", "validate"):
        code, out, err = run_cli([command, "--root", str(root)])
        assert "Traceback" not in out + err, err
        assert code == 1, f"{case}: {command} exited {code}:\n{out}{err}"
        assert err.startswith("driftgate: error: "), err
        lines = [line for line in err.splitlines() if line.startswith(f"{rel}")]
        assert any(f": {where}: " in line for line in lines), f"{case}: {command} does not name {where}:\n{err}"
        located = [line for line in lines if f": {where}: " in line]
        if rel.endswith(".yaml"):
            assert all(re.match(rf"{re.escape(rel)}:\d+:\d+: error: ", line) for line in located), err  # a line
        assert all("refit with 'driftgate fit --force' or restore the file" in line for line in located), err
        assert snapshot(root) == before, f"{case}: {command} wrote something"


# --------------------------------------------------------------------------------- 4. no traceback, ever


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


HOSTILE = (-1e6, 0, 1e6, None, "x")  # 0: where a count or a scale may not be


def test_any_value_is_a_clean_refusal(demo: Path) -> None:
    """Every leaf of a real baseline set to a hostile value: accepted or refused with problems, never an
    exception (which the command line would report as a bug). The file's values, not its YAML: converted
    and checked as :func:`driftgate.baseline.load` does."""
    from driftgate.spec.reader import Reader
    from driftgate.spec.yamlload import Marks

    doc = yaml.safe_load((demo / "baselines/demo.yaml").read_text(encoding="utf-8"))
    refused = 0
    # The first item of each list stands for the others (they are checked alike).
    for path, _ in [leaf for leaf in _leaves(doc) if not any(isinstance(p, int) and p > 0 for p in leaf[0])]:
        for value in HOSTILE:
            copy = json.loads(json.dumps(doc))
            node = copy
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
            r = Reader(Marks("baselines/demo.yaml"))
            baseline = bl._convert(bl.Baseline, copy, (), r)
            if isinstance(baseline, bl.Baseline):
                bl.check_meaning(baseline, r)
            refused += bool(r.problems)
    assert refused > 0


def test_older_fit_versions_are_read_by_their_shape(demo: Path, tmp_path: Path) -> None:
    """'driftgate review' reads BASE's baselines of an older fit_version (lenient): their invariants may
    differ, so only the shape is checked (a negative noise term of an old fit is not this version's to judge)."""
    doc = yaml.safe_load((demo / "baselines/demo.yaml").read_text(encoding="utf-8"))
    doc["fit_version"] = bl.FIT_VERSION - 1
    doc["signals"][0]["fast"]["noise_coefficient"] = -1.0
    del doc["fit_inputs"]
    target = tmp_path / "demo.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")
    assert bl.load(target, "demo.yaml", any_fit_version=True).fit_version == bl.FIT_VERSION - 1
    doc["fit_version"] = bl.FIT_VERSION  # the same file at this version: refused
    target.write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")
    with pytest.raises(BaselineError):
        bl.load(target, "demo.yaml", any_fit_version=True)
