"""Synthetic Prometheus history for ML model services, written as ``query_range`` responses.

Why this exists: driftgate fits rollback thresholds from historical exports, and neither its
examples nor its benchmarks may depend on somebody's production Prometheus. What the fitter has to
survive is not "random numbers" but the specific texture of real scrapes, so that is what is
modelled here:

* **Counters, per pod.** Every series is a cumulative counter of one pod; traffic is split across
  pods (with a small, fixed imbalance), and a pod's counters start at an arbitrary value (the pod
  was up before the history starts).
* **Pod restarts.** A few times over the history a pod's counters go back to zero (the container
  restarted part-way through a scrape interval), which ``increase()`` must repair per series.
* **Seasonality.** The request rate follows hour of day (peak/trough ratio ``peak_to_trough``) and
  day of week (weekends lower), with slow multiplicative noise (an AR(1) process on the log rate
  plus a day-level factor). The score distribution is a Beta mixture whose weights swing mildly
  with hour of day, latency is a little slower at peak load, CTR moves with hour of day: drift
  statistics therefore have a seasonal baseline, as in production.
* **Sampling noise.** Per scrape step: requests ~ Poisson, errors ~ Binomial, histogram bins ~
  Multinomial, impressions ~ Poisson, clicks ~ Binomial, so a quiet hour is genuinely noisier.
* **Incidents.** :class:`Incident` modifies the service over a stretch of time, on all pods or on a
  canary pod set with its own ``rollouts_pod_template_hash`` (new series, counters from zero), so
  benchmarks can measure detection delay and false rollbacks.

What is emitted, per pod (``<p>`` is :attr:`ServiceModel.metric_prefix`)::

    <p>_score_bucket{le=...}                      score histogram, successful requests only
    <p>_request_duration_seconds_bucket{le=...}   latency histogram, every request
    <p>_requests_total                            every request
    <p>_request_errors_total                      failed requests (no score observed)
    <p>_impressions_total, <p>_clicks_total       only when the model has impressions / CTR

so ``<p>_request_duration_seconds_bucket{le="+Inf"} == <p>_requests_total`` and
``<p>_score_bucket{le="+Inf"} == <p>_requests_total - <p>_request_errors_total`` at every sample.
Only ``_bucket`` series are emitted for histograms (no ``_sum``/``_count``). Every series carries
``__name__``, ``job``, ``namespace``, ``pod``, ``rollouts_pod_template_hash`` (and ``le``); ``le`` is
spelled the way the Go client spells it (``0.1``, ``1``, ``2.5``, ``+Inf``).

Determinism: everything is drawn from :func:`numpy.random.default_rng` streams derived from
``seed``, one stream per (pod, quantity), and vector draws run in time order. The same arguments
give byte-identical files, and adding an incident leaves every sample *before* it unchanged (only
draws from the incident onwards see different parameters). No wall clock is read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal, special

from driftgate.exports.goformat import format_le as prom_float  # re-exported: the Go client's le spelling

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
QueryRangeDoc = dict[str, Any]

# Kubernetes' rand.SafeEncodeString alphabet (no vowels, no 0/1/3): pod-template hashes and pod
# name suffixes are drawn from it, so generated names look like real ones.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
DAY = 86400
HOUR = 3600.0
# 1970-01-01 was a Thursday; (days since epoch + 3) % 7 gives Monday = 0.
_EPOCH_WEEKDAY = 3

# Stream identifiers for SeedSequence spawn keys; never renumber (it would change every output).
_S_NOISE, _S_LAYOUT, _S_RESTARTS, _S_POD = 0, 1, 2, 3
_Q_REQUESTS, _Q_ERRORS, _Q_SCORE, _Q_LATENCY, _Q_IMPRESSIONS, _Q_CLICKS = range(6)


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class BetaComponent:
    """One Beta(a, b) component of the score mixture.

    ``swing`` is the relative change of its weight over the day: the weight is multiplied by
    ``1 + swing * cos(2π (hour - ScoreModel.peak_hour_utc) / 24)`` before renormalising, so
    components with opposite swings trade mass between day and night.
    """

    weight: float
    a: float
    b: float
    swing: float = 0.0


@dataclass(frozen=True)
class ScoreModel:
    """The output-score histogram: finite bucket bounds (``+Inf`` is added) and a Beta mixture."""

    bounds: tuple[float, ...]
    components: tuple[BetaComponent, ...]
    peak_hour_utc: float = 20.0

    def __post_init__(self) -> None:
        _check_bounds(self.bounds, "ScoreModel.bounds")
        if not self.components:
            raise ValueError("ScoreModel.components: at least one component is needed")
        for c in self.components:
            if not (c.weight > 0 and c.a > 0 and c.b > 0 and -1 < c.swing < 1):
                raise ValueError(f"ScoreModel.components: need weight, a, b > 0 and |swing| < 1: {c}")


@dataclass(frozen=True)
class LatencyModel:
    """The latency histogram: finite bounds in seconds (``+Inf`` is added) and lognormal parameters.

    ``mu``/``sigma`` are the mean and standard deviation of log(seconds); at full load ``mu`` is
    raised by ``peak_shift`` (linearly in the relative load), so peak hours are a little slower.
    """

    bounds: tuple[float, ...]
    mu: float
    sigma: float
    peak_shift: float = 0.1

    def __post_init__(self) -> None:
        _check_bounds(self.bounds, "LatencyModel.bounds")
        if not self.bounds[0] > 0:
            raise ValueError("LatencyModel.bounds: latency bounds must be positive")
        if not self.sigma > 0:
            raise ValueError("LatencyModel.sigma must be positive")


@dataclass(frozen=True)
class ServiceModel:
    """One model-serving service, as its Prometheus metrics see it.

    ``peak_rps`` is the total request rate across pods at the weekday diurnal peak before noise;
    the trough is ``peak_rps / peak_to_trough`` and weekends are scaled by ``weekend_factor``.
    ``noise_sigma`` is the standard deviation of the log-rate AR(1) noise (correlation time
    ``noise_minutes``) and ``day_sigma`` that of a per-day level factor. ``error_prob`` is the error
    probability at average load (it rises mildly with load). ``impressions_per_request`` and ``ctr``
    (clicks per impression, swinging by ``ctr_swing`` relative over the day) are optional; ``ctr``
    needs impressions. ``restarts`` pod restarts (counter resets) are spread over the history.
    """

    job: str
    namespace: str
    metric_prefix: str
    pods: int
    pod_template_hash: str
    peak_rps: float
    score: ScoreModel
    latency: LatencyModel
    error_prob: float = 0.003
    impressions_per_request: float | None = None
    ctr: float | None = None
    restarts: int = 0
    peak_hour_utc: float = 19.0
    peak_to_trough: float = 3.0
    weekend_factor: float = 0.75
    noise_sigma: float = 0.06
    noise_minutes: float = 30.0
    day_sigma: float = 0.04
    pod_imbalance: float = 0.05
    ctr_swing: float = 0.1
    ctr_peak_hour_utc: float = 21.0

    def __post_init__(self) -> None:
        if self.pods < 1:
            raise ValueError("ServiceModel.pods must be at least 1")
        if not self.peak_rps > 0:
            raise ValueError("ServiceModel.peak_rps must be positive")
        if not 0 <= self.error_prob < 0.5:
            raise ValueError("ServiceModel.error_prob must be in [0, 0.5)")
        if self.ctr is not None and self.impressions_per_request is None:
            raise ValueError("ServiceModel.ctr needs impressions_per_request")
        if self.impressions_per_request is not None and not self.impressions_per_request > 0:
            raise ValueError("ServiceModel.impressions_per_request must be positive")
        if self.ctr is not None and not 0 < self.ctr * (1 + abs(self.ctr_swing)) < 1:
            raise ValueError("ServiceModel.ctr (with its swing) must stay in (0, 1)")
        if not self.peak_to_trough >= 1:
            raise ValueError("ServiceModel.peak_to_trough must be at least 1")
        if self.restarts < 0:
            raise ValueError("ServiceModel.restarts must not be negative")
        if not self.pod_template_hash or any(ch not in SAFE_ALPHABET for ch in self.pod_template_hash):
            raise ValueError(f"ServiceModel.pod_template_hash must use the characters {SAFE_ALPHABET!r}")

    @property
    def score_metric(self) -> str:
        return f"{self.metric_prefix}_score_bucket"

    @property
    def latency_metric(self) -> str:
        return f"{self.metric_prefix}_request_duration_seconds_bucket"

    @property
    def requests_metric(self) -> str:
        return f"{self.metric_prefix}_requests_total"

    @property
    def errors_metric(self) -> str:
        return f"{self.metric_prefix}_request_errors_total"

    @property
    def impressions_metric(self) -> str:
        return f"{self.metric_prefix}_impressions_total"

    @property
    def clicks_metric(self) -> str:
        return f"{self.metric_prefix}_clicks_total"

    def metric_names(self) -> list[str]:
        """The metric names :func:`generate` emits for this model, in a fixed order."""
        names = [self.score_metric, self.latency_metric, self.requests_metric, self.errors_metric]
        if self.impressions_per_request is not None:
            names.append(self.impressions_metric)
        if self.ctr is not None:
            names.append(self.clicks_metric)
        return names


class IncidentKind(StrEnum):
    """What an incident does; the meaning of :attr:`Incident.magnitude` per kind is in brackets."""

    NONE = "none"  # nothing: a healthy canary, for false-rollback benchmarks [ignored]
    SCORE_COLLAPSE = "score_collapse"  # a share of scores collapses near score_value [share]
    FEATURE_DEFAULT = "feature_default"  # a share of requests gets exactly score_value [share]
    SCORE_SHIFT = "score_shift"  # every Beta component's mean moves by delta [delta]
    LATENCY_REGRESSION = "latency_regression"  # lognormal mu += x [x, in log-seconds]
    ERROR_REGRESSION = "error_regression"  # error probability × k [k]
    CTR_DROP = "ctr_drop"  # CTR × factor [factor]


DEFAULT_MAGNITUDE: dict[IncidentKind, float] = {
    IncidentKind.NONE: 0.0,
    IncidentKind.SCORE_COLLAPSE: 0.8,
    IncidentKind.FEATURE_DEFAULT: 0.15,
    IncidentKind.SCORE_SHIFT: 0.1,
    IncidentKind.LATENCY_REGRESSION: 0.4,
    IncidentKind.ERROR_REGRESSION: 5.0,
    IncidentKind.CTR_DROP: 0.7,
}


@dataclass(frozen=True)
class Canary:
    """A canary pod set: ``pods`` new pods with their own template hash taking ``weight`` of traffic.

    An empty ``pod_template_hash`` is derived deterministically from the model and the incident.
    """

    weight: float = 0.1
    pods: int = 1
    pod_template_hash: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.weight < 1:
            raise ValueError("Canary.weight must be in (0, 1)")
        if self.pods < 1:
            raise ValueError("Canary.pods must be at least 1")
        if any(ch not in SAFE_ALPHABET for ch in self.pod_template_hash):
            raise ValueError(f"Canary.pod_template_hash must use the characters {SAFE_ALPHABET!r}")


@dataclass(frozen=True)
class Incident:
    """The service behaves differently from ``start`` to ``end`` (unix seconds, end exclusive).

    A scrape step belongs to the incident when its midpoint does. With ``canary=None`` the change
    applies to the regular pods; with a :class:`Canary` it applies only to the canary pods, which
    exist (and have series) only during the incident while the regular pods keep the rest of the
    traffic. ``magnitude=None`` takes :data:`DEFAULT_MAGNITUDE`; ``score_value`` is where
    ``score_collapse`` piles mass (a narrow Beta around it: one or two bins) and the fixed score of
    ``feature_default``. Incidents apply in list order when they overlap.
    """

    kind: IncidentKind
    start: float
    end: float
    magnitude: float | None = None
    score_value: float = 0.05
    canary: Canary | None = None

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError("Incident.end must be after Incident.start")
        if not 0 < self.score_value < 1:
            raise ValueError("Incident.score_value must be in (0, 1)")
        m = self.effective_magnitude
        if self.kind in (IncidentKind.SCORE_COLLAPSE, IncidentKind.FEATURE_DEFAULT) and not 0 <= m <= 1:
            raise ValueError(f"Incident.magnitude for {self.kind} is a share in [0, 1]")
        if self.kind in (IncidentKind.ERROR_REGRESSION, IncidentKind.CTR_DROP) and not m >= 0:
            raise ValueError(f"Incident.magnitude for {self.kind} is a non-negative factor")

    @property
    def effective_magnitude(self) -> float:
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else self.magnitude


def _check_bounds(bounds: tuple[float, ...], what: str) -> None:
    if not bounds:
        raise ValueError(f"{what}: at least one finite bound is needed (+Inf is added)")
    if not all(math.isfinite(b) for b in bounds):
        raise ValueError(f"{what}: give finite bounds only; +Inf is added")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
        raise ValueError(f"{what}: bounds must be strictly increasing")


# --------------------------------------------------------------------------------------------
# Formatting


def safe_string(text: str, length: int) -> str:
    """A deterministic Kubernetes-style name fragment (``SAFE_ALPHABET``) derived from ``text``."""
    value = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    out = []
    for _ in range(length):
        value, r = divmod(value, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[r])
    return "".join(out)


def pod_name(job: str, template_hash: str, index: int) -> str:
    """``<job>-<hash>-<5 chars>``, like a ReplicaSet's pods; deterministic in its arguments."""
    return f"{job}-{template_hash}-{safe_string(f'{job}/{template_hash}/{index}', 5)}"


