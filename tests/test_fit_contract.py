"""The fitting contract, checked on small seeded synthetic histories (driftgate.synth), in the spirit of
scikit-learn's estimator checks: deterministic, skipped when nothing changed, refitted when anything
fit-relevant changed, clear errors on too little data, sane thresholds, lossless baselines, the
provisional rule, counter resets repaired per series, and the tail fit itself.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate import pipeline, synth
from driftgate.cli import main
from driftgate.errors import DriftgateError, FitError
from driftgate.exports.load import load_store
from driftgate.exports.series import FloatArray, Series
from driftgate.fit import thresholds as th
from driftgate.fit.signals import SignalData, history, resolve
from driftgate.render.env import header
from driftgate.spec.load import load_specs
from tests.conftest import REPO

END = 1_793_491_200  # 2026-11-01T00:00:00Z, as scripts/make_example_exports.py
STEP = 600
DAYS = 3
SEED = 4711

SERVICE = synth.ServiceModel(
    job="mini", namespace="mini-ns", metric_prefix="mini", pods=2, pod_template_hash="5f7c9d8b6",
    peak_rps=30.0,
    score=synth.ScoreModel(bounds=(0.2, 0.4, 0.6, 0.8, 1.0),
                           components=(synth.BetaComponent(0.6, 2.0, 5.0, -0.1),
                                       synth.BetaComponent(0.4, 5.0, 2.0, 0.1))),
    latency=synth.LatencyModel(bounds=(0.01, 0.05, 0.1, 0.5, 1.0), mu=-3.0, sigma=0.6),
    error_prob=0.01, impressions_per_request=5.0, ctr=0.05, restarts=3,
)
METRICS = ("mini_score_bucket", "mini_requests_total", "mini_request_errors_total", "mini_impressions_total",
           "mini_clicks_total")

ERRORS = """\
  - name: error_ratio
    kind: error_ratio
    numerator: mini_request_errors_total
    denominator: mini_requests_total
    windows: {fast: 2h, slow: 3h}
    min_events: 1000
"""
SIGNALS = """\
  - name: score_drift
    kind: distribution_drift
    metric: mini_score
    statistic: psi
    windows: {fast: 2h, slow: 3h}
    min_events: 500
""" + ERRORS + """\
  - name: ctr
    kind: kpi_ratio
    numerator: mini_clicks_total
    denominator: mini_impressions_total
    direction: below
    windows: {fast: 2h, slow: 3h}
    min_events: 2000
"""


def spec_text(signals: str = SIGNALS, minimum: str = "2d", budget: str = "1/quarter",
              manual: str = "20/day", release: str = "") -> str:
    """specs/reco-ranker.yaml, cut down to the mini service, with a short history minimum."""
    text = (REPO / "specs/reco-ranker.yaml").read_text(encoding="utf-8")
    text = text.split("\nsignals:\n")[0] + "\nsignals:\n" + signals
    text = re.sub(r"\nrelease:\n(  [^\n]*\n)+", "\n", text)  # the example's auto_undo: not the mini service's
    text = text.replace("model: reco-ranker", "model: mini").replace("rollout: reco-ranker", "rollout: mini")
    text = text.replace("namespace: reco\n", "namespace: mini-ns\n")
    text = text.replace("selector: {job: reco-ranker, namespace: reco}", "selector: {job: mini, namespace: mini-ns}")
    text = re.sub(r"budget:\n  auto: [^\n]*\n  manual: [^\n]*\n",
                  f"budget:\n  auto: {budget}\n  manual: {manual}\n", text)
    exports = "".join(f"    - exports/mini/{m}.json\n" for m in METRICS)
    text = re.sub(r"history:\n  minimum: [^\n]*\n  exports:\n(    - [^\n]*\n)+",
                  f"history:\n  minimum: {minimum}\n  exports:\n{exports}", text)
    return text + release


def make_repo(root: Path, days: float = DAYS, signals: str = SIGNALS, **spec: str) -> Path:
    docs = synth.generate(SERVICE, int(END - days * synth.DAY), days, STEP, SEED)
    synth.write_exports({m: docs[m] for m in METRICS}, root / "exports/mini")
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs/mini.yaml").write_text(spec_text(signals, **spec), encoding="utf-8")
    return root


def set_spec(root: Path, old: str, new: str) -> None:
    path = root / "specs/mini.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BASELINE = "baselines/mini.yaml"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("fitted"))
    outcomes = pipeline.fit(root, root / "specs", force=True)
    assert outcomes == [pipeline.FitOutcome("mini", BASELINE, True, False)]
    return root


@pytest.fixture
def repo_copy(fitted: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(fitted, root)
    return root


@pytest.fixture(scope="module")
def base(fitted: Path) -> bl.Baseline:
    return bl.load(fitted / BASELINE, BASELINE)


# --- determinism and refit decisions ------------------------------------------------------------


def fit_outputs(root: Path) -> dict[str, bytes]:
    """Everything a fit wrote (the baseline, and any companion file next to it)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "baselines").rglob("*"))
            if p.is_file()}


