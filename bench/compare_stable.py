"""``compare_with: stable`` against the pooled baseline and last week, at the same budget (issue 16).

Usage: ``python bench/compare_stable.py [--seeds 10] [--workers 2]``

For each service of ``bench/quality.py`` (high = reco-ranker, low = fraud-scorer), each seed (the same
histories, texture and onsets as bench/quality.py), the spec is fitted three times on the 4 training weeks,
once per variant, each at the spec's own budget (the budget split is the same: only ``compare_with``
changes): ``baseline`` (every signal against its fitted baseline), ``last_week`` (``score_drift`` against
the whole model one week earlier) and ``stable`` (``score_drift``, ``latency_p99`` and ``error_ratio``
against the stable version). Then, on 1-minute canary rollouts (a new pod-template hash with 15% of the
traffic, ``quality.scenario_incidents``): 6 healthy canaries (false alerts) and, per studied signal, its
incidents at three onsets (delay from onset to the ``DriftgateAutoRollback`` that fires, condition held
over ``for:``): score incidents for ``score_drift``, error factors x1.5/x2/x5 for ``error_ratio``, latency
regressions (lognormal mu +0.05/+0.1/+0.4) for ``latency_p99``. The canary's statistic is computed as each
variant's rules do: against the fitted constants, against the whole model one week earlier, or against
the stable version's pooled counts over the same window (:func:`driftgate.fit.signals.compared`: drift
against its smoothed bins, a ratio or quantile minus its own; ``n·m/(n+m)`` in the noise term, both sides
at least ``min_events``). Held-out false rollbacks: the 2 held-out weeks of normal traffic (one version)
for ``baseline`` and ``last_week``; ``stable`` decides nothing there (no young version), which is its
point: time of day and traffic mix cannot fire it. Numbers are printed, nothing is asserted (the
behaviour is tested in tests/test_compare_stable.py and tests/test_compare_stable_levels.py).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common as c
from bench import quality as qb
from driftgate import synth
from driftgate.fit.histogram import collect_buckets, windowed_cumulative
from driftgate.fit.run import fit_model
from driftgate.fit.signals import compared
from driftgate.fit.windows import summed_window

VARIANTS = ("baseline", "last_week", "stable")


@dataclass(frozen=True)
class Study:
    signal: str
    variants: tuple[str, ...]
    kinds: tuple[tuple[str, float | None], ...]  # quality.scenario_incidents kind, magnitude


STUDIES = (
    Study("score_drift", VARIANTS, (("embedding_bug", None), ("feature_default", None), ("moderate_shift", None),
                                    ("subtle_shift", None))),
    Study("error_ratio", ("baseline", "stable"), (("error_factor", 1.5), ("error_factor", 2.0),
                                                  ("error_factor", 5.0))),
    Study("latency_p99", ("baseline", "stable"), (("latency_mu", 0.05), ("latency_mu", 0.1), ("latency_mu", 0.4))),
)


def _label(kind: str, value: float | None) -> str:
    if value is None:
        return kind
    return f"errors x{value:g}" if kind == "error_factor" else f"latency mu +{value:g}"


def _spec_text(level: c.Level, variant: str) -> str:
    """The level's spec with ``compare_with`` set for every studied signal the variant applies to."""
    text = c.spec_text(level.spec_file)
    for study in STUDIES:
        want = variant if variant in study.variants else "baseline"
        start = text.index(f"  - name: {study.signal}\n")
        end = text.find("  - name: ", start + 1)
        block = text[start:end if end > 0 else len(text)]
        lines = [ln for ln in block.splitlines(keepends=True) if not ln.strip().startswith("compare_with")]
        lines.insert(2, f"    compare_with: {want}\n")  # after name and kind
        text = text[:start] + "".join(lines) + (text[end:] if end > 0 else "")
    return text


def _side(series: list[Any], d: c.StatDef, t: np.ndarray, step: float) -> Any:
    """One version's counts per window, as :func:`driftgate.fit.signals.compared` takes them."""
    sig = d.signal
    if sig.is_histogram:
        b = collect_buckets([s for s in series if s.name == f"{sig.metric}_bucket"], sig.metric)
        return windowed_cumulative(b, t, d.window, step)[0], b.bounds
    num, _ = summed_window([s for s in series if s.name == sig.metric], t, d.window, step)
    den, _ = summed_window([s for s in series if s.name == sig.denominator], t, d.window, step)
    return (num, den), None


def _stable_stat(canary: list[Any], stable: list[Any], d: c.StatDef, t: np.ndarray, step: float) -> c.Hist:
    """The canary against the stable version's pooled counts over the same window (the stable rules)."""
    (ours, bounds), (theirs, _) = _side(canary, d, t, step), _side(stable, d, t, step)
    value, n, m, _level = compared(d.signal, bounds, ours, theirs)
    value = np.where(m >= d.signal.min_events, value, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n + m > 0, n * m / (n + m), 0.0)
    # The canary's own events decide min_events (the alert's guard); the noise term reads n_eff: carry both.
    return c.Hist(t, value, np.where(n >= d.signal.min_events, eff, 0.0), 1)