# --------------------------------------------------------------------------------------------
# Generation


@dataclass
class _Group:
    """Pods sharing one template hash and one set of per-step parameters."""

    key: int  # 0 = regular pods, i + 1 = canary of incident i
    template_hash: str
    pods: int
    share: FloatArray  # (rows,) share of total traffic
    active: npt.NDArray[np.bool_]  # (rows,) rows at which the pods exist
    incidents: list[Incident] = field(default_factory=list)


@dataclass
class _PodCounts:
    name: str
    template_hash: str
    rows: npt.NDArray[np.intp]  # sample indices at which the pod has samples
    score: IntArray  # (rows, K+1) cumulative over time and le
    latency: IntArray
    requests: IntArray
    errors: IntArray
    impressions: IntArray | None
    clicks: IntArray | None


def generate(model: ServiceModel, start: int, days: float, step_seconds: int, seed: int,
             incidents: Sequence[Incident] = ()) -> dict[str, QueryRangeDoc]:
    """Generate ``days`` of history from ``start`` (unix seconds) at one sample per ``step_seconds``.

    Samples are at ``start + k * step_seconds`` for ``k = 0 .. days * 86400 / step_seconds``
    (both ends included; the sample at ``k`` holds counts up to that instant). Returns a mapping
    from metric name to its ``query_range`` response document, in :meth:`ServiceModel.metric_names`
    order; see :func:`write_exports` and :func:`render_export`.
    """
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    span = days * DAY
    if not span > 0 or span % step_seconds != 0:
        raise ValueError(f"days * 86400 ({span:g}) must be a positive multiple of "
                         f"step_seconds ({step_seconds})")
    n_steps = int(span // step_seconds)
    t = start + step_seconds * np.arange(n_steps + 1, dtype=np.float64)
    mid = t - step_seconds / 2.0  # row k holds the step (t[k-1], t[k]]; row 0 is the initial offset
    hours = np.mod(mid, DAY) / HOUR
    weekday = np.mod(np.floor(mid / DAY) + _EPOCH_WEEKDAY, 7)
    amp = (model.peak_to_trough - 1) / (model.peak_to_trough + 1)
    diurnal = (1 + amp * np.cos(2 * np.pi * (hours - model.peak_hour_utc) / 24)) / (1 + amp)
    load = diurnal * np.where(weekday >= 5, model.weekend_factor, 1.0)  # 1 at the weekday peak

    rate = model.peak_rps * load * np.exp(_log_noise(model, t, step_seconds, seed))
    groups = _groups(model, incidents, mid)
    pods: list[_PodCounts] = []
    for group in groups:
        pods.extend(_group_counts(model, group, t, hours, load, rate, step_seconds, seed))
    return _documents(model, pods, t)


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _log_noise(model: ServiceModel, t: FloatArray, step: int, seed: int) -> FloatArray:
    """AR(1) log-rate noise (stationary from row 0) plus a per-calendar-day level."""
    rng = _stream(seed, _S_NOISE)
    eps = rng.standard_normal(t.size)
    phi = math.exp(-step / (model.noise_minutes * 60.0)) if model.noise_minutes > 0 else 0.0
    innov = math.sqrt(1 - phi * phi) * model.noise_sigma
    x0 = model.noise_sigma * eps[0]
    ar: FloatArray = signal.lfilter([innov], [1.0, -phi], eps[1:], zi=[phi * x0])[0]
    noise = np.concatenate([[x0], ar])
    day_index = np.floor((t - t[0]) / DAY).astype(np.int64)
    day_level = _stream(seed, _S_NOISE, 1).normal(0.0, model.day_sigma, int(day_index[-1]) + 1)
    out: FloatArray = noise + day_level[day_index]
    return out


def _groups(model: ServiceModel, incidents: Sequence[Incident], mid: FloatArray) -> list[_Group]:
    rows = mid.size
    regular = _Group(0, model.pod_template_hash, model.pods, np.ones(rows), np.ones(rows, dtype=bool))
    groups = [regular]
    hashes = {model.pod_template_hash}
    for i, inc in enumerate(incidents):
        if inc.canary is None:
            regular.incidents.append(inc)
            continue
        h = inc.canary.pod_template_hash or safe_string(
            f"{model.job}/{model.pod_template_hash}/canary/{i}/{inc.start}", len(model.pod_template_hash))
        if h in hashes:
            raise ValueError(f"incidents[{i}]: canary pod_template_hash {h!r} is already in use")
        hashes.add(h)
        active = (mid >= inc.start) & (mid < inc.end)
        active[0] = False  # canary pods start from zero: no initial offset
        share = np.where(active, inc.canary.weight, 0.0)
        regular.share = regular.share - share
        groups.append(_Group(i + 1, h, inc.canary.pods, share, active, [inc]))
    if np.any(regular.share < 0.05 - 1e-12):
        raise ValueError("overlapping canaries take more than 95% of the traffic")
    return groups


def _group_counts(model: ServiceModel, group: _Group, t: FloatArray, hours: FloatArray, load: FloatArray,
                  rate: FloatArray, step: int, seed: int) -> list[_PodCounts]:
    rows = t.size
    score_p = _score_probs(model.score, hours)
    mu = model.latency.mu + model.latency.peak_shift * load
    perr = model.error_prob * (0.75 + 0.5 * load)
    ctr_cos = np.cos(2 * np.pi * (hours - model.ctr_peak_hour_utc) / 24)
    ctr = (model.ctr or 0.0) * (1 + model.ctr_swing * ctr_cos)
    mid = t - step / 2.0
    for inc in group.incidents:
        on = (mid >= inc.start) & (mid < inc.end)
        if group.key == 0:
            on[0] = False  # the pre-history offset is never part of an incident
        if not on.any():
            continue
        m = inc.effective_magnitude
        kind = inc.kind
        if kind is IncidentKind.SCORE_COLLAPSE:
            conc = 400.0
            narrow = _beta_bins(model.score.bounds, inc.score_value * conc, (1 - inc.score_value) * conc)
            score_p[on] = (1 - m) * score_p[on] + m * narrow
        elif kind is IncidentKind.FEATURE_DEFAULT:
            fixed = np.zeros(len(model.score.bounds) + 1)
            fixed[int(np.searchsorted(np.asarray(model.score.bounds), inc.score_value, side="left"))] = 1.0
            score_p[on] = (1 - m) * score_p[on] + m * fixed
        elif kind is IncidentKind.SCORE_SHIFT:
            score_p[on] = _score_probs(model.score, hours[on], mean_shift=m)
        elif kind is IncidentKind.LATENCY_REGRESSION:
            mu = np.where(on, mu + m, mu)
        elif kind is IncidentKind.ERROR_REGRESSION:
            perr = np.where(on, perr * m, perr)
        elif kind is IncidentKind.CTR_DROP:
            ctr = np.where(on, ctr * m, ctr)
    perr = np.clip(perr, 0.0, 1.0)
    ctr = np.clip(ctr, 0.0, 1.0)
    lat_cdf = special.ndtr((np.log(np.asarray(model.latency.bounds))[None, :] - mu[:, None])
                           / model.latency.sigma)
    lat_p = _normalised(np.diff(lat_cdf, prepend=0.0, append=1.0, axis=1))
    score_p = _normalised(score_p)

    # Expected requests per row for the whole group; row 0 is the pods' uptime before the history.
    expected = rate * step * group.share
    layout = _stream(seed, _S_LAYOUT, group.key)
    n = group.pods
    if n > 1 and model.pod_imbalance > 0:
        # Dirichlet concentration giving each pod's share a relative sd of about pod_imbalance.
        alpha = max(((n - 1) / model.pod_imbalance ** 2 - 1) / n, 1e-3)
        weights = layout.dirichlet(np.full(n, alpha))
    else:
        weights = np.full(n, 1.0 / n)
    uptime = layout.uniform(0.5, 5.0, group.pods) * DAY
    restarts = _restart_rows(model, rows, seed) if group.key == 0 else {}

    out = []
    for p in range(group.pods):
        lam = expected * weights[p]
        if group.key == 0:
            lam[0] = float(np.mean(rate)) * uptime[p] * weights[p]
        lam = np.where(group.active, lam, 0.0)
        fractions = restarts.get(p, {})
        for r, frac in fractions.items():
            lam[r] *= frac  # only the part of the step after the restart is counted
        out.append(_pod_counts(model, group, p, lam, score_p, lat_p, perr, ctr, sorted(fractions), seed))
    return out


def _restart_rows(model: ServiceModel, rows: int, seed: int) -> dict[int, dict[int, float]]:
    """``{pod: {row: fraction of the step counted after the restart}}`` for the regular pods."""
    rng = _stream(seed, _S_RESTARTS)
    lo, hi = max(1, int(rows * 0.05)), max(2, int(rows * 0.95))
    out: dict[int, dict[int, float]] = {}
    if model.restarts == 0:
        return out
    if hi - lo < model.restarts:
        raise ValueError("the history is too short for the requested number of restarts")
    chosen = np.sort(rng.choice(np.arange(lo, hi), size=model.restarts, replace=False))
    which = rng.integers(0, model.pods, size=model.restarts)
    fracs = rng.uniform(0.1, 0.9, size=model.restarts)
    for r, p, f in zip(chosen.tolist(), which.tolist(), fracs.tolist(), strict=True):
        out.setdefault(int(p), {})[int(r)] = float(f)
    return out


def _pod_counts(model: ServiceModel, group: _Group, p: int, lam: FloatArray, score_p: FloatArray,
                lat_p: FloatArray, perr: FloatArray, ctr: FloatArray, restarts: list[int],
                seed: int) -> _PodCounts:
    def rng(q: int) -> np.random.Generator:
        return _stream(seed, _S_POD, group.key, p, q)

    requests = rng(_Q_REQUESTS).poisson(lam).astype(np.int64)
    errors = rng(_Q_ERRORS).binomial(requests, perr).astype(np.int64)
    ok = requests - errors
    score = rng(_Q_SCORE).multinomial(ok, score_p).astype(np.int64)
    latency = rng(_Q_LATENCY).multinomial(requests, lat_p).astype(np.int64)
    impressions = clicks = None
    if model.impressions_per_request is not None:
        impressions = rng(_Q_IMPRESSIONS).poisson(ok * model.impressions_per_request).astype(np.int64)
        if model.ctr is not None:
            clicks = rng(_Q_CLICKS).binomial(impressions, ctr).astype(np.int64)

    rows = np.flatnonzero(group.active)

    def cumulate(inc: IntArray) -> IntArray:
        total = np.cumsum(inc, axis=0)
        base = np.zeros_like(total)
        for r in restarts:
            base[r:] = total[r - 1]
        out: IntArray = (total - base)[rows]
        return out

    return _PodCounts(
        name=pod_name(model.job, group.template_hash, p),
        template_hash=group.template_hash,
        rows=rows,
        score=np.cumsum(cumulate(score), axis=1),
        latency=np.cumsum(cumulate(latency), axis=1),
        requests=cumulate(requests),
        errors=cumulate(errors),
        impressions=None if impressions is None else cumulate(impressions),
        clicks=None if clicks is None else cumulate(clicks),
    )


def _beta_bins(bounds: tuple[float, ...], a: float, b: float) -> FloatArray:
    """Bin probabilities of Beta(a, b) for the buckets ``(.., b0], (b0, b1], .., (b_last, +Inf)``."""
    cdf = special.betainc(a, b, np.clip(np.asarray(bounds, dtype=np.float64), 0.0, 1.0))
    out: FloatArray = np.diff(cdf, prepend=0.0, append=1.0)
    return out


def _score_probs(score: ScoreModel, hours: FloatArray, mean_shift: float = 0.0) -> FloatArray:
    """Per-row bin probabilities of the hour-dependent Beta mixture, shape ``(rows, K+1)``."""
    comps = []
    for c in score.components:
        a, b = c.a, c.b
        if mean_shift:
            conc = a + b
            mean = min(max(a / conc + mean_shift, 0.005), 0.995)
            a, b = mean * conc, (1 - mean) * conc
        comps.append(_beta_bins(score.bounds, a, b))
    cos = np.cos(2 * np.pi * (hours - score.peak_hour_utc) / 24)
    w = np.stack([c.weight * (1 + c.swing * cos) for c in score.components], axis=1)
    w /= w.sum(axis=1, keepdims=True)
    out: FloatArray = w @ np.stack(comps)
    return out


def _normalised(p: FloatArray) -> FloatArray:
    """Clip rounding negatives and renormalise rows so the multinomial accepts them."""
    p = np.clip(p, 0.0, None)
    out: FloatArray = p / p.sum(axis=-1, keepdims=True)
    return out


# --------------------------------------------------------------------------------------------
# Documents and files


def _documents(model: ServiceModel, pods: list[_PodCounts], t: FloatArray) -> dict[str, QueryRangeDoc]:
    stamps: list[int | float] = [int(x) if float(x).is_integer() else float(x) for x in t.tolist()]
    score_les = [prom_float(b) for b in model.score.bounds] + ["+Inf"]
    lat_les = [prom_float(b) for b in model.latency.bounds] + ["+Inf"]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in model.metric_names()}

    def add(name: str, pod: _PodCounts, values: IntArray, le: str | None = None) -> None:
        metric = {"__name__": name, "job": model.job, "namespace": model.namespace, "pod": pod.name,
                  "rollouts_pod_template_hash": pod.template_hash}
        if le is not None:
            metric["le"] = le
        ts = [stamps[i] for i in pod.rows.tolist()]
        results[name].append({"metric": metric,
                              "values": [[s, str(v)] for s, v in zip(ts, values.tolist(), strict=True)]})

    for pod in pods:
        for j, le in enumerate(score_les):
            add(model.score_metric, pod, pod.score[:, j], le)
        for j, le in enumerate(lat_les):
            add(model.latency_metric, pod, pod.latency[:, j], le)
        add(model.requests_metric, pod, pod.requests)
        add(model.errors_metric, pod, pod.errors)
        if pod.impressions is not None:
            add(model.impressions_metric, pod, pod.impressions)
        if pod.clicks is not None:
            add(model.clicks_metric, pod, pod.clicks)
    docs: dict[str, QueryRangeDoc] = {}
    for name, series in results.items():
        # Prometheus sorts a matrix by label set: label names in order, then values.
        series.sort(key=lambda s: sorted(s["metric"].items()))
        docs[name] = {"status": "success", "data": {"resultType": "matrix", "result": series}}
    return docs


def render_export(doc: QueryRangeDoc) -> bytes:
    """The exact bytes :func:`write_exports` writes: compact JSON, sorted keys, trailing newline."""
    return (json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def write_exports(docs: dict[str, QueryRangeDoc], out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<metric>.json`` for each document, atomically; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in docs.items():
        path = out_dir / f"{name}.json"
        write_atomic(path, render_export(doc))
        paths.append(path)
    return paths


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and ``os.replace``: never a torn file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
