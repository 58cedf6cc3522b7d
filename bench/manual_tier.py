"""Manual-tier calibration (issue 16): does ``DriftgateManualReview`` page the rollback authority as often as
``budget.manual`` promises on held-out normal weeks?

Usage: ``python bench/manual_tier.py [--seeds 10] [--workers 2]``

The same histories, fits and scoring as ``bench/quality.py`` section 1b (the example services at high and
low traffic, 4 training weeks with texture, 2 held-out weeks, the same seeds; ``quality.manual_band_rule``
and ``quality.score_heldout``), without the incident scenarios, so it runs in about a minute. Targets
(printed PASS/FAIL): per level, the pooled held-out pages inside the central 90% Poisson range of the
budget's count, and at least 8 of 10 seeds inside their own range.
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
from bench import quality as q
from driftgate import synth
from driftgate.fit.run import fit_model
from driftgate.model import SignalKind


def one(level_name: str, seed: int) -> dict[str, Any]:
    s = q.Settings()
    level = c.LEVELS[level_name]
    lvl_index = list(c.LEVELS).index(level_name)
    rng = np.random.default_rng([seed, lvl_index, 7])  # as quality._run_job: the same histories
    days = s.train_days + s.heldout_days
    train_end, end = c.START + s.train_days * c.DAY, c.START + days * c.DAY
    tex, benign = c.texture_incidents(level.service, c.START, days, s.texture, rng)
    gaps = c.texture_gaps(c.START, days, s.texture, rng)
    docs = synth.generate(level.service, c.START, days, s.step, 1000 * seed + lvl_index, tex)
    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
        spec = c.write_repo(Path(tmp), level.model, c.spec_text(level.spec_file),
                            c.slice_docs(docs, c.START, train_end, gaps))
        base = fit_model(Path(tmp), spec)
    probs = {spec.signal(f.name).metric: np.asarray(f.probabilities) for f in base.signals
             if f.kind == SignalKind.DISTRIBUTION_DRIFT.value}
    defs = c.stat_defs(spec, manual_tier=True)
    lookback = max(d.window for d in defs) + 2 * s.step + (c.WEEK if c.needs_last_week(defs) else 0)
    held = c.to_series(c.slice_docs(docs, train_end - lookback, end, gaps))
    stats = c.compute_stats(held, defs, probs, train_end + s.step, end, s.step, data_start=train_end - lookback)
    rule, share = q.manual_band_rule(spec, base, defs)
    scored = q.score_heldout([rule], stats, {d.key: d.window for d in defs}, benign, gaps, (train_end, end))
    methods = [base.signal(d.signal.name).window(d.which).manual.method for d in defs if d.signal.name != "psi_peer"]
    in_sample = sum(base.signal(d.signal.name).window(d.which).manual.backtest_alerts
                    for d in defs if d.signal.name != "psi_peer")
    return {"level": level_name, "seed": seed, "pages": scored[rule.name]["union"],
            "expected": share * len(rule.cfgs) * (end - train_end), "per": scored[rule.name]["per_config"],
            "methods": methods, "in_sample": in_sample,
            "in_sample_expected": share * len(rule.cfgs) * (train_end - c.START), "budget": spec.manual_budget.text}


def main(argv: list[str] | None = None) -> int:
    results = c.per_level_and_seed(one, argv, __doc__)
    ok = True
    for lv in ("high", "low"):
        rs = [r for r in results if r["level"] == lv]
        expected = rs[0]["expected"]
        band = c.poisson_band(expected)
        inside = sum(band[0] <= r["pages"] <= band[1] for r in rs)
        pooled = sum(r["pages"] for r in rs)
        pooled_band = c.poisson_band(expected * len(rs))
        methods: dict[str, int] = {}
        for r in rs:
            for m in r["methods"]:
                methods[m] = methods.get(m, 0) + 1
        print(f"\n{lv} traffic ({c.LEVELS[lv].model}, budget.manual {rs[0]['budget']}): held-out pages per seed "
              f"{[r['pages'] for r in rs]}, expected {expected:.1f} each (90% range {band[0]}-{band[1]})")
        in_sample, budgeted = sum(r["in_sample"] for r in rs), sum(r["in_sample_expected"] for r in rs)
        print(f"  in-sample backtest {in_sample} vs {budgeted:.1f} budgeted; manual-band methods {methods}")
        each = expected / len(rs[0]["per"]) * len(rs)
        for k in rs[0]["per"]:
            print(f"  {k:24s} held-out pages {sum(r['per'][k] for r in rs):3d} (expected {each:.1f})")
        t1 = pooled_band[0] <= pooled <= pooled_band[1]
        t2 = inside >= 0.8 * len(rs)
        print(f"  {'PASS' if t1 else 'FAIL'} pooled held-out pages {pooled} inside {pooled_band[0]}-{pooled_band[1]} "
              f"(expected {expected * len(rs):.1f})")
        print(f"  {'PASS' if t2 else 'FAIL'} seeds inside their range: {inside}/{len(rs)} (need >= 8 of 10)")
        ok &= t1 and t2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
