"""Threshold quality: does driftgate deliver the false-rollback rate it promises, and how fast does it
catch incidents, next to the rules people use today?  (DESIGN.md §7, issue 3.)

Usage: ``python bench/quality.py [--seeds 10] [--quick] [--plain] [--workers 2]``

For each seed and each traffic level (the repository's two example services, ``reco-ranker`` at
~120 req/s and ``fraud-scorer`` at ~3 req/s, each with its own spec from ``specs/``):

1. ``driftgate.synth`` generates 6 weeks at a 5-minute step (4 weeks training + 2 held-out weeks) with extra
   texture (over-dispersion, benign shifts, scrape gaps; see :class:`bench.common.Texture`);
2. the 4 training weeks are written as ``query_range`` exports into a temporary repository with the
   spec, and **driftgate's own fitter** (``driftgate.fit.run.fit_model``) fits the thresholds;
3. the held-out weeks are scored: false automatic rollbacks (upcrossings of any auto configuration's
   decision statistic over its automatic threshold, on the fitter's 5-minute grid) against the budget;
4. incidents are injected as **canary rollouts** (a new pod-template hash taking 15% of the traffic,
   its own series from zero), the decision statistic is computed for the canary version only (as the
   rules' ``sum by (rollouts_pod_template_hash)`` does) on a 1-minute grid, and the delay is the time
   from onset until the alert fires (condition true over the alert's ``for: 2m``); the Argo path
   (each metric reads its alert's state every ``interval`` after ``initialDelay`` = the alert's ``for``;
   ``failureLimit`` from the spec) is reported next to it;
5. the same statistics are judged by peer rules: fixed PSI > 0.1 (Evidently's default) and mean + 3σ
   of the training windows (NannyML-style), as configured and re-tuned on the training weeks to
   driftgate's budget; and by driftgate without its count-aware noise term (an ablation);
6. "the same false-alarm budget" for real (section 3b): re-tuned on four training weeks the peers do
   not hold the budget on held-out data, so each peer is also tuned *after the fact*, as a
   one-parameter family (PSI > T, mean + z sd), to the false alarms driftgate itself raised on the
   held-out weeks and the healthy canaries (an oracle in the peers' favour), and their delays are
   compared at that parameter.

All numbers are printed; nothing here asserts a timing or a quality number. At the end (unless
``--no-issue16``) the manual-tier calibration (``bench/manual_tier.py``) and ``compare_with: stable`` against
the pooled baseline and last week (``bench/compare_stable.py``) run on the same seeds.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common as c
from driftgate import synth
from driftgate.fit import thresholds as th
from driftgate.fit.run import fit_model
from driftgate.model import ModelSpec, SignalKind, Tier

IK = synth.IncidentKind
MONTH = 30 * c.DAY

# Incident kinds: (label, signal group that must catch it, canary rollout?)
KINDS: dict[str, tuple[str, bool]] = {
    "embedding_bug": ("score", True),  # 80% of scores collapse near 0.5 (TVD ≥ 0.5, DESIGN §7)
    "feature_default": ("score", True),  # 15% of requests get one score (synth default 0.05)
    "moderate_shift": ("score", True),  # every component's mean moves: TVD 0.10
    "subtle_shift": ("score", True),  # TVD 0.03
    "slow_ramp": ("score", False),  # fleet-wide: TVD 0 -> 0.10 over 2 h in 12 steps of 10 min
    "latency_regression": ("latency", True),  # lognormal mu + 0.4 (x1.49)
    "error_regression": ("errors", True),  # error probability x5
    "embedding_bug_fleet": ("score", False),  # the embedding bug shipped to every pod at once
}
ONSETS = ("night", "peak", "weekend")
HEALTHY_ONSETS = ("night", "morning", "peak", "evening", "weekend", "weekend_night")
GRID: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("shift_tvd", (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)),
    ("feature_default_share", (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)),
    ("latency_mu", (0.05, 0.1, 0.2, 0.3, 0.4, 0.6)),
    ("error_factor", (1.5, 2.0, 3.0, 5.0, 10.0, 20.0)),
)
GRID_GROUP = {"shift_tvd": "score", "feature_default_share": "score", "latency_mu": "latency",
              "error_factor": "errors"}
RULES = ("driftgate", "driftgate_no_noise", "driftgate_min50", "psi_0.1", "psi_retuned", "mean3sd",
         "mean3sd_retuned")
RULE_TITLE = {
    "driftgate": "driftgate",
    "driftgate_no_noise": "driftgate w/o noise term",
    "driftgate_min50": "driftgate drift min_events 50",
    "psi_0.1": "PSI>0.1 (as configured)",
    "psi_retuned": "PSI re-tuned",
    "mean3sd": "mean+3sd (as configured)",
    "mean3sd_retuned": "mean+3sd re-tuned",
}
PEERS_RETUNED = ("psi_retuned", "mean3sd_retuned")
# The peers as one-parameter families, tuned after the fact (on the held-out weeks and the healthy
# canaries: an oracle) to the false alarms driftgate itself produced there: section 3b.
FAMILIES = ("psi_matched", "meansd_matched")
FAMILY_TITLE = {"psi_matched": "PSI > T, T matched", "meansd_matched": "mean + z sd, z matched"}


@dataclass(frozen=True)
class Settings:
    train_days: int = 28
    heldout_days: int = 14
    step: int = 300
    eval_step: int = 60  # incident segments: 1-minute scrapes = the rules' evaluation interval
    bootstrap_reps: int | None = None  # None: the fitter's own BOOTSTRAP_REPS
    texture: c.Texture = c.DEFAULT_TEXTURE
    canary_weight: float = 0.15
    young_guard: bool = True  # the rules' 5-scrape guard on a new version (False: as before it existed)
    kinds: tuple[str, ...] = tuple(KINDS)
    onsets: tuple[str, ...] = ONSETS
    healthy: tuple[str, ...] = HEALTHY_ONSETS * 2  # 12 healthy canaries per seed and level
    grid: tuple[tuple[str, tuple[float, ...]], ...] = GRID


QUICK = Settings(bootstrap_reps=10, healthy=("night", "peak", "weekend"),
                 grid=tuple((f, v[1::2]) for f, v in GRID))
TINY = Settings(train_days=3, heldout_days=1, bootstrap_reps=5, texture=c.PLAIN, kinds=("embedding_bug",),
                onsets=("peak",), healthy=("peak",), grid=(("shift_tvd", (0.3,)),))


# --------------------------------------------------------------------------------------------
# Peer thresholds and the ablation, fitted on the training statistic


def chunk_mean_sd(raw: np.ndarray, stride: int) -> tuple[float, float]:
    """Mean and standard deviation of the non-overlapping training windows ("chunks", NannyML)."""
    x = raw[::stride]
    x = x[np.isfinite(x)]
    return (float(np.mean(x)), float(np.std(x))) if x.size else (0.0, 0.0)


def mean3sd(raw: np.ndarray, stride: int) -> float:
    """NannyML-style: mean + 3 standard deviations of non-overlapping training windows."""
    mean, sd = chunk_mean_sd(raw, stride)
    return mean + 3 * sd


def retuned(raw: np.ndarray, allowed: float) -> float:
    """The smallest threshold whose training episode count is at most ``allowed`` (the budget share
    over the training span). With a budget of 1/quarter and 4 weeks that is < 1, i.e. the maximum."""
    x = np.where(np.isfinite(raw), raw, -np.inf)
    cands = np.unique(x[np.isfinite(x)])
    k = math.floor(allowed + 1e-12)
    lo, hi = 0, cands.size - 1  # episodes(cands[hi]) == 0 <= k
    while lo < hi:
        mid = (lo + hi) // 2
        if c.upcrossings(x > cands[mid]) <= k:
            hi = mid
        else:
            lo = mid + 1
    return float(cands[lo])


def pot_level(values: np.ndarray, window: float, step: float, p: float) -> float:
    """driftgate's own tail method (driftgate.fit.thresholds) on the *raw* statistic, without the bootstrap."""
    x = values[np.isfinite(values)]
    thinned = x[:: max(1, round(window / step))]
    return th._level(x, thinned, th._tail(thinned), p)[0]


