"""``compare_with: stable`` against the pooled baseline and last week, at the same budget (issue 16).

Usage: ``python bench/compare_stable.py [--seeds 10] [--workers 2]``

For each service of ``bench/quality.py`` (high = reco-ranker, low = fraud-scorer), each seed (the same
histories, texture and onsets as bench/quality.py), the spec's drift signal ``score_drift`` is fitted three
times on the 4 training weeks, once per ``compare_with`` (``baseline``, ``last_week``, ``stable``), each at
the spec's own budget. Then, on 1-minute canary rollouts (a new pod-template hash with 15% of the traffic,
``quality.scenario_incidents``): 6 healthy canaries (false alerts) and the score incidents at three onsets
(delay from onset to the ``DriftgateAutoRollback`` that fires, condition held over ``for:``). The
canary's statistic is computed as each variant's rules do: against the fitted constants, against the whole
model one week earlier, or against the stable version's pooled bins over the same window (``n·m/(n+m)`` in
the noise term, both sides at least ``min_events``). Held-out false rollbacks: the 2 held-out weeks of
normal traffic (one version) for ``baseline`` and ``last_week``; ``stable`` decides nothing there (no young
version), which is its point: time of day and traffic mix cannot fire it. Numbers are printed, nothing is
asserted (the behaviour is tested in tests/test_compare_stable.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common as c
from bench import quality as qb
from driftgate import synth
from driftgate.fit import statistics as st
from driftgate.fit.histogram import bins_from_cumulative, collect_buckets, windowed_cumulative
from driftgate.fit.run import fit_model

VARIANTS = ("baseline", "last_week", "stable")
KINDS = ("embedding_bug", "feature_default", "moderate_shift", "subtle_shift")
SIGNAL = "score_drift"


def _spec_text(level: c.Level, variant: str) -> str:
    text = c.spec_text(level.spec_file)
    start = text.index(f"  - name: {SIGNAL}\n")
    end = text.find("  - name: ", start + 1)
    block = text[start:end if end > 0 else len(text)]
    lines = [ln for ln in block.splitlines(keepends=True) if not ln.strip().startswith("compare_with")]
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("statistic:"))
    lines.insert(at + 1, f"    compare_with: {variant}\n")
    return text[:start] + "".join(lines) + (text[end:] if end > 0 else "")


def _stable_stat(canary: list[Any], stable: list[Any], d: c.StatDef, t: np.ndarray, step: float) -> c.Hist:
    """The canary against the stable version's pooled bins over the same window (the stable rules)."""
    metric = d.signal.metric
    cb = collect_buckets([s for s in canary if s.name == f"{metric}_bucket"], metric)
    sb = collect_buckets([s for s in stable if s.name == f"{metric}_bucket"], metric)
    cc, _ = windowed_cumulative(cb, t, d.window, step)
    sc, _ = windowed_cumulative(sb, t, d.window, step)
    bins_c, bins_s = bins_from_cumulative(cc), bins_from_cumulative(sc)
    n, m = cc[:, -1], sc[:, -1]
    value = st.drift(d.signal.statistic, bins_c, st.smoothed(bins_s))
    value = np.where(m >= d.signal.min_events, value, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n + m > 0, n * m / (n + m), 0.0)
    # The canary's own events decide min_events (the alert's guard); the noise term reads n_eff: carry both.
    return c.Hist(t, value, np.where(n >= d.signal.min_events, eff, 0.0), 1)


