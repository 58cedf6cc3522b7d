"""The benchmarks import and run at their smallest size; only the shape of the output is checked.

No timing or quality number is asserted here (issue 3: numbers do not go in timed tests); the real
runs are ``python bench/quality.py`` and ``python bench/perf.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench import common, perf, quality


def test_quality_tiny_job_has_every_section() -> None:
    from driftgate.fit import thresholds

    reps = thresholds.BOOTSTRAP_REPS
    assert quality.TINY.bootstrap_reps not in (None, reps)
    result = quality.run_job(quality.Job("low", 0, quality.TINY))
    # The job's small bootstrap must not leak into later fits in this process (it once changed every
    # band of a forced refit in CI, where this test runs before test_generated).
    assert reps == thresholds.BOOTSTRAP_REPS
    assert result["level"] == "low" and result["model"] == "fraud-scorer"
    assert set(result["fitted"]) == {k for k in result["groups"] if not k.startswith("psi_peer")}
    for fit in result["fitted"].values():
        assert math.isfinite(fit["auto"]) and fit["band"][0] <= fit["band"][1]
        assert fit["rate_lo"] <= fit["rate_hi"]
    assert set(result["thresholds"]) == set(quality.RULES)
    for name in (*quality.RULES, "driftgate_manual"):
        assert result["heldout"][name]["union"] >= 0
    (incident,) = result["incidents"]
    assert incident["kind"] == "embedding_bug" and set(incident["rules"]) == set(quality.RULES)
    assert len(result["healthy"]) == 1 and len(result["grid"]) == 1

    text, targets = quality.summarize([result], seeds=1)
    for heading in ("## 1. Held-out", "## 1b.", "## 2. Injected", "## 3. Side by side", "## 3b.", "## 4. Smallest"):
        assert heading in text
    assert targets and all(isinstance(v, bool) for v in targets.values())


def test_quality_helpers() -> None:
    hot = np.array([False, True, True, False, True, False, True, True, True])
    t = np.arange(hot.size) * 60.0
    assert common.upcrossings(hot) == 3
    assert common.first_firing(hot, t, 120, 60) == 480.0  # true at 6, 7, 8 min: for 2m
    assert quality.retuned(np.array([1.0, 3.0, 2.0, np.nan]), 0.2) == 3.0  # < 1 episode: the maximum
    assert common.poisson_band(0.0) == (0, 0)
    lo, hi = common.poisson_interval(0)
    assert lo == 0.0 and hi > 0
    assert quality.q_delay([1.0, None, 3.0], 0.5) == 3.0
    assert math.isinf(quality.q_delay([None, None, 3.0], 0.5))


def test_peer_families_tuned_after_the_fact() -> None:
    """A family is hot at theta exactly where its score exceeds theta; ``sustained`` is ``first_firing``
    for every theta at once; the matched parameter is the smallest that keeps both false-alarm counts."""
    t = np.arange(6) * 60.0
    stats = {"a": common.Hist(t, np.array([0.1, 0.5, 0.5, 0.5, 0.2, 0.9]), np.full(6, 100.0), 10),
             "b": common.Hist(t, np.array([2.0, 2.0, 9.0, 9.0, 9.0, 2.0]), np.array([5.0] + [100.0] * 5), 10)}
    fam = common.Family("f", (("a", 0.0, 1.0), ("b", 1.0, 10.0)))
    z = common.family_score(fam, stats)
    assert np.allclose(z, [0.1, 0.5, 0.8, 0.8, 0.8, 0.9])  # b's first window is under min_events
    assert np.allclose(common.family_score(fam, stats, ["a"]), stats["a"].raw_all)
    for theta in (0.05, 0.3, 0.6, 0.85):
        fire = common.first_firing(z > theta, t, 120, 60)
        s = common.sustained(z, 120, 60)
        idx = np.flatnonzero(s > theta)
        assert fire == (float(t[idx[0]]) if idx.size else None)
    assert common.episodes_at(np.array([0.0, 1.0, 0.0, 2.0]), np.array([-1.0, 0.5, 1.5, 3.0])).tolist() == [1, 2, 1, 0]

    def job(held: list[float], healthy_max: float, dg_k: int, dg_alerts: int) -> dict:
        h = {"families": {"f": np.array([-np.inf, healthy_max])},
             "rules": {"driftgate": {"delay": 4.0 if dg_alerts else None}}}
        return {"heldout": {"families": {"f": np.array(held)}, "driftgate": {"union": dg_k}},
                "healthy": [h], "budget_rate": 0.0, "heldout_seconds": 1.0}

    m = quality.match_theta([job([0.1, 0.7, 0.2, 0.4, 0.3], 0.5, 1, 0)], "f")
    # One held-out episode allowed (above 0.4 only the 0.7 spike), no healthy canary: above 0.5.
    assert m["theta"] == 0.5 and m["episodes"] == 1 and m["alerts"] == 0
    m = quality.match_theta([job([0.1, 0.7, 0.2, 0.4, 0.3], 0.5, 1, 1)], "f")
    assert m["theta"] == 0.4 and m["alerts"] == 1


def test_bench_statistic_is_the_fitters(tmp_path: Path) -> None:
    """The benchmark's per-version statistic is driftgate.fit.signals.history on the same data, for every
    signal of the reco spec (including a compare_with: last_week one) and the peer PSI."""
    from driftgate import synth
    from driftgate.exports.load import load_store
    from driftgate.fit.signals import history, resolve

    level = common.HIGH
    docs = synth.generate(level.service, common.START, 8, 600, 3)
    spec = common.write_repo(tmp_path, level.model, common.spec_text(level.spec_file), docs)
    store = load_store(tmp_path, spec)
    start, end = store.time_range()
    defs = common.stat_defs(spec, manual_tier=True)
    data = {d.key: resolve(spec, d.signal, store, start, end) for d in defs}
    q = {d.signal.metric: data[d.key].baseline_q for d in defs if d.group == "score"}
    series = common.to_series(docs)
    for d in defs:
        mine = common.compute_stats(series, [d], q, start + d.window, end, 600, data_start=start)[d.key]
        ref = history(data[d.key], d.window, start, end, 600)
        assert np.array_equal(mine.t, ref.t), d.key
        np.testing.assert_allclose(mine.raw, ref.value, rtol=1e-12, err_msg=d.key)
        assert np.isfinite(ref.value).any(), d.key


def test_perf_repo_and_child_measurement(tmp_path: Path) -> None:
    info = perf.make_repo(tmp_path, 1, 600, 1, ("drift", "drift+ratio"))
    assert info["bytes"] > 0 and Path(info["score_file"]).is_file()
    js = perf.child("json", "", info["score_file"])
    assert set(js) == {"seconds", "rss_before", "rss_peak"}
    fit = perf.child("fit", info["root"], "drift+ratio", "3")
    assert fit["seconds"] > 0 and fit["rss_peak"] >= fit["rss_before"]


def test_manual_tier_bench_scores_the_manual_band() -> None:
    """bench/manual_tier.py: one seed fits and scores held-out pages against the budget (no number asserted
    beyond what makes the job meaningful)."""
    from bench import manual_tier

    r = manual_tier.one("low", 1)
    assert r["expected"] > 0 and r["in_sample_expected"] > r["expected"]  # four training weeks, two held out
    assert r["pages"] >= 0 and set(r["per"]) and len(r["methods"]) == len(r["per"])
    assert set(r["methods"]) <= {"pot_episodes", "pot_gpd", "empirical", "max_observed", "zero_floor"}


def test_compare_stable_bench_judges_the_three_comparisons() -> None:
    """bench/compare_stable.py: each studied signal fitted per compare_with, each judged on the same canaries."""
    from bench import compare_stable

    text = compare_stable._spec_text(common.LEVELS["high"], "stable")
    for name in ("score_drift", "error_ratio", "latency_p99"):
        block = text[text.index(f"  - name: {name}\n"):].split("  - name: ", 2)[1]
        assert "    compare_with: stable\n" in block, name
    assert text.count("compare_with: stable") == 3
    week = compare_stable._spec_text(common.LEVELS["high"], "last_week")
    assert "    compare_with: last_week\n" in week[week.index("  - name: score_drift\n"):].split("  - name: ", 2)[1]
    assert "compare_with: stable" not in week
    r = compare_stable.one("low", 1)
    assert set(r["heldout"]) == {"score_drift/baseline", "score_drift/last_week", "error_ratio/baseline",
                                 "latency_p99/baseline"}
    for study in compare_stable.STUDIES:
        rows = [i for i in r["incidents"] if i["signal"] == study.signal]
        kinds = {i["kind"] for i in rows}
        assert kinds == {"healthy", *(compare_stable._label(k, v) for k, v in study.kinds)}, study.signal
        assert all(set(study.variants) <= set(i) for i in rows)
    embedding = [i for i in r["incidents"] if i["kind"] == "embedding_bug"]
    assert all(i["stable"] is not None for i in embedding)  # a collapsed canary is caught against stable
    errors = [i for i in r["incidents"] if i["kind"] == "errors x5"]
    assert all(i["stable"] is not None for i in errors)  # five times the stable version's errors
