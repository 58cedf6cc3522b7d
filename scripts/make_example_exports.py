"""Generate the two example models' Prometheus exports (``query_range`` JSON) with driftgate.synth.

Why: the README walkthrough, the examples in specs/ and the end-to-end tests need exports that
look like production ones, without anybody's Prometheus. The output is fully determined by the
fixed seeds and the fixed end time below (no wall clock), so ``--check`` can tell in CI whether the
files on disk are what this script produces.

* ``reco-ranker``: 3 pods, 28 days at 5m, ~120 req/s at peak, score / latency histograms,
  requests, errors, impressions and clicks, 3 pod restarts.
* ``fraud-scorer``: 2 pods, only 10 days at 5m (deliberately short: driftgate must mark its
  thresholds provisional), ~3 req/s at peak, score / latency histograms, requests and errors.

Usage: ``python scripts/make_example_exports.py [--out exports] [--check]``. Writes
``<out>/<model>/<metric>.json`` atomically; prints one line per file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

try:
    from driftgate import synth
except ModuleNotFoundError:  # run from a checkout without installing: the import name maps onto gen/
    import importlib.util

    _gen = Path(__file__).resolve().parent.parent / "gen"
    _spec = importlib.util.spec_from_file_location("driftgate", _gen / "__init__.py",
                                                   submodule_search_locations=[str(_gen)])
    assert _spec is not None and _spec.loader is not None
    sys.modules["driftgate"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["driftgate"])
    from driftgate import synth

END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
STEP = 300

RECO = synth.ServiceModel(
    job="reco-ranker",
    namespace="reco",
    metric_prefix="reco",
    pods=3,
    pod_template_hash="7d9f8c6b5",
    peak_rps=120.0,
    score=synth.ScoreModel(
        bounds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        components=(
            synth.BetaComponent(weight=0.55, a=2.0, b=6.0, swing=-0.08),
            synth.BetaComponent(weight=0.35, a=5.0, b=3.0, swing=0.10),
            synth.BetaComponent(weight=0.10, a=12.0, b=2.0, swing=0.15),
        ),
        peak_hour_utc=20.0,
    ),
    latency=synth.LatencyModel(
        bounds=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        mu=-3.1,  # median ≈ 45 ms
        sigma=0.6,
        peak_shift=0.15,
    ),
    error_prob=0.003,
    impressions_per_request=10.0,
    ctr=0.05,
    ctr_swing=0.12,
    restarts=3,
    peak_hour_utc=19.0,
)

FRAUD = synth.ServiceModel(
    job="fraud-scorer",
    namespace="payments-risk",
    metric_prefix="fraud",
    pods=2,
    pod_template_hash="6c8b7f9d4",
    peak_rps=3.0,
    score=synth.ScoreModel(
        bounds=(0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
        components=(
            synth.BetaComponent(weight=0.90, a=1.2, b=18.0, swing=0.03),
            synth.BetaComponent(weight=0.08, a=2.0, b=5.0, swing=-0.10),
            synth.BetaComponent(weight=0.02, a=6.0, b=1.5, swing=-0.25),
        ),
        peak_hour_utc=14.0,
    ),
    latency=synth.LatencyModel(
        bounds=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        mu=-3.5,  # median ≈ 30 ms
        sigma=0.5,
        peak_shift=0.1,
    ),
    error_prob=0.004,
    restarts=1,
    peak_hour_utc=14.0,
    noise_sigma=0.08,
)

# (model, days of history, seed); seeds are fixed and distinct per model.
EXAMPLES: tuple[tuple[synth.ServiceModel, int, int], ...] = (
    (RECO, 28, 20261101),
    (FRAUD, 10, 20261102),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("exports"),
                        help="output directory (default: exports)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is missing or not what would be written")
    args = parser.parse_args(argv)
    stale = 0
    for model, days, seed in EXAMPLES:
        docs = synth.generate(model, END - days * synth.DAY, days, STEP, seed)
        out_dir: Path = args.out / model.job
        if not args.check:
            out_dir.mkdir(parents=True, exist_ok=True)
        for name, doc in docs.items():
            path = out_dir / f"{name}.json"
            data = synth.render_export(doc)
            series = len(doc["data"]["result"])
            if args.check:
                ok = path.is_file() and path.read_bytes() == data
                stale += not ok
                print(f"{'ok   ' if ok else 'STALE'} {path} ({series} series, {len(data)} bytes)")
            else:
                synth.write_atomic(path, data)
                print(f"wrote {path} ({series} series, {len(data)} bytes)")
    if stale:
        print(f"{stale} file(s) missing or out of date; run scripts/make_example_exports.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