def one(level_name: str, seed: int) -> dict[str, Any]:
    s = qb.Settings()
    level = c.LEVELS[level_name]
    li = list(c.LEVELS).index(level_name)
    rng = np.random.default_rng([seed, li, 7])
    days = s.train_days + s.heldout_days
    train_end, end = c.START + s.train_days * c.DAY, c.START + days * c.DAY
    tex, _benign = c.texture_incidents(level.service, c.START, days, s.texture, rng)
    gaps = c.texture_gaps(c.START, days, s.texture, rng)
    docs = synth.generate(level.service, c.START, days, s.step, 1000 * seed + li, tex)
    train = c.slice_docs(docs, c.START, train_end, gaps)
    fits, specs = {}, {}
    for v in VARIANTS:
        with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
            spec = c.write_repo(Path(tmp), level.model, _spec_text(level, v), train)
            fits[v], specs[v] = fit_model(Path(tmp), spec), spec
    out: dict[str, Any] = {"level": level_name, "seed": seed, "heldout": {}, "healthy": {}, "incidents": []}
    # Held-out normal weeks: one version; stable compares nothing there.
    for v in ("baseline", "last_week"):
        spec, base = specs[v], fits[v]
        defs = [d for d in c.stat_defs(spec, peer_psi=False) if d.signal.name == SIGNAL]
        q = {spec.signal(SIGNAL).metric: np.asarray(base.signal(SIGNAL).probabilities)}
        lookback = max(d.window for d in defs) + 2 * s.step + (c.WEEK if v == "last_week" else 0)
        held = c.to_series(c.slice_docs(docs, train_end - lookback, end, gaps))
        stats = c.compute_stats(held, defs, q, train_end + s.step, end, s.step, data_start=train_end - lookback)
        cfgs = [c.RuleCfg(d.key, base.signal(SIGNAL).window(d.which).auto.value,
                          base.signal(SIGNAL).window(d.which).noise_coefficient,
                          base.signal(SIGNAL).window(d.which).noise_power) for d in defs]
        hot = np.any(np.stack([c.hot(cfg, stats[cfg.key]) for cfg in cfgs]), axis=0)
        out["heldout"][v] = c.upcrossings(hot)
    scen_rng = np.random.default_rng([seed, li, 11])
    jobs = [("healthy", label) for label in qb.HEALTHY_ONSETS] + [(k, o) for k in KINDS for o in qb.ONSETS]
    for kind, label in jobs:
        onset = qb.onset_time(level, label, seed, scen_rng)
        pre, horizon = 2 * 3600.0, 2 * 3600.0
        seconds = c.segment_seconds(pre + horizon)
        start = onset - pre
        incidents, _ = qb.scenario_incidents(level, kind, None, onset, start + seconds + 3600, s.canary_weight)
        seg = synth.generate(level.service, int(start), seconds / c.DAY, s.eval_step,
                             qb.hash_seed(seed, li, kind, label), incidents)
        versions = c.by_version(c.to_series(seg))
        canary, stable = versions[c.CANARY_HASH], versions[level.service.pod_template_hash]
        before = c.to_series(synth.generate(level.service, int(start - c.WEEK), seconds / c.DAY, s.eval_step,
                                            qb.hash_seed(seed, li, kind, label) + 1))
        row: dict[str, Any] = {"kind": kind, "onset": label}
        for v in VARIANTS:
            spec, base = specs[v], fits[v]
            defs = [d for d in c.stat_defs(spec, peer_psi=False) if d.signal.name == SIGNAL]
            q = {spec.signal(SIGNAL).metric: np.asarray(base.signal(SIGNAL).probabilities)}
            if v == "stable":
                t = np.arange(onset, onset + horizon + 1, s.eval_step, dtype=np.float64)
                stats = {d.key: _stable_stat(canary, stable, d, t, float(s.eval_step)) for d in defs}
            else:
                series = [*canary, *before] if v == "last_week" else canary
                stats = c.compute_stats(series, defs, q, onset, onset + horizon, s.eval_step, data_start=start - c.WEEK)
            stats = c.seasoned(stats, canary, {d.key: d.window for d in defs})
            delay = None
            for d in defs:
                wf = base.signal(SIGNAL).window(d.which)
                cfg = c.RuleCfg(d.key, wf.auto.value, wf.noise_coefficient, wf.noise_power)
                h = stats[d.key]
                fire = c.first_firing(c.hot(cfg, h), h.t, spec.alert_for_seconds, s.eval_step)
                if fire is not None and (delay is None or (fire - onset) / 60 < delay):
                    delay = (fire - onset) / 60
            row[v] = delay
        out["incidents"].append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    results = c.per_level_and_seed(one, argv, __doc__)
    for lv in ("high", "low"):
        rs = [r for r in results if r["level"] == lv]
        print(f"\n{lv} traffic ({c.LEVELS[lv].model}, {SIGNAL}, budget as in the spec, {len(rs)} seeds):\n")
        print("| compare_with | held-out false rollbacks (2 weeks x seeds) | healthy canaries alerted | "
              + " | ".join(f"{k} caught, delay p50" for k in KINDS) + " |")
        print("|---" * (3 + len(KINDS)) + "|")
        for v in VARIANTS:
            held = "n/a (no young version)" if v == "stable" else str(sum(r["heldout"][v] for r in rs))
            rows = [i for r in rs for i in r["incidents"]]
            healthy = [i for i in rows if i["kind"] == "healthy"]
            cells = [v, held, f"{sum(i[v] is not None for i in healthy)}/{len(healthy)}"]
            for k in KINDS:
                got = [i[v] for i in rows if i["kind"] == k]
                caught = [x for x in got if x is not None]
                cells.append(f"{len(caught)}/{len(got)}, " + (f"{float(np.median(caught)):.0f} min" if caught else "—"))
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