def test_same_inputs_give_a_byte_identical_baseline(fitted: Path, repo_copy: Path) -> None:
    first = fit_outputs(fitted)
    assert BASELINE in first
    shutil.rmtree(repo_copy / "baselines")
    outcomes = pipeline.fit(repo_copy, repo_copy / "specs", force=True)
    assert outcomes[0].refitted
    assert fit_outputs(repo_copy) == first
    assert first[BASELINE].startswith(b"# Generated by driftgate from specs/mini.yaml, exports/mini/")


def test_forced_fit_over_an_existing_baseline_is_byte_identical(repo_copy: Path) -> None:
    before = fit_outputs(repo_copy)
    (outcome,) = pipeline.fit(repo_copy, repo_copy / "specs", force=True)
    assert outcome.refitted
    assert fit_outputs(repo_copy) == before


def test_unchanged_inputs_are_not_refitted(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo_copy / BASELINE
    os.utime(path, (1_600_000_000, 1_600_000_000))
    before = path.read_bytes()

    def no_fit(*args: object) -> None:
        raise AssertionError("fit_model called although the inputs are unchanged")

    from driftgate.fit import run

    fitters = [name for name in vars(run) if name.startswith("fit_model") and callable(getattr(run, name))]
    assert fitters, "the fit module has fit_model* functions"
    for name in fitters:  # pipeline imports them when it fits
        monkeypatch.setattr(run, name, no_fit)
    outcomes = pipeline.fit(repo_copy, repo_copy / "specs")
    assert outcomes == [pipeline.FitOutcome("mini", BASELINE, False, False)]
    assert path.read_bytes() == before
    assert path.stat().st_mtime == 1_600_000_000


def _refits(root: Path) -> bool:
    (outcome,) = pipeline.fit(root, root / "specs")
    return outcome.refitted


def test_changing_the_budget_refits(repo_copy: Path) -> None:
    old = (repo_copy / BASELINE).read_text(encoding="utf-8")
    set_spec(repo_copy, "auto: 1/quarter", "auto: 2/quarter")
    assert _refits(repo_copy)
    new = bl.load(repo_copy / BASELINE, BASELINE)
    assert new.budget_auto == "2/quarter"
    assert (repo_copy / BASELINE).read_text(encoding="utf-8") != old
    assert not _refits(repo_copy), "a second fit after the refit is skipped again"


def test_changing_one_export_byte_refits(repo_copy: Path, base: bl.Baseline) -> None:
    path = repo_copy / "exports/mini/mini_requests_total.json"
    data = bytearray(path.read_bytes())
    assert data.endswith(b"}\n")
    data[-1:] = b" "  # one byte, still the same JSON document
    path.write_bytes(bytes(data))
    assert _refits(repo_copy)
    assert bl.load(repo_copy / BASELINE, BASELINE).input_hash != base.input_hash


def test_changing_a_signal_refits(repo_copy: Path) -> None:
    set_spec(repo_copy, "    min_events: 1000\n", "    min_events: 1200\n")
    assert _refits(repo_copy)


# Every fit input the spec can change after a fit: render, check and validate refuse the stale baseline
# (naming the key, what the spec says and what was fitted), instead of rendering thresholds fitted for
# something else: p99 rules with p95 thresholds, a flipped direction, another budget or history minimum.
STALE = [
    ("    min_events: 1000\n", "    min_events: 1000\n    direction: below\n", "signals.error_ratio.direction",
     "below", "above"),
    ("auto: 1/quarter", "auto: 4/quarter", "budget.auto", "4/quarter", "1/quarter"),
    ("minimum: 2d", "minimum: 36h", "history.minimum", "1d12h", "2d"),
    ("    min_events: 1000\n", "    min_events: 700\n", "signals.error_ratio.min_events", "700", "1000"),
    ("    min_events: 500\n", "    min_events: 500\n    labels: {route: home}\n", "signals.score_drift.matchers",
     '{"route": "home"}', "{}"),
    ("    min_events: 2000\n", "    min_events: 2000\n    tier: manual\n", "signals.ctr.tier", "manual", "auto"),
    ("selector: {job: mini, namespace: mini-ns}", "selector: {job: mini, namespace: mini-ns, env: prod}",
     "prometheus.selector", '{"env": "prod", "job": "mini", "namespace": "mini-ns"}',
     '{"job": "mini", "namespace": "mini-ns"}'),
]


@pytest.mark.parametrize(("old", "new", "key", "now", "was"), STALE, ids=[c[2] for c in STALE])
def test_a_stale_fit_input_is_refused_everywhere(repo_copy: Path, old: str, new: str, key: str, now: str,
                                                 was: str) -> None:
    assert pipeline.contexts(repo_copy, repo_copy / "specs")  # current before the edit
    (repo_copy / "generated").mkdir(exist_ok=True)
    set_spec(repo_copy, old, new)
    want = f"specs/mini.yaml: {key} is {now}, but the baseline was fitted for {was}; run 'driftgate fit'"
    for command in (["render"], ["check"], ["validate"]):
        result = CliRunner().invoke(main, [*command, "--root", str(repo_copy)])
        assert result.exit_code == 1, (command, result.output)
        assert want in result.output, (command, result.output)
    assert not any((repo_copy / "generated").iterdir()), "render wrote nothing"
    if key.endswith(("matchers", "selector")):  # the example's series have no such label: a fit error
        with pytest.raises(FitError, match="no series"):
            pipeline.fit(repo_copy, repo_copy / "specs")
        return
    (outcome,) = pipeline.fit(repo_copy, repo_copy / "specs")  # the fix the message names
    assert outcome.refitted
    assert bl.load(repo_copy / BASELINE, BASELINE).fit_inputs[key] == now
    pipeline.contexts(repo_copy, repo_copy / "specs")


def test_the_baseline_records_every_fit_input(base: bl.Baseline) -> None:
    from driftgate.fit.inputs import fit_inputs

    (spec,) = load_specs(REPO, REPO / "specs", "reco-ranker", check_exports=False)
    real = bl.load(REPO / "baselines/reco-ranker.yaml", "b")
    assert real.fit_inputs == fit_inputs(spec)
    assert real.fit_inputs["signals.latency_p99.quantile"] == "0.99"
    assert base.fit_inputs["signals.ctr.direction"] == "below"
    assert "signals.score_drift.quantile" not in real.fit_inputs  # only the inputs a kind has


def test_changing_only_render_fields_does_not_refit(repo_copy: Path) -> None:
    set_spec(repo_copy, "window: 24h", "window: 48h")  # freeze window: render only
    set_spec(repo_copy, "name: ranking", "name: ranking-two")
    assert not _refits(repo_copy)


def test_changing_the_evaluation_interval_refits(repo_copy: Path) -> None:
    set_spec(repo_copy, "selector: {job: mini, namespace: mini-ns}",
             "selector: {job: mini, namespace: mini-ns}\n  evaluation_interval: 5m")
    assert _refits(repo_copy)


def test_evaluation_interval_changes_the_fitted_baseline(repo_copy: Path, base: bl.Baseline) -> None:
    """The premise of the refit test above: the fitted detection delays depend on evaluation_interval."""
    set_spec(repo_copy, "selector: {job: mini, namespace: mini-ns}",
             "selector: {job: mini, namespace: mini-ns}\n  evaluation_interval: 5m")
    pipeline.fit(repo_copy, repo_copy / "specs", force=True)
    new = bl.load(repo_copy / BASELINE, BASELINE)
    old_delays = [d.delay_minutes for s in base.signals for w in (s.fast, s.slow) for d in w.detection]
    new_delays = [d.delay_minutes for s in new.signals for w in (s.fast, s.slow) for d in w.detection]
    assert any(d is not None for d in old_delays)
    assert new_delays != old_delays


def test_canary_weight_changes_the_canary_figures_and_no_threshold(repo_copy: Path, base: bl.Baseline) -> None:
    """analysis.canary_weight is part of the fit's input (a refit) and moves only the canary_* figures:
    a canary with twice the traffic holds min_events twice as early and catches no less."""
    set_spec(repo_copy, "analysis:\n", "analysis:\n  canary_weight: 0.2\n")
    assert _refits(repo_copy)
    new = bl.load(repo_copy / BASELINE, BASELINE)
    for (name, which, old), (_, _, w) in zip(_windows(base), _windows(new), strict=True):
        assert (w.auto, w.manual, w.detection, w.smallest_shift) == (old.auto, old.manual, old.detection,
                                                                     old.smallest_shift), (name, which)
        assert w.canary_events == pytest.approx(0.2 * w.events_p50, rel=1e-5)
        assert old.canary_events == pytest.approx(0.1 * old.events_p50, rel=1e-5)
        if old.canary_decides_after_minutes is not None:
            assert w.canary_decides_after_minutes == pytest.approx(old.canary_decides_after_minutes / 2, rel=1e-4)
        for d_old, d_new in zip(old.canary_detection, w.canary_detection, strict=True):
            assert d_new.delay_minutes is not None or d_old.delay_minutes is None, (name, which, d_new.shift)
        if old.canary_smallest_shift is not None:  # more events, less noise: a smaller shift is caught
            assert w.canary_smallest_shift is not None
            if name == "ctr":  # direction below: the ratio factor caught is closer to 1 from below
                assert w.canary_smallest_shift >= old.canary_smallest_shift * (1 - 1e-9)
            else:
                assert w.canary_smallest_shift <= old.canary_smallest_shift * (1 + 1e-9)
    assert any(w.canary_detection for _, _, w in _windows(new))


# --- too little data ----------------------------------------------------------------------------


def _fit_error(root: Path) -> str:
    with pytest.raises(DriftgateError) as info:
        pipeline.fit(root, root / "specs", force=True)
    assert isinstance(info.value, FitError), type(info.value)
    assert not (root / "baselines").exists(), "nothing is written when a fit fails"
    return str(info.value)


def test_history_shorter_than_one_window(tmp_path: Path) -> None:
    root = make_repo(tmp_path, signals=ERRORS.replace("{fast: 2h, slow: 3h}", "{fast: 4d, slow: 5d}"),
                     release="release: {horizon: 7d}\n")  # longer than the 5d window + the bake
    message = _fit_error(root)
    assert "error_ratio" in message
    assert "shorter than one" in message and "5760m" in message


def test_history_shorter_than_one_window_names_the_spec(tmp_path: Path) -> None:
    root = make_repo(tmp_path, signals=ERRORS.replace("{fast: 2h, slow: 3h}", "{fast: 4d, slow: 5d}"),
                     release="release: {horizon: 7d}\n")  # longer than the 5d window + the bake
    message = _fit_error(root)
    assert "specs/mini.yaml" in message
    assert "fast" in message


def test_fit_error_exits_1_on_the_command_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path, signals=ERRORS.replace("min_events: 1000", "min_events: 1000000000"))
    result = CliRunner().invoke(main, ["fit", "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("driftgate: error: specs/mini.yaml: signal 'error_ratio'")
    assert "Traceback" not in result.stderr
    assert not (root / "baselines").exists()


def test_min_events_never_reached(tmp_path: Path) -> None:
    root = make_repo(tmp_path, signals=ERRORS.replace("min_events: 1000", "min_events: 1000000000"))
    message = _fit_error(root)
    assert "signal 'error_ratio'" in message
    assert "min_events" in message and "1000000000" in message


def test_too_few_windows(tmp_path: Path) -> None:
    root = make_repo(tmp_path, signals=ERRORS.replace("{fast: 2h, slow: 3h}", "{fast: 6h, slow: 12h}"))
    message = _fit_error(root)
    assert "signal 'error_ratio'" in message
    assert "non-overlapping windows" in message
    assert "specs/mini.yaml" in message


# --- the thresholds and the baseline file ------------------------------------------------------


def _windows(b: bl.Baseline) -> list[tuple[str, str, bl.WindowFit]]:
    return [(s.name, which, s.window(which)) for s in b.signals for which in ("fast", "slow")]


def test_baseline_shape(base: bl.Baseline) -> None:
    assert base.model == "mini" and base.spec == "specs/mini.yaml"
    assert [s.name for s in base.signals] == ["score_drift", "error_ratio", "ctr"]
    assert base.history_days == pytest.approx(DAYS)
    assert base.step_seconds == 60  # the rule evaluation grid (prometheus.evaluation_interval), not the export's
    assert base.provisional is False
    assert base.minimum_days == 2.0
    assert base.input_hash.startswith("sha256:")
    assert base.signal("score_drift").les == ("0.2", "0.4", "0.6", "0.8", "1", "+Inf")
    assert sum(base.signal("score_drift").probabilities) == pytest.approx(1.0, abs=1e-4)


def test_thresholds_are_finite_and_ordered(base: bl.Baseline) -> None:
    for name, which, w in _windows(base):
        where = f"{name}.{which}"
        below = name == "ctr"
        for tf in (w.auto, w.manual):
            for v in (tf.value, tf.band_low, tf.band_high, tf.exceedance_probability, tf.expected_alerts):
                assert math.isfinite(v), where
            assert tf.band_low <= tf.band_high, where
            assert tf.method in ("empirical", "pot_gpd", "max_observed"), where
            assert 0 < tf.exceedance_probability <= 0.5, where
        # the automatic threshold is at least as far out as the manual band
        if below:
            assert w.auto.value <= w.manual.value, where
        else:
            assert w.auto.value >= w.manual.value, where
        # the automatic budget is stricter than the manual one
        assert w.auto.exceedance_probability < w.manual.exceedance_probability, where
        assert w.windows_decided <= w.windows_total and w.windows_decided > 0, where


def test_the_manual_band_is_a_real_quantile_here(base: bl.Baseline) -> None:
    """With 20/day manual budget on 3 days the manual band is an empirical quantile: the ordering above is not
    trivially auto == manual."""
    methods = {w.manual.method for _, _, w in _windows(base)}
    assert "empirical" in methods
    assert any(w.auto.value != w.manual.value for _, _, w in _windows(base))


def test_direction_below_thresholds_sit_below_the_typical_value(base: bl.Baseline) -> None:
    for which in ("fast", "slow"):
        w = base.signal("ctr").window(which)
        assert w.auto.value < w.statistic_p50 + 0.0  # excess-adjusted, but well below the median CTR
        assert 0.0 < w.statistic_p50 < 0.2


def test_baseline_round_trips(fitted: Path, base: bl.Baseline) -> None:
    hdr = header(["specs/mini.yaml"])
    text = bl.dumps(base, hdr)
    path = fitted.parent / "roundtrip.yaml"
    path.write_text(text, encoding="utf-8")
    again = bl.load(path, "roundtrip.yaml")
    assert bl.dumps(again, hdr) == text
    assert again == base
    # and the committed file is exactly what dumps() gives for what load() read
    on_disk = (fitted / BASELINE).read_text(encoding="utf-8")
    first_line, body = on_disk.split("\n", 1)
    assert bl.dumps(base, first_line + "\n") == on_disk
    assert yaml.safe_load(body)["fit_version"] == bl.FIT_VERSION


def test_floats_are_rounded_to_six_significant_digits(fitted: Path) -> None:
    data: Any = yaml.safe_load((fitted / BASELINE).read_text(encoding="utf-8"))

    def walk(x: Any) -> None:
        if isinstance(x, float) and math.isfinite(x) and x != 0:
            assert float(f"{x:.6g}") == x, x
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(data)


# --- provisional --------------------------------------------------------------------------------


def _criteria_failures(root: Path) -> list[str]:
    docs = [d for d in yaml.safe_load_all((root / "generated/argo/mini.yaml").read_text(encoding="utf-8")) if d]
    (criteria,) = [d for d in docs if d["metadata"]["name"] == "mini-rollback-criteria"]
    return [m["failureCondition"] for m in criteria["spec"]["metrics"] if m["name"] != "enforcement-live"]


def _context_failures(root: Path) -> list[str]:
    (ctx,) = pipeline.contexts(root, root / "specs")
    (criteria,) = [t for t in ctx.templates if t.name == "mini-rollback-criteria"]
    return [m.failure for m in criteria.metrics if m.name != "enforcement-live"]  # the heartbeat fails closed


def test_provisional_history_routes_everything_to_manual(repo_copy: Path) -> None:
    failures = _context_failures(repo_copy)
    assert len(failures) == 6
    assert any(f != "false" for f in failures), "control: a non-provisional fit rolls back automatically"

    set_spec(repo_copy, "minimum: 2d", "minimum: 7d")
    result = CliRunner().invoke(main, ["fit", "--root", str(repo_copy)])
    assert result.exit_code == 0, result.output
    assert f"{BASELINE}: fitted (PROVISIONAL" in result.stdout
    b = bl.load(repo_copy / BASELINE, BASELINE)
    assert b.provisional is True and b.minimum_days == 7.0
    for _, _, w in _windows(b):
        assert math.isfinite(w.auto.value), "provisional thresholds are still fitted"

    assert _context_failures(repo_copy) == ["false"] * 3  # one review metric per signal, no auto metric
    pipeline.render(repo_copy, repo_copy / "specs")
    assert _criteria_failures(repo_copy) == ["false"] * 3
    rules = (repo_copy / "generated/prometheus/rules/mini.rules.yaml").read_text(encoding="utf-8")
    assert 'alert: "DriftgateAutoRollback"' not in rules
    assert "PROVISIONAL" in (repo_copy / "generated/plans/mini.md").read_text(encoding="utf-8")


# --- counter resets -----------------------------------------------------------------------------


def _summed_first(series: list[Series]) -> list[Series]:
    """The naive way: add the pods' counters up, then take increase() of the sum."""
    t = series[0].t
    for s in series:
        assert np.array_equal(s.t, t)
    return [Series(series[0].name, (), t, np.sum([s.v for s in series], axis=0), "naive")]


def test_counter_reset_makes_no_spike(fitted: Path) -> None:
    (spec,) = load_specs(fitted, fitted / "specs", check_exports=True)
    sig = spec.signal("error_ratio")
    store = load_store(fitted, spec)
    start, end = store.time_range()
    data = resolve(spec, sig, store, start, end)
    resets = sorted({float(s.t[i + 1]) for s in data.denominator for i in np.flatnonzero(np.diff(s.v) < 0)})
    assert resets, "the synthetic history has pod restarts"

    window = 3600.0
    good = history(data, window, start, end, STEP)
    naive = history(SignalData(sig, None, data.baseline_q, _summed_first(data.numerator),
                               _summed_first(data.denominator)), window, start, end, STEP)
    hit = np.zeros(good.t.size, dtype=bool)
    for r in resets:
        hit |= (good.t >= r) & (good.t - window <= r)
    assert hit.any() and (~hit).any()

    # Per-series repair: windows over a restart look like every other window.
    calm_events = good.events[~hit]
    assert good.events[hit].max() <= 1.5 * calm_events.max()
    calm = good.value[~hit & np.isfinite(good.value)]
    spiky = good.value[hit & np.isfinite(good.value)]
    assert spiky.size > 0
    assert spiky.max() <= calm.max() * 1.25
    assert spiky.min() >= calm.min() * 0.75
    # Summing first turns one pod's restart into a reset of the sum: the whole history is counted again.
    assert naive.events[hit].max() > 10 * calm_events.max()
    assert not np.allclose(naive.value[hit], good.value[hit])


# --- fit_thresholds on known distributions -----------------------------------------------------


def _iid(n: int, seed: int, step: float = 8.0) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    x = rng.exponential(1.0, n)
    t = np.arange(n, dtype=np.float64) * step  # < 2 days: no bootstrap, a point band
    return x, t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pot_gpd_recovers_an_exponential_tail(seed: int) -> None:
    n, p, step = 20_000, 1e-4, 8.0
    x, t = _iid(n, seed, step)
    (fit,) = th.fit_thresholds(x, t, step, step, [p / step], False, "test")
    true = -math.log(p)  # 1 - p quantile of Exp(1): 9.21
    assert fit.method == "pot_gpd"
    assert n * p < th.EMPIRICAL_MIN_EXPECTED
    assert fit.exceedance_probability == pytest.approx(p)
    assert abs(fit.value - true) <= 0.25 * true, (fit.value, true)
    assert fit.tail_u == pytest.approx(np.quantile(x, th.TAIL_QUANTILE))
    assert fit.tail_exceedances == pytest.approx(0.1 * n, rel=0.01)
    assert fit.tail_shape is not None and th.XI_BOUNDS[0] <= fit.tail_shape <= th.XI_BOUNDS[1]
    assert fit.tail_scale == pytest.approx(1.0, rel=0.15)
    assert fit.band[0] <= fit.band[1]


def test_plenty_of_data_uses_the_empirical_quantile() -> None:
    n, step = 20_000, 8.0
    x, t = _iid(n, 5, step)
    p = 1e-3  # n * p = 20 >= 5
    (fit,) = th.fit_thresholds(x, t, step, step, [p / step], False, "test")
    assert fit.method == "empirical"
    assert fit.value == pytest.approx(float(np.quantile(x, 1 - p)))
    assert abs(fit.value + math.log(p)) <= 0.15 * -math.log(p)


def test_method_switches_at_n_p_equal_5() -> None:
    n, step = 10_000, 8.0
    x, t = _iid(n, 6, step)
    at, under = th.fit_thresholds(x, t, step, step, [5 / n / step, 4.9 / n / step], False, "test")
    assert at.method == "empirical"
    assert under.method == "pot_gpd"


def test_several_rates_give_ordered_thresholds() -> None:
    x, t = _iid(20_000, 7)
    fits = th.fit_thresholds(x, t, 8.0, 8.0, [1e-2 / 8, 1e-3 / 8, 1e-5 / 8], False, "test")
    values = [f.value for f in fits]
    assert values == sorted(values)


@pytest.mark.parametrize("p", [1e-2, 1e-4])
def test_below_mirrors_above_on_negated_data(p: float) -> None:
    x, t = _iid(20_000, 8)
    x = x + 3.0
    (up,) = th.fit_thresholds(x, t, 8.0, 8.0, [p / 8.0], False, "test")
    (down,) = th.fit_thresholds(-x, t, 8.0, 8.0, [p / 8.0], True, "test")
    assert down.method == up.method
    assert down.value == pytest.approx(-up.value)
    assert down.band == pytest.approx((-up.band[1], -up.band[0]))
    assert down.band[0] <= down.band[1]
    assert down.exceedance_probability == up.exceedance_probability
    if up.tail_u is not None:
        assert down.tail_u == pytest.approx(-up.tail_u)
        assert down.tail_shape == pytest.approx(up.tail_shape)
        assert down.tail_scale == pytest.approx(up.tail_scale)


def test_bootstrap_band_over_several_days() -> None:
    rng = np.random.default_rng(9)
    n, step, window = 4 * 24 * 6, 600.0, 4800.0  # 4 days every 10 minutes, 80-minute windows: 72 thinned
    x = rng.exponential(1.0, n)
    t = np.asarray(END + np.arange(n) * step, dtype=np.float64)
    # iid values: an excursion lasts one step, so p = 0.1 and 72 windows expect 7.2 exceedances
    (fit,) = th.fit_thresholds(x, t, window, step, [0.1 / step], False, "test")
    assert th.episode_seconds(x, t, step, window) == step
    assert fit.method == "empirical"
    assert fit.band[0] < fit.band[1]
    assert fit.band[0] <= fit.value * 1.5 and fit.band[1] >= fit.value / 1.5
    again = th.fit_thresholds(x, t, window, step, [0.1 / step], False, "test")[0]
    assert again == fit, "the bootstrap is seeded"


def test_nan_windows_are_ignored() -> None:
    x, t = _iid(5_000, 10)
    with_nan = x.copy()
    with_nan[::7] = np.nan
    (fit,) = th.fit_thresholds(with_nan, t, 8.0, 8.0, [1e-2 / 8], False, "test")
    assert math.isfinite(fit.value)
    assert fit.value == pytest.approx(float(np.quantile(x[np.isfinite(with_nan)], 1 - 1e-2)))


def test_too_few_windows_is_a_fit_error_naming_the_configuration() -> None:
    x, t = _iid(19, 11)
    with pytest.raises(FitError, match=r"signal 'x' window fast: only 19 non-overlapping windows"):
        th.fit_thresholds(x, t, 8.0, 8.0, [1e-3], False, "signal 'x' window fast")


def test_constant_statistic_is_max_observed() -> None:
    t = np.arange(100, dtype=np.float64) * 8.0
    (fit,) = th.fit_thresholds(np.full(100, 0.25), t, 8.0, 8.0, [1e-6], False, "test")
    assert fit.method == "max_observed"
    assert fit.value == 0.25
    assert fit.tail_u is None and fit.tail_exceedances == 0


def test_episodes_counts_upcrossings() -> None:
    v = np.array([0.0, 2.0, 2.0, 0.0, np.nan, 3.0, 0.0, 5.0])
    assert th.episodes(v, 1.0, False) == 3
    assert th.episodes(-v, -1.0, True) == 3
    assert th.episodes(np.array([2.0, 0.0]), 1.0, False) == 1


def test_episode_duration_is_measured_not_assumed() -> None:
    """False rollbacks are episodes: p = rate * d with d the measured excursion length, not the window."""
    rng = np.random.default_rng(4)
    step, window = 60.0, 3600.0
    held = np.repeat(rng.exponential(1.0, 2_000), 6)  # each value held for 6 evaluations
    t = np.arange(held.size) * step
    assert th.episode_seconds(held, t, step, window) == pytest.approx(6 * step)
    assert th.episode_seconds(held[::6], t[::6], step * 6, window) == pytest.approx(6 * step)
    # clamped to [step, window]; a gap in the grid or a NaN ends an excursion
    assert th.episode_seconds(held, t, step, 120.0) == 120.0
    holes = held.copy()
    holes[3::6] = np.nan
    assert th.episode_seconds(holes, t, step, window) == pytest.approx(3 * step, rel=0.2)
    assert th.episode_seconds(held[:5], t[:5], step, window) == window  # too little history: the window


def test_quantile_noise_term_is_calibrated() -> None:
    """A p90 of n events from the baseline exceeds baseline + b / sqrt(n) with probability ~p."""
    from driftgate.fit import noise as nz
    from driftgate.fit import statistics as st
    from driftgate.model import Statistic

    counts = np.array([0.0, 50.0, 40.0, 10.0])  # buckets le=0.1, 0.2, 0.3, +Inf
    bounds = np.array([0.1, 0.2, 0.3, np.inf])
    # q = 0.8: bucket 0.2-0.3 (share 0.4), 0.5 below it, t = 0.75: n Var = .25 + .5625 * .24 - .3 = .085
    assert nz.quantile_sd(0.8, counts, bounds) == pytest.approx(math.sqrt(0.085) * 0.1 / 0.4)
    assert nz.quantile_sd(0.95, counts, bounds) == 0.0  # the +Inf bucket: no noise, no term
    assert nz.quantile_sd(0.5, np.zeros(4), bounds) == 0.0

    class Sig:
        statistic, quantile = Statistic.QUANTILE, 0.8

    p, n, reps = 0.01, 400, 20_000
    noise = nz.noise_for(Sig(), 4, p, 0.0, nz.quantile_sd(0.8, counts, bounds))  # type: ignore[arg-type]
    assert noise.power == 0.5 and noise.coefficient > 0
    rng = np.random.default_rng(1)
    per_bucket = rng.multinomial(n, counts / counts.sum(), size=reps)
    # histogram_quantile interpolates uniformly inside a bucket: sample what it assumes.
    baseline_x = float(st.histogram_quantile(0.8, np.cumsum(counts)[None, :], bounds)[0])
    x = st.histogram_quantile(0.8, np.cumsum(per_bucket, axis=1).astype(float), bounds)
    rate = float(np.mean(x > baseline_x + noise.term(n)))
    assert 0.4 * p < rate < 2.5 * p, rate
    assert float(np.mean(x > baseline_x)) > 0.3  # without the term, about every other window