def implied_p(x: np.ndarray, window: float, step: float, fit: Any, level: float) -> float:
    """Per-window exceedance probability the fitted tail assigns to ``level`` (for the promised band)."""
    thinned = x[:: max(1, round(window / step))]
    if fit.method == "empirical" or fit.tail_u is None:
        return float(np.mean(x > level))
    u, xi, sigma = fit.tail_u, fit.tail_shape, fit.tail_scale
    if level <= u or sigma <= 0:
        return float(np.mean(thinned > level))
    zeta = fit.tail_exceedances / thinned.size
    z = (level - u) / sigma
    return float(zeta * (math.exp(-z) if xi < 1e-9 else (1 + xi * z) ** (-1 / xi)))


# --------------------------------------------------------------------------------------------
# One job: a traffic level and a seed


@dataclass
class Job:
    level: str
    seed: int
    settings: Settings = field(default_factory=Settings)


def onset_time(level: c.Level, label: str, seed: int, rng: np.random.Generator, week: int = 0) -> int:
    peak = level.service.peak_hour_utc
    hour = {"night": peak + 12, "morning": peak - 7, "peak": peak, "evening": peak + 4,
            "weekend": peak, "weekend_night": peak + 12}[label] % 24
    week = c.START + 28 * c.DAY + 7 * c.DAY * (seed % 4 + 4 * week)
    day = 5 + seed % 2 if label.startswith("weekend") else 1 + (seed + len(label)) % 3
    if label == "weekend_night":
        day = 5  # Saturday night (the trough falls on the same calendar day as the peak + 12 h)
    return int(week + day * c.DAY + hour * c.HOUR + 60 * int(rng.integers(0, 60)))


def run_job(job: Job) -> dict[str, Any]:
    """One (traffic level, seed) job. A smaller bootstrap (``Settings.bootstrap_reps``) applies to this
    job only: the fitter's module setting is restored afterwards, so an in-process caller (the smoke
    test, then a real fit) never inherits it."""
    old = th.BOOTSTRAP_REPS
    if job.settings.bootstrap_reps is not None:
        th.BOOTSTRAP_REPS = job.settings.bootstrap_reps
    try:
        return _run_job(job)
    finally:
        th.BOOTSTRAP_REPS = old


def _run_job(job: Job) -> dict[str, Any]:
    s = job.settings
    level = c.LEVELS[job.level]
    svc = level.service
    lvl_index = list(c.LEVELS).index(job.level)
    rng = np.random.default_rng([job.seed, lvl_index, 7])
    days = s.train_days + s.heldout_days
    train_end = c.START + s.train_days * c.DAY
    end = c.START + days * c.DAY
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    tex, benign = c.texture_incidents(svc, c.START, days, s.texture, rng)
    gaps = c.texture_gaps(c.START, days, s.texture, rng)
    docs = synth.generate(svc, c.START, days, s.step, 1000 * job.seed + lvl_index, tex)
    train_docs = c.slice_docs(docs, c.START, train_end, gaps)
    timings["generate"] = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
        spec = c.write_repo(Path(tmp), level.model, c.spec_text(level.spec_file), train_docs)
        t0 = time.perf_counter()
        base = fit_model(Path(tmp), spec)
        timings["fit"] = time.perf_counter() - t0

    defs = c.stat_defs(spec)
    by_key = {d.key: d for d in defs}
    q = {spec.signal(f.name).metric: np.asarray(f.probabilities) for f in base.signals
         if f.kind == SignalKind.DISTRIBUTION_DRIFT.value}
    t0 = time.perf_counter()
    train_series = c.to_series(train_docs)
    train = {d.key: c.compute_stats(train_series, [d], q, c.START + d.window, train_end, s.step,
                                    data_start=c.START)[d.key] for d in defs}
    rules, fitted = build_rules(spec, base, defs, train, s.step, train_end - c.START)
    families = build_families(defs, train, s.step)
    timings["train_stats"] = time.perf_counter() - t0

    # Held-out normal weeks: the stable version (the only one) on the fitter's 5-minute grid.
    t0 = time.perf_counter()
    all_defs = c.stat_defs(spec, manual_tier=True)
    lookback = max(d.window for d in all_defs) + 2 * s.step + (c.WEEK if c.needs_last_week(all_defs) else 0)
    held = c.to_series(c.slice_docs(docs, train_end - lookback, end, gaps))
    hstats = c.compute_stats(held, all_defs, q, train_end + s.step, end, s.step, data_start=train_end - lookback)
    manual_rule, manual_share = manual_band_rule(spec, base, all_defs)
    windows = {d.key: d.window for d in all_defs}
    weekly = frozenset(d.key for d in all_defs if c.last_week(d.signal))
    heldout = score_heldout([*rules, manual_rule], hstats, windows, benign, gaps, (train_end, end), weekly)
    heldout["families"] = {f.name: c.family_score(f, hstats) for f in families}
    timings["heldout"] = time.perf_counter() - t0

    # Incidents, healthy canaries and the smallest-shift grid on 1-minute segments.
    t0 = time.perf_counter()
    horizon = max(d.window for d in defs) + max(c.HOUR, spec.release.bake.seconds)
    pre = max(d.window for d in defs) + 15 * 60
    scen_rng = np.random.default_rng([job.seed, lvl_index, 11])
    incidents = []
    for kind in s.kinds:
        for label in s.onsets:
            onset = onset_time(level, label, job.seed, scen_rng)
            res = run_scenario(level, spec, defs, by_key, q, rules, families, s, kind, None, onset, pre, horizon,
                               seed=hash_seed(job.seed, lvl_index, kind, label))
            incidents.append({"kind": kind, "onset": label, **res})
    healthy = []
    for n, label in enumerate(s.healthy):
        week = n // len(HEALTHY_ONSETS)
        onset = onset_time(level, label, job.seed, scen_rng, week)
        res = run_scenario(level, spec, defs, by_key, q, rules, families, s, "healthy", None, onset, pre, horizon,
                           seed=hash_seed(job.seed, lvl_index, "healthy", label, week))
        healthy.append({"onset": label, **res})
    grid = []
    for family, values in s.grid:
        onset = onset_time(level, "peak", job.seed, scen_rng)
        for v in values:
            res = run_scenario(level, spec, defs, by_key, q, rules, families, s, family, v, onset, pre, horizon,
                               seed=hash_seed(job.seed, lvl_index, family, str(v)))
            grid.append({"family": family, "value": v, **res})
    timings["scenarios"] = time.perf_counter() - t0

    return {"level": job.level, "seed": job.seed, "model": level.model, "timings": timings,
            "provisional": base.provisional, "budget": spec.budget.text,
            "budget_rate": spec.budget.rate_per_second, "horizon": horizon,
            "heldout_seconds": float(end - train_end), "fitted": fitted, "heldout": heldout,
            "manual_budget": spec.manual_budget.text, "manual_share": manual_share,
            "incidents": incidents, "healthy": healthy, "grid": grid,
            "thresholds": {r.name: {cfg.key: cfg.threshold for cfg in r.cfgs} for r in rules},
            "groups": {d.key: d.group for d in defs}}


