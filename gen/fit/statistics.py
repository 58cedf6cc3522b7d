"""The windowed statistics the deployed rules compute, in numpy, with the same formulas.

Drift between a window's bin counts ``c`` and the baseline probabilities ``q``:

* smoothing: ``p_k = (c_k + ALPHA) / sum_j (c_j + ALPHA)`` with ``ALPHA = 0.5`` per bin, so an
  empty bin never gives ``Inf`` (``ln(p/0)``) or ``NaN`` (``0 * ln 0``);
* PSI ``= sum_k (p_k - q_k) * ln(p_k / q_k)`` (natural log);
* Jensen-Shannon divergence with **log base 2** (bounded by 1):
  ``JS = 1/2 sum p log2(2p/(p+q)) + 1/2 sum q log2(2q/(p+q))``;
* total variation distance ``TVD = 1/2 sum |p - q|`` (the share of mass that moved).

Latency quantiles follow Prometheus 2.x ``histogram_quantile`` (linear interpolation inside the
bucket; the lowest bucket starts at 0; a rank in the +Inf bucket returns the largest finite bound).
"""

from __future__ import annotations

import numpy as np

from driftgate.exports.series import FloatArray
from driftgate.model import Statistic

ALPHA = 0.5


def smoothed(bins: FloatArray) -> FloatArray:
    s = bins + ALPHA
    out: FloatArray = s / s.sum(axis=-1, keepdims=True)
    return out


def baseline_probabilities(total_bins: FloatArray) -> FloatArray:
    """The fitted baseline distribution from history-wide bin totals (smoothed the same way)."""
    return smoothed(total_bins.astype(np.float64))


def drift(stat: Statistic, bins: FloatArray, q: FloatArray) -> FloatArray:
    """Drift of each row of ``bins`` (``[time, bin]``) from ``q`` (one distribution, or one per row)."""
    p = smoothed(bins)
    out: FloatArray
    if stat is Statistic.PSI:
        out = np.sum((p - q) * np.log(p / q), axis=-1)
    elif stat is Statistic.TVD:
        out = 0.5 * np.sum(np.abs(p - q), axis=-1)
    elif stat is Statistic.JS:
        mix = p + q
        out = np.sum(0.5 * p * np.log2(2 * p / mix) + 0.5 * q * np.log2(2 * q / mix), axis=-1)
    else:
        raise ValueError(f"not a drift statistic: {stat}")
    return out


def histogram_quantile(q: float, cum: FloatArray, bounds: FloatArray) -> FloatArray:
    """Prometheus ``histogram_quantile(q, ...)`` for each row of cumulative counts ``[time, le]``."""
    cum = np.maximum.accumulate(cum, axis=1)  # ensureMonotonic
    total = cum[:, -1]
    rank = q * total
    k = cum.shape[1]
    hit = cum[:, : k - 1] >= rank[:, None]
    b = np.where(hit.any(axis=1), hit.argmax(axis=1), k - 1)
    rows = np.arange(cum.shape[0])
    upper = np.where(b < k - 1, bounds[np.minimum(b, k - 2)], bounds[k - 2])
    lower = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
    below = np.where(b > 0, cum[rows, np.maximum(b - 1, 0)], 0.0)
    count = cum[rows, np.minimum(b, k - 1)] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = lower + (upper - lower) * ((rank - below) / count)
    out = np.where(b == k - 1, bounds[k - 2], inside)
    out = np.where((b == 0) & (bounds[0] <= 0), bounds[0], out)
    return np.where(total > 0, out, np.nan)


def ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)
