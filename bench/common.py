"""Plumbing shared by the benchmarks: the two example services, seeded histories with extra texture,
temporary driftgate repositories, and the decision statistic computed per version like the rules do.

Nothing here re-implements a statistic: windows, increases, drift, quantiles and ratios all come from
``driftgate.fit`` (``driftgate.fit.signals.history``), which computes them exactly as the deployed rules do. What
the benchmark adds is *where* they are evaluated (held-out weeks, one canary version, a 1-minute grid)
and *which threshold* they are compared with (driftgate's fitted one or a peer rule's).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/quality.py` from a checkout
    sys.path.insert(0, str(REPO))

from driftgate import synth  # noqa: E402
from driftgate.exports.promjson import parse_query_range  # noqa: E402
from driftgate.exports.series import FloatArray, Series  # noqa: E402
from driftgate.fit.histogram import collect_buckets  # noqa: E402
from driftgate.fit.signals import SignalData, history  # noqa: E402
from driftgate.model import ModelSpec, Signal, SignalKind, Statistic, Tier  # noqa: E402
from driftgate.render.rules import MIN_SAMPLES  # noqa: E402
from driftgate.spec.load import load_specs  # noqa: E402

DAY = 86400
HOUR = 3600
WEEK = 7 * DAY
START = 1_788_739_200  # Monday 2026-09-07T00:00:00Z: training starts on a Monday
VERSION_LABEL = "rollouts_pod_template_hash"
CANARY_HASH = "8b9c4d5f6"  # the canary pod-template hash used for injected rollouts


# --------------------------------------------------------------------------------------------
# The two services: the repository's own examples (scripts/make_example_exports.py) and specs/


def _load_examples() -> ModuleType:
    path = REPO / "scripts" / "make_example_exports.py"
    spec = importlib.util.spec_from_file_location("_driftgate_example_exports", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EXAMPLES = _load_examples()


@dataclass(frozen=True)
class Level:
    """A traffic level: a synth service and the spec (signals, windows, budget) it is fitted with."""

    name: str
    service: synth.ServiceModel
    spec_file: str  # repository-relative spec used verbatim (its pins are ignored: the fit records its own)

    @property
    def model(self) -> str:
        return self.service.job


HIGH = Level("high", EXAMPLES.RECO, "specs/reco-ranker.yaml")  # ~120 req/s at peak, 3 pods
LOW = Level("low", EXAMPLES.FRAUD, "specs/fraud-scorer.yaml")  # ~3 req/s at peak, 2 pods
LEVELS = {"high": HIGH, "low": LOW}


# --------------------------------------------------------------------------------------------
# Texture that driftgate.synth does not model itself, emulated with its public Incident API


@dataclass(frozen=True)
class Texture:
    """Extra realism on the regular pods (training and held-out history).

    * over-dispersion: every hour the whole score mixture moves by a random mean shift whose typical
      size is ``overdispersion_tvd`` (total variation distance); synth's per-step multinomial draws
      are otherwise exactly multinomial around the seasonal mixture;
    * benign shifts: ``benign_per_week`` episodes (Poisson) of ``benign_hours`` hours with a score
      shift of ``benign_tvd`` TVD, either sign (an upstream content-mix change, not a bad release);
    * scrape gaps: ``gaps_per_week`` outages (Poisson) of ``gap_minutes`` minutes with no samples in
      any series.
    """

    overdispersion_tvd: float = 0.003
    benign_per_week: float = 2.0
    benign_hours: tuple[int, int] = (1, 6)
    benign_tvd: tuple[float, float] = (0.003, 0.01)
    gaps_per_week: float = 2.0
    gap_minutes: tuple[float, float] = (10.0, 60.0)

    def describe(self) -> str:
        if self == PLAIN:
            return "plain driftgate.synth (no extra texture)"
        return (f"over-dispersion: hourly score shift of ~{self.overdispersion_tvd:g} TVD; benign shifts: "
                f"Poisson({self.benign_per_week:g})/week, {self.benign_hours[0]}-{self.benign_hours[1]} h, "
                f"{self.benign_tvd[0]:g}-{self.benign_tvd[1]:g} TVD; scrape gaps: Poisson({self.gaps_per_week:g})"
                f"/week, {self.gap_minutes[0]:g}-{self.gap_minutes[1]:g} min")


DEFAULT_TEXTURE = Texture()
PLAIN = Texture(0.0, 0.0, (1, 1), (0.0, 0.0), 0.0, (0.0, 0.0))


@functools.lru_cache(maxsize=64)
def _mixture(score: synth.ScoreModel, delta: float) -> FloatArray:
    hours = np.arange(96) / 4.0
    out: FloatArray = synth._score_probs(score, hours, mean_shift=delta).mean(axis=0)
    return out


def expected_tvd(service: synth.ServiceModel, delta: float) -> float:
    """TVD between the day-averaged score distribution with every component's mean moved by ``delta``
    and without (synth's ``score_shift`` incident), with no sampling noise."""
    return float(0.5 * np.abs(_mixture(service.score, delta) - _mixture(service.score, 0.0)).sum())


@functools.lru_cache(maxsize=256)
def delta_for_tvd(service: synth.ServiceModel, tvd: float, sign: float = 1.0) -> float:
    """The ``score_shift`` magnitude (signed) whose expected TVD is ``tvd`` (bisection)."""
    if tvd <= 0:
        return 0.0
    lo, hi = 0.0, 0.5
    if expected_tvd(service, sign * hi) < tvd:
        return sign * hi
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected_tvd(service, sign * mid) < tvd else (lo, mid)
    return sign * hi


def texture_incidents(service: synth.ServiceModel, start: int, days: int, texture: Texture,
                      rng: np.random.Generator) -> tuple[list[synth.Incident], list[tuple[float, float]]]:
    """Hourly score-shift incidents (over-dispersion + benign shifts) and the benign episodes' spans."""
    hours = days * 24
    delta = np.zeros(hours)
    if texture.overdispersion_tvd > 0:
        sd = delta_for_tvd(service, texture.overdispersion_tvd) * math.sqrt(math.pi / 2)
        delta += rng.normal(0.0, sd, hours)
    benign: list[tuple[float, float]] = []
    n = int(rng.poisson(texture.benign_per_week * days / 7)) if texture.benign_per_week > 0 else 0
    for _ in range(n):
        dur = int(rng.integers(texture.benign_hours[0], texture.benign_hours[1] + 1))
        h0 = int(rng.integers(24, max(25, hours - 24 - dur)))
        tvd = float(rng.uniform(*texture.benign_tvd))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        delta[h0:h0 + dur] += delta_for_tvd(service, tvd, sign)
        benign.append((start + h0 * HOUR, start + (h0 + dur) * HOUR))
    incidents = [synth.Incident(synth.IncidentKind.SCORE_SHIFT, start + h * HOUR, start + (h + 1) * HOUR,
                                magnitude=float(delta[h]))
                 for h in range(hours) if abs(delta[h]) > 1e-9]
    return incidents, sorted(benign)


def texture_gaps(start: int, days: int, texture: Texture, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Scrape outages ``(from, to)``: every sample strictly inside is removed from every series."""
    n = int(rng.poisson(texture.gaps_per_week * days / 7)) if texture.gaps_per_week > 0 else 0
    out = []
    for _ in range(n):
        g0 = start + DAY + float(rng.uniform(0, (days - 2) * DAY))
        out.append((g0, g0 + 60.0 * float(rng.uniform(*texture.gap_minutes))))
    return sorted(out)


# --------------------------------------------------------------------------------------------
# query_range documents: cut, punch gaps, convert to gen Series


def slice_docs(docs: dict[str, Any], t0: float = -math.inf, t1: float = math.inf,
               gaps: Sequence[tuple[float, float]] = ()) -> dict[str, Any]:
    """Copies of the documents with samples in ``[t0, t1]`` and outside every gap; empty series dropped."""
    out: dict[str, Any] = {}
    g = np.asarray(gaps, dtype=np.float64).reshape(-1, 2)
    for name, doc in docs.items():
        result = []
        for s in doc["data"]["result"]:
            values = s["values"]
            ts = np.fromiter((v[0] for v in values), dtype=np.float64, count=len(values))
            keep = (ts >= t0) & (ts <= t1)
            for a, b in g:
                keep &= ~((ts > a) & (ts < b))
            if keep.all():
                result.append(s)
            elif keep.any():
                result.append({"metric": s["metric"], "values": [values[i] for i in np.flatnonzero(keep)]})
        if result:
            out[name] = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return out


def to_series(docs: dict[str, Any]) -> list[Series]:
    """Parse documents with the project's own reader (same checks as a fit)."""
    series: list[Series] = []
    for name, doc in docs.items():
        series.extend(parse_query_range(doc, f"{name}.json"))
    return series


def by_version(series: Iterable[Series]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.label(VERSION_LABEL) or "", []).append(s)
    return out


def segment_seconds(seconds: float) -> int:
    """``seconds`` rounded up to a multiple of 45 minutes: ``days * 86400`` is then exact in binary
    floating point, as synth.generate requires."""
    return int(math.ceil(seconds / 2700.0) * 2700)


# --------------------------------------------------------------------------------------------
# A temporary driftgate repository: the spec verbatim plus exports, loaded by driftgate itself


def spec_text(level_spec: str, exports: Sequence[str] | None = None, signals_yaml: str | None = None) -> str:
    """The repository spec ``level_spec``, optionally with its exports list / signals replaced."""
    text = (REPO / level_spec).read_text(encoding="utf-8")
    if exports is not None:
        listing = "".join(f"    - {e}\n" for e in exports)
        text = re.sub(r"(\n  exports:\n)((?:    - .*\n)+)", lambda m: m.group(1) + listing, text, count=1)
    if signals_yaml is not None:
        text = text.split("\nsignals:\n")[0] + "\nsignals:\n" + signals_yaml
    return text


def write_repo(root: Path, model: str, text: str, docs: dict[str, Any]) -> ModelSpec:
    """Write ``specs/<model>.yaml`` and ``exports/<model>/<metric>.json``; load the spec like ``fit`` does."""
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs" / f"{model}.yaml").write_text(text, encoding="utf-8")
    out = root / "exports" / model
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        synth.write_atomic(out / f"{name}.json", synth.render_export(doc))
    specs = load_specs(root, root / "specs", model, check_exports=True)
    return specs[0]


# --------------------------------------------------------------------------------------------
# The decision statistic per version, on any evaluation grid


GROUPS = {SignalKind.DISTRIBUTION_DRIFT: "score", SignalKind.LATENCY_QUANTILE: "latency",
          SignalKind.ERROR_RATIO: "errors", SignalKind.KPI_RATIO: "kpi"}


@dataclass(frozen=True)
class StatDef:
    """One windowed statistic: a spec signal (or a peer's variant of one) at one of its windows."""

    key: str  # "<signal>/<fast|slow>"
    signal: Signal
    which: str
    window: float  # seconds
    group: str  # score | latency | errors | kpi

    @property
    def min_events(self) -> int:
        return self.signal.min_events


def stat_defs(spec: ModelSpec, peer_psi: bool = True, manual_tier: bool = False) -> list[StatDef]:
    """Every auto-tier signal (and manual-tier ones with ``manual_tier``) at both windows, plus PSI on the
    first drift signal's histogram (with its windows and min_events) for the fixed-PSI peer rule."""
    out = []
    for sig in spec.signals:
        if sig.tier is not Tier.AUTO and not manual_tier:
            continue
        for which, w in sig.windows.items():
            out.append(StatDef(f"{sig.name}/{which}", sig, which, float(w.seconds), GROUPS[sig.kind]))
    if peer_psi:
        drift = next(s for s in spec.signals if s.kind is SignalKind.DISTRIBUTION_DRIFT)
        # Evidently compares with a fixed reference: the fitted baseline distribution, never last week.
        psi = dataclasses.replace(drift, name="psi_peer", statistic=Statistic.PSI, compare_with="baseline")
        for which, w in psi.windows.items():
            out.append(StatDef(f"psi_peer/{which}", psi, which, float(w.seconds), "score"))
    return out


@dataclass(frozen=True)
class Hist:
    t: FloatArray
    raw_all: FloatArray  # the statistic wherever the window has any event
    events: FloatArray
    min_events: int  # the spec's guard: fewer events = no decision

    def masked(self, min_events: int | None = None) -> FloatArray:
        """The statistic with windows under ``min_events`` (default: the spec's) as NaN (no decision)."""
        m = self.min_events if min_events is None else min_events
        out: FloatArray = np.where(self.events >= m, self.raw_all, np.nan)
        return out

    @property
    def raw(self) -> FloatArray:
        return self.masked()


def last_week(sig: Signal) -> bool:
    return sig.kind is SignalKind.DISTRIBUTION_DRIFT and getattr(sig, "compare_with", "baseline") == "last_week"


def needs_last_week(defs: Sequence[StatDef]) -> bool:
    return any(last_week(d.signal) for d in defs)


def compute_stats(series: Sequence[Series], defs: Sequence[StatDef], q_by_metric: dict[str, FloatArray],
                  first: float, end: float, step: float, data_start: float | None = None) -> dict[str, Hist]:
    """Each statistic at ``first, first + step, ... <= end`` on ``series`` (one version's series, or all
    of them for the fleet), against the *training* baseline distribution ``q_by_metric``.

    A ``compare_with: last_week`` drift signal compares with the same window one week earlier, all
    versions together (``offset 1w`` in the rules): ``series`` must then also hold the whole model's
    series of a week before (they contribute nothing to the current window, and the current version's
    series nothing to the window a week before, so one list serves both, exactly as the fitter's
    ``history`` computes it). ``data_start`` is where ``series`` begin: a window whose week-before
    window starts earlier is no decision, as in the fit."""
    buckets: dict[str, Any] = {}
    out: dict[str, Hist] = {}
    for d in defs:
        sig = d.signal
        data: SignalData | None
        if sig.is_histogram:
            if sig.metric not in buckets:
                items = [s for s in series if s.name == f"{sig.metric}_bucket"]
                buckets[sig.metric] = collect_buckets(items, sig.metric) if items else None
            b = buckets[sig.metric]
            q = q_by_metric[sig.metric] if sig.kind is SignalKind.DISTRIBUTION_DRIFT else np.zeros(0)
            data = None if b is None else SignalData(sig, b, q, [], [])
        else:
            num = [s for s in series if s.name == sig.metric]
            den = [s for s in series if s.name == sig.denominator]
            data = SignalData(sig, None, np.zeros(0), num, den) if den else None
        if data is None:
            t = np.arange(first, end + step / 2, step)
            out[d.key] = Hist(t, np.full(t.size, np.nan), np.zeros(t.size), sig.min_events)
            continue
        # min_events is applied by the rule (Hist.masked), so that a rule may use another guard.
        data = dataclasses.replace(data, signal=dataclasses.replace(sig, min_events=1))
        start = first - d.window
        if last_week(sig):
            start = data_start if data_start is not None else start - WEEK
        h = history(data, d.window, start, end, step)
        keep = h.t >= first - 1e-6
        out[d.key] = Hist(h.t[keep], h.value[keep], h.events[keep], sig.min_events)
    return out


def seasoned(stats: dict[str, Hist], own: Sequence[Series], windows: dict[str, float]) -> dict[str, Hist]:
    """The rules' young-version guard on a canary's statistics: no decision until the version's oldest
    series has ``MIN_SAMPLES`` scrapes in the window (``model_version:<metric>_samples:max<W>``; the
    stable version's series are old, so the rule's ``clamp_max(0.5 * max(...), 5)`` is 5 here)."""
    starts = [s.t for s in own if s.t.size]
    if not starts:
        return stats
    ts = min(starts, key=lambda t: float(t[0]))
    out = {}
    for k, h in stats.items():
        n = np.searchsorted(ts, h.t, "right") - np.searchsorted(ts, h.t - windows[k], "right")
        out[k] = dataclasses.replace(h, raw_all=np.where(n >= MIN_SAMPLES, h.raw_all, np.nan))
    return out


# --------------------------------------------------------------------------------------------
# Rules: a threshold per statistic, optionally on driftgate's count-aware excess


@dataclass(frozen=True)
class RuleCfg:
    key: str
    threshold: float
    b: float = 0.0  # noise coefficient: decision = raw - b * events^-k (+ for direction: below)
    k: float = 0.0
    below: bool = False  # direction: below (a KPI that must not drop)
    min_events: int | None = None  # None: the signal's min_events from the spec


@dataclass(frozen=True)
class Rule:
    name: str
    cfgs: tuple[RuleCfg, ...]


def decision(cfg: RuleCfg, h: Hist) -> FloatArray:
    if not cfg.b:
        return h.masked(cfg.min_events)
    sign = -1.0 if cfg.below else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = h.masked(cfg.min_events) - sign * np.where(h.events > 0, cfg.b / h.events ** cfg.k,
                                                                      np.nan)
    return out


def hot(cfg: RuleCfg, h: Hist) -> np.ndarray:
    d = decision(cfg, h)
    return np.where(np.isfinite(d), d < cfg.threshold if cfg.below else d > cfg.threshold, False)


def upcrossings(h: np.ndarray) -> int:
    return int(np.count_nonzero(h[1:] & ~h[:-1]) + (1 if h.size and h[0] else 0))


def firing(h: np.ndarray, for_seconds: float, step: float) -> np.ndarray:
    """Whether the alert fires at each evaluation: the condition held over ``for_seconds`` (pending → firing)."""
    need = math.ceil(for_seconds / step - 1e-9)
    out = np.zeros(h.size, dtype=bool)
    run = 0
    for i, v in enumerate(h.tolist()):
        run = run + 1 if v else 0
        out[i] = run >= need + 1
    return out


def first_firing(h: np.ndarray, t: FloatArray, for_seconds: float, step: float) -> float | None:
    """Time the alert fires: the condition held at every evaluation over ``for_seconds`` (pending → firing)."""
    fires = firing(h, for_seconds, step)
    return float(t[int(np.argmax(fires))]) if fires.any() else None


def argo_abort(h: np.ndarray, t: FloatArray, onset: float, initial_delay: float, interval: float,
               failure_limit: int, for_seconds: float, step: float) -> float | None:
    """Time the AnalysisRun fails. The metric reads the alert state: measurements at ``onset +
    initialDelay + j * interval`` (until the rollout completes: no count); a measurement while the
    alert fires is a failure; the metric fails when failures exceed ``failure_limit``."""
    fires = firing(h, for_seconds, step)
    failures = 0
    if t.size == 0:
        return None
    j = 0
    while True:
        at = onset + initial_delay + j * interval
        j += 1
        if at > t[-1]:
            return None
        i = int(np.searchsorted(t, at + 1e-6, side="right")) - 1
        if i < 0:
            continue
        if fires[i]:
            failures += 1
            if failures > failure_limit:
                return float(at)


@dataclass(frozen=True)
class Family:
    """A peer rule as a one-parameter family, so that it can be tuned to a false-alarm rate after the
    fact: configuration ``key`` is hot when its statistic (under the spec's ``min_events``) exceeds
    ``offset + theta * scale`` (fixed PSI: ``0 + theta``; NannyML-style: ``mean + theta * sd``)."""

    name: str
    cfgs: tuple[tuple[str, float, float], ...]  # (key, offset, scale)


def family_score(fam: Family, stats: dict[str, Hist], keys: Iterable[str] | None = None) -> FloatArray:
    """Per evaluation, the largest ``(stat - offset) / scale`` over the family's configurations (all, or
    those in ``keys``): the family is hot at ``theta`` exactly where this exceeds ``theta``. No decision
    (too few events, no data) is ``-inf``."""
    wanted = None if keys is None else set(keys)
    rows = [(stats[k].masked() - a) / s for k, a, s in fam.cfgs if wanted is None or k in wanted]
    if not rows:
        return np.zeros(0)
    z = np.stack(rows)
    out: FloatArray = np.max(np.where(np.isfinite(z), z, -np.inf), axis=0)
    return out


def sustained(z: FloatArray, for_seconds: float, step: float) -> FloatArray:
    """The smallest of the last ``for`` evaluations (and this one): the alert has fired by evaluation
    ``i`` at ``theta`` exactly when ``sustained(z)[i] > theta`` (``first_firing`` for every theta at once)."""
    need = math.ceil(for_seconds / step - 1e-9) + 1
    if z.size < need:
        return np.full(z.size, -np.inf)
    win = np.lib.stride_tricks.sliding_window_view(z, need).min(axis=1)
    out: FloatArray = np.concatenate([np.full(need - 1, -np.inf), win])
    return out


def episodes_at(z: FloatArray, thetas: FloatArray) -> np.ndarray:
    """Upcrossings of ``z > theta`` for every theta (rows): the false-rollback count of a family."""
    hot = z[None, :] > thetas[:, None]
    starts = hot[:, 1:] & ~hot[:, :-1]
    out: np.ndarray = starts.sum(axis=1) + hot[:, 0]
    return out


def poisson_interval(k: int, level: float = 0.90) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean given ``k`` events."""
    from scipy import stats

    a = 1 - level
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(a / 2, 2 * k) / 2)
    hi = float(stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2)
    return lo, hi


def poisson_band(mean: float, level: float = 0.90) -> tuple[int, int]:
    """Central ``level`` range of counts for a Poisson mean."""
    from scipy import stats

    a = 1 - level
    return int(stats.poisson.ppf(a / 2, mean)), int(stats.poisson.ppf(1 - a / 2, mean))


def per_level_and_seed(one: Any, argv: list[str] | None, doc: str | None) -> list[Any]:
    """``one(level, seed)`` for both services and seeds ``0..N-1`` (bench/quality.py's), in worker processes;
    the command line: ``--seeds N --workers W``."""
    import argparse
    import concurrent.futures as cf

    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    jobs = [(lv, seed) for lv in ("high", "low") for seed in range(args.seeds)]
    with cf.ProcessPoolExecutor(args.workers) as ex:
        return list(ex.map(one, *zip(*jobs, strict=True)))