def manual_band_rule(spec: ModelSpec, base: Any, defs: Sequence[c.StatDef]) -> tuple[c.Rule, float]:
    """``DriftgateManualReview``: every signal and window over its (clamped) manual threshold. The manual
    budget is ~30x the automatic one, so held-out weeks test the same machinery with real counts."""
    cfgs = []
    for d in defs:
        if d.signal.name == "psi_peer":
            continue
        wf = base.signal(d.signal.name).window(d.which)
        cfgs.append(c.RuleCfg(d.key, wf.manual.value, wf.noise_of("manual"), wf.noise_power,
                              below=d.signal.direction.value == "below"))
    return c.Rule("driftgate_manual", tuple(cfgs)), spec.manual_budget.rate_per_second / (2 * len(spec.signals))


def hash_seed(*parts: Any) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def build_rules(spec: ModelSpec, base: Any, defs: Sequence[c.StatDef], train: dict[str, c.Hist], step: float,
                span: float) -> tuple[list[c.Rule], dict[str, Any]]:
    n_auto = 2 * max(1, sum(1 for sg in spec.signals if sg.tier is Tier.AUTO))
    share = spec.budget.rate_per_second / n_auto  # per configuration, as driftgate.fit.run
    dg, dg_raw, sd3, sd3r = [], [], [], []
    fitted: dict[str, Any] = {}
    for d in defs:
        if d.signal.name == "psi_peer":
            continue
        wf = base.signal(d.signal.name).window(d.which)
        cfg = c.RuleCfg(d.key, wf.auto.value, wf.noise_coefficient, wf.noise_power)
        dg.append(cfg)
        raw = train[d.key].raw
        stride = max(1, round(d.window / step))
        p = min(share * d.window, 0.5)
        dg_raw.append(c.RuleCfg(d.key, pot_level(raw, d.window, step, p)))
        sd3.append(c.RuleCfg(d.key, mean3sd(raw, stride)))
        # The fitter's training excess, to map the bootstrap band of the threshold to a rate.
        x = c.decision(cfg, train[d.key])
        x = x[np.isfinite(x)]
        p_at = implied_p(x, d.window, step, wf.auto, wf.auto.value)
        fitted[d.key] = {
            "method": wf.auto.method, "auto": wf.auto.value, "band": (wf.auto.band_low, wf.auto.band_high),
            "b": wf.noise_coefficient, "k": wf.noise_power, "p": wf.auto.exceedance_probability,
            "p_check": p_at, "window": d.window, "share_rate": share,
            "rate_hi": implied_p(x, d.window, step, wf.auto, wf.auto.band_low) / d.window,
            "rate_lo": implied_p(x, d.window, step, wf.auto, wf.auto.band_high) / d.window,
            "backtest": wf.auto.backtest_alerts, "train_max_raw": float(np.nanmax(raw)),
            "events_p50": wf.events_p50, "smallest_shift": wf.smallest_shift,
            "expected_delays": [(x_.shift, x_.delay_minutes) for x_ in wf.detection],
        }
    for cfg in sd3:
        sd3r.append(c.RuleCfg(cfg.key, retuned(train[cfg.key].raw, share * span)))
    psi_keys = [d.key for d in defs if d.signal.name == "psi_peer"]
    psi_share = spec.budget.rate_per_second / len(psi_keys)
    psi = [c.RuleCfg(k, 0.1) for k in psi_keys]
    psir = [c.RuleCfg(k, retuned(train[k].raw, psi_share * span)) for k in psi_keys]
    # What-if: the same fitted thresholds, with drift signals deciding from 50 events (the noise term
    # already widens the threshold at small n; min_events is then only a floor for the approximation).
    dg50 = [dataclasses.replace(cfg, min_events=50) if next(d for d in defs if d.key == cfg.key).group == "score"
            else cfg for cfg in dg]
    rules = [c.Rule("driftgate", tuple(dg)), c.Rule("driftgate_no_noise", tuple(dg_raw)),
             c.Rule("driftgate_min50", tuple(dg50)),
             c.Rule("psi_0.1", tuple(psi)), c.Rule("psi_retuned", tuple(psir)),
             c.Rule("mean3sd", tuple(sd3)), c.Rule("mean3sd_retuned", tuple(sd3r))]
    return rules, fitted


def build_families(defs: Sequence[c.StatDef], train: dict[str, c.Hist], step: float) -> list[c.Family]:
    """Fixed PSI on the score histogram (T free) and mean + z sd of the non-overlapping training windows
    per driftgate configuration (z free), as one-parameter families."""
    psi = tuple((d.key, 0.0, 1.0) for d in defs if d.signal.name == "psi_peer")
    msd = []
    for d in defs:
        if d.signal.name == "psi_peer":
            continue
        mean, sd = chunk_mean_sd(train[d.key].raw, max(1, round(d.window / step)))
        msd.append((d.key, mean, sd if sd > 0 else 1e-12))
    return [c.Family("psi_matched", psi), c.Family("meansd_matched", tuple(msd))]