def _cfg(base: Any, d: c.StatDef) -> c.RuleCfg:
    wf = base.signal(d.signal.name).window(d.which)
    return c.RuleCfg(d.key, wf.auto.value, wf.noise_coefficient, wf.noise_power)


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
    out: dict[str, Any] = {"level": level_name, "seed": seed, "heldout": {}, "incidents": []}
    # Held-out normal weeks: one version; stable compares nothing there.
    for study in STUDIES:
        for v in (x for x in study.variants if x != "stable"):
            spec, base = specs[v], fits[v]
            defs = [d for d in c.stat_defs(spec, peer_psi=False) if d.signal.name == study.signal]
            metric = spec.signal(study.signal).metric
            q = {metric: np.asarray(base.signal(study.signal).probabilities)}
            lookback = max(d.window for d in defs) + 2 * s.step + (c.WEEK if v == "last_week" else 0)
            held = c.to_series(c.slice_docs(docs, train_end - lookback, end, gaps))
            stats = c.compute_stats(held, defs, q, train_end + s.step, end, s.step, data_start=train_end - lookback)
            hot = np.any(np.stack([c.hot(_cfg(base, d), stats[d.key]) for d in defs]), axis=0)
            out["heldout"][f"{study.signal}/{v}"] = c.upcrossings(hot)
    scen_rng = np.random.default_rng([seed, li, 11])
    jobs = [("healthy", None, label, None) for label in qb.HEALTHY_ONSETS]
    jobs += [(k, value, o, study) for study in STUDIES for k, value in study.kinds for o in qb.ONSETS]
    for kind, value, label, only in jobs:
        onset = qb.onset_time(level, label, seed, scen_rng)
        pre, horizon = 2 * 3600.0, 2 * 3600.0
        seconds = c.segment_seconds(pre + horizon)
        start = onset - pre
        incidents, _ = qb.scenario_incidents(level, kind, value, onset, start + seconds + 3600, s.canary_weight)
        seg = synth.generate(level.service, int(start), seconds / c.DAY, s.eval_step,
                             qb.hash_seed(seed, li, f"{kind}{value or ''}", label), incidents)
        versions = c.by_version(c.to_series(seg))
        canary, stable = versions[c.CANARY_HASH], versions[level.service.pod_template_hash]
        before = c.to_series(synth.generate(level.service, int(start - c.WEEK), seconds / c.DAY, s.eval_step,
                                            qb.hash_seed(seed, li, f"{kind}{value or ''}", label) + 1))
        for study in STUDIES if only is None else (only,):
            row: dict[str, Any] = {"signal": study.signal, "kind": _label(kind, value)}
            for v in study.variants:
                spec, base = specs[v], fits[v]
                defs = [d for d in c.stat_defs(spec, peer_psi=False) if d.signal.name == study.signal]
                metric = spec.signal(study.signal).metric
                q = {metric: np.asarray(base.signal(study.signal).probabilities)}
                if spec.signal(study.signal).compare_with == "stable":
                    t = np.arange(onset, onset + horizon + 1, s.eval_step, dtype=np.float64)
                    stats = {d.key: _stable_stat(canary, stable, d, t, float(s.eval_step)) for d in defs}
                else:
                    series = [*canary, *before] if v == "last_week" else canary
                    stats = c.compute_stats(series, defs, q, onset, onset + horizon, s.eval_step,
                                            data_start=start - c.WEEK)
                stats = c.seasoned(stats, canary, {d.key: d.window for d in defs})
                delay = None
                for d in defs:
                    h = stats[d.key]
                    fire = c.first_firing(c.hot(_cfg(base, d), h), h.t, spec.alert_for_seconds, s.eval_step)
                    if fire is not None and (delay is None or (fire - onset) / 60 < delay):
                        delay = (fire - onset) / 60
                row[v] = delay
            out["incidents"].append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    results = c.per_level_and_seed(one, argv, __doc__)
    for lv in ("high", "low"):
        rs = [r for r in results if r["level"] == lv]
        for study in STUDIES:
            kinds = list(dict.fromkeys(_label(k, v) for k, v in study.kinds))
            print(f"\n{lv} traffic ({c.LEVELS[lv].model}, {study.signal}, budget as in the spec, {len(rs)} seeds):\n")
            print("| compare_with | held-out false rollbacks (2 weeks x seeds) | healthy canaries alerted | "
                  + " | ".join(f"{k} caught, delay p50" for k in kinds) + " |")
            print("|---" * (3 + len(kinds)) + "|")
            rows = [i for r in rs for i in r["incidents"] if i["signal"] == study.signal]
            for v in study.variants:
                held = "n/a (no young version)" if v == "stable" else \
                    str(sum(r["heldout"][f"{study.signal}/{v}"] for r in rs))
                healthy = [i for i in rows if i["kind"] == "healthy"]
                cells = [v, held, f"{sum(i[v] is not None for i in healthy)}/{len(healthy)}"]
                for k in kinds:
                    got = [i[v] for i in rows if i["kind"] == k]
                    caught = [x for x in got if x is not None]
                    cells.append(f"{len(caught)}/{len(got)}, "
                                 + (f"{float(np.median(caught)):.0f} min" if caught else "—"))
                print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