CAUSES = ("gap", "gap-1w", "benign", "other")


def score_heldout(rules: Sequence[c.Rule], stats: dict[str, c.Hist], windows: dict[str, float],
                  benign: Sequence[tuple[float, float]], gaps: Sequence[tuple[float, float]],
                  span: tuple[float, float], weekly: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Episodes per rule (upcrossings of "any configuration hot"), per configuration, merged (a new
    episode only after the rule was quiet for one window: what ``keep_firing_for: <window>`` would page),
    and the likely cause of each episode: a scrape gap in the window, a gap in the same window one week
    earlier (for ``compare_with: last_week`` configurations), a benign shift (texture), or none of these."""
    out: dict[str, Any] = {}
    for r in rules:
        hots = {cfg.key: c.hot(cfg, stats[cfg.key]) for cfg in r.cfgs}
        t = stats[r.cfgs[0].key].t
        stack = np.stack(list(hots.values()))
        union = np.any(stack, axis=0)
        first = np.flatnonzero(union & ~np.concatenate([[False], union[:-1]]))
        causes = dict.fromkeys(CAUSES, 0)
        for i in first.tolist():
            keys = [k for k, h in hots.items() if h[i]]
            w = max(windows[k] for k in keys)
            x = float(t[i])
            week_before = any(k in weekly for k in keys)

            def touches(a: float, b: float, x: float = x, w: float = w) -> bool:
                return a - 600 <= x and x - w <= b + 600

            if any(touches(a, b) for a, b in gaps):
                causes["gap"] += 1
            elif week_before and any(touches(a + c.WEEK, b + c.WEEK) for a, b in gaps):
                causes["gap-1w"] += 1
            elif any(touches(a, b) for a, b in benign):
                causes["benign"] += 1
            else:
                causes["other"] += 1
        per_merged = {}
        for k, h in hots.items():
            idx = np.flatnonzero(h)
            per_merged[k] = int(idx.size and 1 + np.count_nonzero(np.diff(t[idx]) > windows[k]))
        idx = np.flatnonzero(union)
        wmax = max(windows[k] for k in hots)
        merged = int(idx.size and 1 + np.count_nonzero(np.diff(t[idx]) > wmax))
        out[r.name] = {"union": int(first.size), "per_config": {k: c.upcrossings(h) for k, h in hots.items()},
                       "merged": merged, "per_config_merged": per_merged, "causes": causes}
    out["benign_hours"] = sum(min(b, span[1]) - max(a, span[0]) for a, b in benign if b > span[0]) / c.HOUR
    return out


def scenario_incidents(level: c.Level, kind: str, value: float | None, onset: float, end: float,
                       weight: float) -> tuple[list[synth.Incident], bool]:
    """The incidents of one scenario and whether it is a canary rollout."""
    svc = level.service
    canary = synth.Canary(weight=weight, pods=1, pod_template_hash=c.CANARY_HASH)
    one = {
        "healthy": (IK.NONE, None, 0.05),
        "embedding_bug": (IK.SCORE_COLLAPSE, 0.8, 0.5),
        "embedding_bug_fleet": (IK.SCORE_COLLAPSE, 0.8, 0.5),
        "feature_default": (IK.FEATURE_DEFAULT, 0.15, 0.05),
        "moderate_shift": (IK.SCORE_SHIFT, c.delta_for_tvd(svc, 0.10), 0.05),
        "subtle_shift": (IK.SCORE_SHIFT, c.delta_for_tvd(svc, 0.03), 0.05),
        "latency_regression": (IK.LATENCY_REGRESSION, 0.4, 0.05),
        "error_regression": (IK.ERROR_REGRESSION, 5.0, 0.05),
        "shift_tvd": (IK.SCORE_SHIFT, c.delta_for_tvd(svc, value or 0.0), 0.05),
        "feature_default_share": (IK.FEATURE_DEFAULT, value, 0.05),
        "latency_mu": (IK.LATENCY_REGRESSION, value, 0.05),
        "error_factor": (IK.ERROR_REGRESSION, value, 0.05),
    }
    if kind == "slow_ramp":
        top = c.delta_for_tvd(svc, 0.10)
        return [synth.Incident(IK.SCORE_SHIFT, onset + 600 * i, onset + 600 * (i + 1) if i < 11 else end,
                               magnitude=top * (i + 1) / 12) for i in range(12)], False
    ik, mag, score_value = one[kind]
    is_canary = kind != "embedding_bug_fleet"
    return [synth.Incident(ik, onset, end, magnitude=mag, score_value=score_value,
                           canary=canary if is_canary else None)], is_canary


def run_scenario(level: c.Level, spec: ModelSpec, defs: Sequence[c.StatDef], by_key: dict[str, c.StatDef],
                 q: dict[str, np.ndarray], rules: Sequence[c.Rule], families: Sequence[c.Family], s: Settings,
                 kind: str, value: float | None,
                 onset: int, pre: float, horizon: float, seed: int) -> dict[str, Any]:
    seconds = c.segment_seconds(pre + horizon)
    start = onset - pre
    incidents, is_canary = scenario_incidents(level, kind, value, onset, start + seconds + 3600, s.canary_weight)
    docs = synth.generate(level.service, int(start), seconds / c.DAY, s.eval_step, seed, incidents)
    versions = c.by_version(c.to_series(docs))
    series = versions[c.CANARY_HASH] if is_canary else versions[level.service.pod_template_hash]
    if c.needs_last_week(defs):
        # compare_with: last_week: the whole model one week earlier (a healthy fleet at the same hour of
        # the week; an independent draw of the same service).
        before = synth.generate(level.service, int(start - c.WEEK), seconds / c.DAY, s.eval_step, seed + 1)
        series = [*series, *c.to_series(before)]
    stats = c.compute_stats(series, defs, q, onset, onset + horizon, s.eval_step, data_start=start - c.WEEK)
    if is_canary and s.young_guard:
        stats = c.seasoned(stats, versions[c.CANARY_HASH], {d.key: d.window for d in defs})
    group = KINDS[kind][0] if kind in KINDS else GRID_GROUP.get(kind)  # None: healthy, any signal counts
    a = spec.analysis
    out: dict[str, Any] = {"rules": {}}
    for r in rules:
        cfgs = [cfg for cfg in r.cfgs if group is None or by_key[cfg.key].group == group]
        if not cfgs:
            out["rules"][r.name] = None  # the rule has nothing watching this signal
            continue
        best, first_cfg, argo = None, None, None
        for cfg in cfgs:
            h = stats[cfg.key]
            hh = c.hot(cfg, h)
            fire = c.first_firing(hh, h.t, spec.alert_for_seconds, s.eval_step)
            if fire is not None and (best is None or fire - onset < best):
                best, first_cfg = (fire - onset) / 60.0, cfg.key
            ab = c.argo_abort(hh, h.t, onset, spec.alert_for_seconds, a.interval.seconds, a.failure_limit,
                              spec.alert_for_seconds, s.eval_step)
            if ab is not None and (argo is None or (ab - onset) / 60.0 < argo):
                argo = (ab - onset) / 60.0
        out["rules"][r.name] = {"delay": best, "first": first_cfg, "argo": argo}
    # The peer families: when the alert would fire for every theta at once (section 3b).
    out["families"] = {}
    for fam in families:
        keys = [k for k, _, _ in fam.cfgs if group is None or by_key[k].group == group]
        z = c.family_score(fam, stats, keys) if keys else None
        out["families"][fam.name] = None if z is None else c.sustained(z, spec.alert_for_seconds, s.eval_step)
    out["minutes"] = (stats[defs[0].key].t - onset) / 60.0
    return out


# --------------------------------------------------------------------------------------------
# Aggregation and tables


def _sum_causes(items: Any) -> dict[str, int]:
    out = dict.fromkeys(CAUSES, 0)
    for d in items:
        for k, v in d.items():
            out[k] += v
    return out


def _causes(d: dict[str, int]) -> str:
    return "/".join(str(d[k]) for k in CAUSES)


def fmt_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(x) for x in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isinf(x):
            return "miss"
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def q_delay(delays: Sequence[float | None], q: float) -> float:
    """Quantile of delays with a miss counted as +inf (so a median over half misses is 'miss')."""
    x = np.array([math.inf if d is None else d for d in delays], dtype=float)
    if x.size == 0:
        return math.nan
    xs = np.sort(x)
    i = min(xs.size - 1, max(0, math.ceil(q * xs.size) - 1))
    return float(xs[i])


def summarize(results: list[dict[str, Any]], seeds: int) -> tuple[str, dict[str, bool]]:
    out: list[str] = []
    targets: dict[str, bool] = {}
    levels = [lv for lv in c.LEVELS if any(r["level"] == lv for r in results)]

    # 1. Fitted thresholds (first seed), with the promised rate band.
    for lv in levels:
        r0 = next(r for r in results if r["level"] == lv)
        rows = []
        for k, f in r0["fitted"].items():
            rows.append([k, f["method"], f["auto"], f"{f['band'][0]:.4g}-{f['band'][1]:.4g}",
                         f"{f['b']:.3g}/n^{f['k']:g}", f"{f['p']:.2e}", f"{f['p_check']:.2e}",
                         f"{f['rate_lo'] * MONTH:.3f}-{f['rate_hi'] * MONTH:.3f}", f["share_rate"] * MONTH,
                         f["train_max_raw"], f["backtest"]])
        out.append(f"\n## Fitted automatic thresholds, {lv} traffic ({r0['model']}, budget {r0['budget']}, seed "
                   f"{r0['seed']}{', PROVISIONAL' if r0['provisional'] else ''})\n")
        out.append(fmt_table(["config", "method", "auto (excess)", "90% band", "noise b/n^k", "p/window",
                              "p at auto", "implied /month", "share /month", "train max raw", "backtest"], rows))

    # 2. Held-out false automatic rollbacks.
    out.append("\n## 1. Held-out normal weeks: false automatic rollbacks (driftgate, any auto config; "
               "stable version, 5-minute grid)\n")
    for lv in levels:
        rs = sorted((r for r in results if r["level"] == lv), key=lambda r: r["seed"])
        rows, inside = [], 0
        tot, tot_T = 0, 0.0
        for r in rs:
            T = r["heldout_seconds"]
            k = r["heldout"]["driftgate"]["union"]
            tot, tot_T = tot + k, tot_T + T
            lo, hi = c.poisson_interval(k)
            budget_band = c.poisson_band(r["budget_rate"] * T)
            rate_lo = sum(f["rate_lo"] for f in r["fitted"].values())
            rate_hi = sum(f["rate_hi"] for f in r["fitted"].values())
            fit_band = (c.poisson_band(rate_lo * T)[0], c.poisson_band(rate_hi * T)[1])
            ok = min(budget_band[0], fit_band[0]) <= k <= max(budget_band[1], fit_band[1])
            inside += ok
            rows.append([r["seed"], f"{T / c.DAY:.0f}d", k, k / T * MONTH,
                         f"{lo / T * MONTH:.2f}-{hi / T * MONTH:.2f}", r["budget_rate"] * MONTH,
                         f"{budget_band[0]}-{budget_band[1]}", f"{fit_band[0]}-{fit_band[1]}",
                         "yes" if ok else "NO", r["heldout"]["driftgate"]["merged"],
                         _causes(r["heldout"]["driftgate"]["causes"])])
        lo, hi = c.poisson_interval(tot)
        rb = rs[0]["budget_rate"] * MONTH
        rows.append(["pooled", f"{tot_T / c.DAY:.0f}d", tot, tot / tot_T * MONTH,
                     f"{lo / tot_T * MONTH:.2f}-{hi / tot_T * MONTH:.2f}", rb,
                     "{}-{}".format(*c.poisson_band(rs[0]["budget_rate"] * tot_T)), "", "",
                     sum(r["heldout"]["driftgate"]["merged"] for r in rs),
                     _causes(_sum_causes(r["heldout"]["driftgate"]["causes"] for r in rs))])
        out.append(f"\n{lv} traffic ({rs[0]['model']}):\n")
        out.append(fmt_table(["seed", "held-out", "false rollbacks", "per month", "90% CI /month",
                              "budget /month", "budget band (count)", "fitted band (count)", "inside",
                              "merged", "cause gap/gap-1w/benign/other"], rows))
        need = math.ceil(0.8 * len(rs))
        targets[f"held-out false rollbacks inside promised band, {lv} traffic ({inside}/{len(rs)} seeds, "
                f"need >= {need})"] = inside >= need and len(rs) >= 1

    out.append("\n## 1b. Held-out manual-review pages (DriftgateManualReview: any signal over its manual band), "
               "the same fitting machinery at the manual budget\n")
    for lv in levels:
        rs = sorted((r for r in results if r["level"] == lv), key=lambda r: r["seed"])
        rows, inside = [], 0
        tot, tot_T = 0, 0.0
        for r in rs:
            T = r["heldout_seconds"]
            k = r["heldout"]["driftgate_manual"]["union"]
            tot, tot_T = tot + k, tot_T + T
            expected = r["manual_share"] * len(r["heldout"]["driftgate_manual"]["per_config"]) * T
            band = c.poisson_band(expected)
            lo, hi = c.poisson_interval(k)
            inside += band[0] <= k <= band[1]
            rows.append([r["seed"], k, f"{lo * c.DAY * 7 / T:.2f}-{hi * c.DAY * 7 / T:.2f}", expected,
                         f"{band[0]}-{band[1]}", "yes" if band[0] <= k <= band[1] else "NO",
                         r["heldout"]["driftgate_manual"]["merged"],
                         _causes(r["heldout"]["driftgate_manual"]["causes"])])
        lo, hi = c.poisson_interval(tot)
        per_week = rs[0]["manual_share"] * len(rs[0]["heldout"]["driftgate_manual"]["per_config"]) * 7 * c.DAY
        rows.append(["pooled", tot, f"{lo * c.DAY * 7 / tot_T:.2f}-{hi * c.DAY * 7 / tot_T:.2f}",
                     per_week * tot_T / (7 * c.DAY), "{}-{}".format(*c.poisson_band(per_week * tot_T / (7 * c.DAY))),
                     f"{inside}/{len(rs)} seeds inside", sum(r["heldout"]["driftgate_manual"]["merged"] for r in rs),
                     _causes(_sum_causes(r["heldout"]["driftgate_manual"]["causes"] for r in rs))])
        out.append(f"\n{lv} traffic ({rs[0]['model']}, manual budget {rs[0]['manual_budget']} = "
                   f"{per_week:.2f}/week):\n")
        out.append(fmt_table(["seed", "pages", "90% CI /week", "expected", "budget band (count)", "inside",
                              "merged", "cause gap/gap-1w/benign/other"], rows))
        T = sum(r["heldout_seconds"] for r in rs)
        keys = list(rs[0]["heldout"]["driftgate_manual"]["per_config"])
        per = [[k, rs[0]["manual_share"] * T, sum(r["heldout"]["driftgate_manual"]["per_config"][k] for r in rs),
                sum(r["heldout"]["driftgate_manual"]["per_config_merged"][k] for r in rs)] for k in keys]
        out.append("\nper configuration (pooled):\n")
        out.append(fmt_table(["config", "expected", "observed", "merged"], per))

    # Per-configuration firing, pooled.
    out.append("\n## Which configurations fire on held-out data (pooled over seeds; expected = budget share)\n")
    for lv in levels:
        rs = [r for r in results if r["level"] == lv]
        T = sum(r["heldout_seconds"] for r in rs)
        rows = []
        for k in rs[0]["fitted"]:
            obs = {name: sum(r["heldout"][name]["per_config"].get(k, 0) for r in rs) for name in RULES}
            rows.append([k, rs[0]["fitted"][k]["share_rate"] * T] +
                        [obs[name] if k in rs[0]["thresholds"][name] else None for name in RULES])
        for k in [k for k in rs[0]["thresholds"]["psi_0.1"]]:
            rows.append([k, None] + [sum(r["heldout"][name]["per_config"].get(k, 0) for r in rs)
                                     if k in rs[0]["thresholds"][name] else None for name in RULES])
        out.append(f"\n{lv} traffic, {T / c.DAY:.0f} held-out days:\n")
        out.append(fmt_table(["config", "expected (driftgate)"] + [RULE_TITLE[n] for n in RULES], rows))

    # 2. Incidents, driftgate.
    out.append("\n## 2. Injected incidents (canary at 15% weight unless *_fleet / slow_ramp), driftgate\n"
               "delay = minutes from onset until the alert fires (incl. for: 2m); argo = until the "
               "AnalysisRun fails (the metric reads the alert state every interval); miss = not within the horizon\n")
    for lv in levels:
        rs = [r for r in results if r["level"] == lv]
        rows = []
        kinds = list(dict.fromkeys(i["kind"] for i in rs[0]["incidents"]))
        for kind in kinds:
            for label in [*dict.fromkeys(i["onset"] for i in rs[0]["incidents"]), "all"]:
                items = [i for r in rs for i in r["incidents"] if i["kind"] == kind
                         and (label == "all" or i["onset"] == label)]
                d = [i["rules"]["driftgate"]["delay"] for i in items]
                a = [i["rules"]["driftgate"]["argo"] for i in items]
                firsts = [i["rules"]["driftgate"]["first"] for i in items if i["rules"]["driftgate"]["first"]]
                common = max(set(firsts), key=firsts.count) if firsts else None
                rows.append([kind, label, len(items), f"{sum(x is not None for x in d)}/{len(d)}",
                             q_delay(d, 0.5), q_delay(d, 0.9), q_delay(a, 0.5), common])
        out.append(f"\n{lv} traffic ({rs[0]['model']}, horizon {rs[0]['horizon'] / 60:.0f} min):\n")
        out.append(fmt_table(["incident", "onset", "n", "detected", "delay p50", "delay p90", "argo p50",
                              "first config"], rows))
        emb = [i["rules"]["driftgate"]["delay"] for r in rs for i in r["incidents"] if i["kind"] == "embedding_bug"]
        if emb:
            p50 = q_delay(emb, 0.5)
            targets[f"embedding bug (canary) median delay <= 10 min, {lv} traffic (p50 = {_cell(p50)} min)"] = \
                p50 <= 10.0

    # 3. Side by side.
    out.append("\n## 3. Side by side on the same data, windows and plumbing: delay p50/p90 in minutes "
               "(detected/n); n/a = the rule has no signal for it\n")
    notes: list[str] = []
    for lv in levels:
        rs = [r for r in results if r["level"] == lv]
        T = sum(r["heldout_seconds"] for r in rs)
        rows = []
        kinds = list(dict.fromkeys(i["kind"] for i in rs[0]["incidents"]))
        med: dict[str, dict[str, float]] = {n: {} for n in RULES}
        for kind in kinds:
            row: list[Any] = [kind]
            for name in RULES:
                items = [i["rules"][name] for r in rs for i in r["incidents"] if i["kind"] == kind]
                if any(x is None for x in items):
                    row.append("n/a")
                    continue
                d = [x["delay"] for x in items]
                med[name][kind] = q_delay(d, 0.5)
                row.append(f"{_cell(q_delay(d, 0.5))}/{_cell(q_delay(d, 0.9))} "
                           f"({sum(x is not None for x in d)}/{len(d)})")
            rows.append(row)
        row = ["false rollbacks/month (held-out)"]
        for name in RULES:
            k = sum(r["heldout"][name]["union"] for r in rs)
            lo, hi = c.poisson_interval(k)
            row.append(f"{k / T * MONTH:.2f} [{lo / T * MONTH:.2f}-{hi / T * MONTH:.2f}]")
        rows.append(row)
        row = ["healthy canaries falsely alerted"]
        row2 = ["healthy canaries aborted by Argo"]
        for name in RULES:
            hs = [h["rules"][name] for r in rs for h in r["healthy"]]
            row.append(f"{sum(h['delay'] is not None for h in hs)}/{len(hs)}")
            row2.append(f"{sum(h['argo'] is not None for h in hs)}/{len(hs)}")
        rows += [row, row2]
        for name in ("driftgate", "driftgate_no_noise"):
            firsts = [h["rules"][name]["first"] for r in rs for h in r["healthy"] if h["rules"][name]["first"]]
            if firsts:
                which = ", ".join(f"{k} x{firsts.count(k)}" for k in sorted(set(firsts)))
                notes.append(f"{lv}: healthy canaries alerted by {RULE_TITLE[name]}: first config {which}")
        out.append(f"\n{lv} traffic ({rs[0]['model']}; budget {rs[0]['budget']} = "
                   f"{rs[0]['budget_rate'] * MONTH:.2f}/month):\n")
        out.append(fmt_table(["incident"] + [RULE_TITLE[n] for n in RULES], rows))
        for peer in PEERS_RETUNED:
            # Not a target: re-tuned on the training weeks, the peers do not hold the budget on held-out
            # data (the row above), so this is not "the same false-alarm budget"; section 3b is.
            wins, losses, common = _wins(med["driftgate"], med[peer])
            notes.append(f"{lv}: driftgate vs {RULE_TITLE[peer]} (training-tuned, budget not held): faster on "
                         f"{len(wins)}, slower on {len(losses)}{': ' + ', '.join(losses) if losses else ''}, "
                         f"of {len(common)} kinds")
        # Thresholds (first seed) for reference.
        r0 = rs[0]
        keys = list(dict.fromkeys(k for name in RULES for k in r0["thresholds"][name]))
        trows = [[k] + [r0["thresholds"][name].get(k) for name in RULES] for k in keys]
        out.append(f"\nThresholds, seed {r0['seed']} (driftgate: on the excess stat - b/n^k; others: on the raw "
                   f"statistic):\n")
        out.append(fmt_table(["config"] + [RULE_TITLE[n] for n in RULES], trows))

    if notes:
        out.append("\n" + "\n".join(notes))

    # 3b. The peers at driftgate's own false-alarm rate.
    out.append("\n## 3b. At the same false-alarm rate: each peer as a one-parameter family (PSI > T; mean + z sd "
               "of the training windows), its parameter chosen *on the held-out weeks and the healthy "
               "canaries themselves* (an oracle, in the peers' favour) as the smallest value at which, pooled "
               "over seeds, it raises no more false automatic rollbacks than max(driftgate's, the budget's "
               "expected count) and alerts on no more healthy canaries than driftgate (and no more at any "
               "larger value). Delay p50/p90 in minutes (detected/n), alerts only (for: 2m)\n")
    for lv in levels:
        rs = [r for r in results if r["level"] == lv]
        text, lv_targets = matched_section(rs, lv)
        out.append(text)
        targets.update(lv_targets)

    # 4. Smallest detectable shift.
    out.append("\n## 4. Smallest detectable shift per rule (canary at 15%, weekday peak onset; smallest grid "
               "value detected within the horizon in >= 50% of seeds, and at every larger value)\n")
    for lv in levels:
        rs = [r for r in results if r["level"] == lv]
        rows = []
        for family, _ in GRID:
            items = [g for r in rs for g in r["grid"] if g["family"] == family]
            if not items:
                continue
            values = sorted({g["value"] for g in items})
            row = [family]
            for name in RULES:
                if any(g["rules"][name] is None for g in items):
                    row.append("n/a")
                    continue
                rate = {v: np.mean([g["rules"][name]["delay"] is not None for g in items if g["value"] == v])
                        for v in values}
                smallest = None
                for v in reversed(values):
                    if rate[v] >= 0.5:
                        smallest = v
                    else:
                        break
                row.append(f"{smallest:g}" if smallest is not None else f"> {values[-1]:g}")
            rows.append(row)
        fitted = rs[0]["fitted"]
        pred = "; ".join(f"{k}: {f['smallest_shift']:.3g}" for k, f in fitted.items()
                         if f["smallest_shift"] is not None)
        out.append(f"\n{lv} traffic ({rs[0]['model']}):\n")
        out.append(fmt_table(["shift family"] + [RULE_TITLE[n] for n in RULES], rows))
        out.append(f"(the fitter's own prediction at the fleet's median event count, baseline "
                   f"'smallest_shift': {pred})")
    return "\n".join(out), targets


def _wins(ours: dict[str, float], theirs: dict[str, float]) -> tuple[list[str], list[str], list[str]]:
    common = [k for k in theirs if k in ours]
    return ([k for k in common if ours[k] < theirs[k]], [k for k in common if ours[k] > theirs[k]], common)


def match_theta(rs: Sequence[dict[str, Any]], fam: str, canaries: bool = True) -> dict[str, Any]:
    """The family's parameter at driftgate's false-alarm rate (see section 3b), with what it gives;
    ``canaries=False`` matches the held-out weeks only (healthy canaries may alert at any rate)."""
    held = [np.asarray(r["heldout"]["families"][fam]) for r in rs]
    healthy = np.array([np.max(h["families"][fam], initial=-np.inf) for r in rs for h in r["healthy"]
                        if h["families"][fam] is not None])
    dg_k = sum(r["heldout"]["driftgate"]["union"] for r in rs)
    budget_k = math.floor(sum(r["budget_rate"] * r["heldout_seconds"] for r in rs) + 1e-9)
    k_allowed = max(dg_k, budget_k)
    h_allowed = sum(h["rules"]["driftgate"]["delay"] is not None for r in rs for h in r["healthy"])
    if not canaries:
        h_allowed = healthy.size
    pooled = np.concatenate([x[np.isfinite(x)] for x in held] or [np.zeros(0)])
    tops = [np.sort(x[np.isfinite(x)])[-300:] for x in held]
    cands = np.unique(np.concatenate([healthy[np.isfinite(healthy)], *tops,
                                      np.quantile(pooled, np.linspace(0, 1, 1001)) if pooled.size else [],
                                      [0.0]]))
    episodes = np.zeros(cands.size, dtype=np.int64)
    for x in held:
        episodes += c.episodes_at(x, cands)
    alerts = (healthy[None, :] > cands[:, None]).sum(axis=1)
    ok = (episodes <= k_allowed) & (alerts <= h_allowed)
    bad = np.flatnonzero(~ok)
    i = 0 if bad.size == 0 else int(bad[-1]) + 1
    theta = float(cands[i]) if i < cands.size else float(cands[-1])
    return {"theta": theta, "episodes": int(episodes[min(i, cands.size - 1)]), "k_allowed": k_allowed,
            "alerts": int(alerts[min(i, cands.size - 1)]), "h_allowed": h_allowed, "healthy_n": healthy.size}


def family_delay(item: dict[str, Any], fam: str, theta: float) -> float | str | None:
    f = item["families"][fam]
    if f is None:
        return "n/a"
    idx = np.flatnonzero(np.asarray(f) > theta)
    return float(item["minutes"][idx[0]]) if idx.size else None


def matched_section(rs: Sequence[dict[str, Any]], lv: str) -> tuple[str, dict[str, bool]]:
    targets: dict[str, bool] = {}
    T = sum(r["heldout_seconds"] for r in rs)
    match = {fam: match_theta(rs, fam) for fam in FAMILIES}
    kinds = list(dict.fromkeys(i["kind"] for i in rs[0]["incidents"]))
    med: dict[str, dict[str, float]] = {n: {} for n in ("driftgate", *FAMILIES)}
    rows = []
    for kind in kinds:
        items = [i for r in rs for i in r["incidents"] if i["kind"] == kind]
        row: list[Any] = [kind]
        d = [i["rules"]["driftgate"]["delay"] for i in items]
        med["driftgate"][kind] = q_delay(d, 0.5)
        row.append(f"{_cell(q_delay(d, 0.5))}/{_cell(q_delay(d, 0.9))} ({sum(x is not None for x in d)}/{len(d)})")
        for fam in FAMILIES:
            fd = [family_delay(i, fam, match[fam]["theta"]) for i in items]
            if any(x == "n/a" for x in fd):
                row.append("n/a")
                continue
            dd = [x if isinstance(x, float) else None for x in fd]
            med[fam][kind] = q_delay(dd, 0.5)
            row.append(f"{_cell(q_delay(dd, 0.5))}/{_cell(q_delay(dd, 0.9))} "
                       f"({sum(x is not None for x in dd)}/{len(dd)})")
        rows.append(row)
    dg_k = sum(r["heldout"]["driftgate"]["union"] for r in rs)
    dg_h = sum(h["rules"]["driftgate"]["delay"] is not None for r in rs for h in r["healthy"])
    n_h = sum(len(r["healthy"]) for r in rs)
    rows.append(["parameter", "fitted", *(f"{'T' if f == 'psi_matched' else 'z'} = {match[f]['theta']:.4g} "
                                          f"(as configured: {0.1 if f == 'psi_matched' else 3})" for f in FAMILIES)])
    rows.append(["false rollbacks (held-out, pooled)", f"{dg_k} in {T / c.DAY:.0f} d",
                 *(f"{match[f]['episodes']} (allowed {match[f]['k_allowed']})" for f in FAMILIES)])
    rows.append(["healthy canaries alerted", f"{dg_h}/{n_h}",
                 *(f"{match[f]['alerts']}/{match[f]['healthy_n']} (allowed {match[f]['h_allowed']})"
                   for f in FAMILIES)])
    loose = {fam: match_theta(rs, fam, canaries=False) for fam in FAMILIES}
    rows.append(["matched on held-out weeks only", "",
                 *(f"{'T' if f == 'psi_matched' else 'z'} = {loose[f]['theta']:.4g}: healthy canaries alerted "
                   f"{loose[f]['alerts']}/{loose[f]['healthy_n']}" for f in FAMILIES)])
    out = [f"\n{lv} traffic ({rs[0]['model']}):\n",
           fmt_table(["incident", "driftgate", *(FAMILY_TITLE[f] for f in FAMILIES)], rows)]
    for fam in FAMILIES:
        wins, losses, common = _wins(med["driftgate"], med[fam])
        targets[f"better delay than {FAMILY_TITLE[fam]} at driftgate's false-alarm rate, {lv} traffic (faster "
                f"on {len(wins)}, slower on {len(losses)}{': ' + ', '.join(losses) if losses else ''}, of "
                f"{len(common)} kinds)"] = bool(common) and not losses and bool(wins)
    return "\n".join(out), targets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="CI size: 1 seed, 10 bootstrap draws, small grid")
    ap.add_argument("--plain", action="store_true", help="no extra texture (pure driftgate.synth histories)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-young-guard", action="store_true",
                    help="judge canaries from their first scrape (the rules wait for 5 scrapes of a new version)")
    ap.add_argument("--levels", default="high,low")
    ap.add_argument("--no-issue16", action="store_true",
                    help="skip the manual-tier calibration and the compare_with: stable sections")
    args = ap.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    seeds = 1 if args.quick else args.seeds
    if args.plain:
        settings = dataclasses.replace(settings, texture=c.PLAIN)
    if args.no_young_guard:
        settings = dataclasses.replace(settings, young_guard=False)
    jobs = [Job(lv, seed, settings) for seed in range(seeds) for lv in args.levels.split(",")]
    t0 = time.perf_counter()
    print(f"# driftgate quality benchmark: {seeds} seed(s) x {args.levels}; train {settings.train_days}d + "
          f"held-out {settings.heldout_days}d at {settings.step}s; texture: {settings.texture.describe()}; "
          f"bootstrap reps: {settings.bootstrap_reps or th.BOOTSTRAP_REPS}; young-version guard: "
          f"{'on' if settings.young_guard else 'off'}", flush=True)
    results = []
    with cf.ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(run_job, j): j for j in jobs}
        for fut in cf.as_completed(futures):
            r = fut.result()
            results.append(r)
            tm = ", ".join(f"{k} {v:.1f}s" for k, v in r["timings"].items())
            print(f"  done {r['level']} seed {r['seed']} ({tm})", file=sys.stderr, flush=True)
    results.sort(key=lambda r: (list(c.LEVELS).index(r["level"]), r["seed"]))
    text, targets = summarize(results, seeds)
    print(text)
    print("\n## Targets (issue 3)\n")
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if not args.no_issue16:
        # Issue 16, on the same seeds: the manual band's held-out pages against its budget, and the drift
        # signal fitted per compare_with (baseline, last_week, stable) judged on the same canaries.
        from bench import compare_stable, manual_tier

        print("\n## Manual-tier calibration (bench/manual_tier.py)")
        manual_ok = manual_tier.main(["--seeds", str(seeds), "--workers", str(args.workers)]) == 0
        print("\n## compare_with: stable against the pooled baseline and last week (bench/compare_stable.py)")
        compare_stable.main(["--seeds", str(seeds), "--workers", str(args.workers)])
        print(f"\n{'PASS' if manual_ok else 'FAIL'}  manual-tier calibration (issue 16)")
    print(f"\nruntime {time.perf_counter() - t0:.0f}s with {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
