"""Count-aware thresholds: how much of a statistic is sampling noise at ``n`` events.

Under pure sampling noise a window of ``n`` events drawn from the baseline ``q`` (``K`` bins) gives

* PSI ``≈ χ²(K−1) / n`` (PSI is the symmetrised KL divergence; ``2n·KL ≈ χ²``);
* Jensen-Shannon (log base 2) ``≈ χ²(K−1) / (8 n ln 2)``;
* TVD ``= ½ Σ|p−q| ≤ ½ sqrt(χ²(K−1) / n)`` (Cauchy-Schwarz with weights ``q``);
* a ratio ``k/n`` with baseline ``r0``: standard deviation ``sqrt(r0 (1−r0) / n)``;
* a quantile ``x_q`` from ``histogram_quantile``: it interpolates inside the bucket ``b`` where rank
  ``q`` falls, ``x̂ = lower + width (q n − C_below) / C_b``, so by the delta method
  ``sd(x̂) ≈ sd(F̂(x_q)) · width / p_b`` with ``n Var F̂(x_q) = P(1−P) + t² p_b (1−p_b) − 2 t P p_b``
  (multinomial counts: ``P`` the share below the bucket, ``p_b`` the bucket's, ``t = (q − P) / p_b``):
  ``b = z · sqrt(n) sd(x̂)``, power ½. A quantile in the ``+Inf`` bucket is reported as the last
  finite bound whatever ``n`` is: no term.

So driftgate decides on the *excess* ``x = stat − b · n^−power`` (``+`` for ``direction: below``),
with ``b`` the noise quantile at ``min(rate × window, 0.5)`` (the automatic configuration's rate times
the window length; :func:`driftgate.fit.run._window_fit` passes it; the manual band uses the same term), and fits
the threshold ``a`` on the history of ``x``. The deployed rule is ``stat > a + b · n^−power``: a
canary with a tenth of the traffic automatically gets the wider threshold its noise needs, and the
fleet at peak keeps a tight one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from driftgate.exports.series import FloatArray
from driftgate.model import Signal, Statistic


@dataclass(frozen=True)
class Noise:
    coefficient: float  # b
    power: float  # 1.0 (b / n) or 0.5 (b / sqrt(n)); 0.0 when there is no noise term

    def term(self, n: float) -> float:
        if self.coefficient == 0.0 or n <= 0:
            return 0.0
        return float(self.coefficient / n**self.power)


NONE = Noise(0.0, 0.0)


def noise_for(signal: Signal, bins: int, p: float, baseline_ratio: float, quantile_sd: float = 0.0) -> Noise:
    """The noise term of ``signal`` for ``bins`` histogram bins at exceedance probability ``p``
    (``quantile_sd``: :func:`quantile_sd` of the baseline, for a quantile signal)."""
    p = min(max(p, 1e-12), 0.5)
    if signal.statistic in (Statistic.PSI, Statistic.JS, Statistic.TVD):
        chi2 = float(2.0 * special.gammaincinv(max(bins - 1, 1) / 2.0, 1.0 - p))  # chi2.ppf(1 - p, bins - 1)
        if signal.statistic is Statistic.PSI:
            return Noise(chi2, 1.0)
        if signal.statistic is Statistic.JS:
            return Noise(chi2 / (8.0 * math.log(2.0)), 1.0)
        return Noise(0.5 * math.sqrt(chi2), 0.5)
    if signal.statistic is Statistic.RATIO:
        r0 = min(max(baseline_ratio, 1e-9), 1.0 - 1e-9)
        z = float(-special.ndtri(p))  # norm.isf(p)
        return Noise(z * math.sqrt(r0 * (1.0 - r0)), 0.5)
    if signal.statistic is Statistic.QUANTILE and quantile_sd > 0.0:
        return Noise(float(-special.ndtri(p)) * quantile_sd, 0.5)
    return NONE


def quantile_sd(q: float, counts: FloatArray, bounds: FloatArray) -> float:
    """``sqrt(n) · sd`` of ``histogram_quantile(q)`` over ``n`` events drawn from a histogram with
    per-bucket ``counts`` (the last one ``+Inf``) and upper ``bounds``; 0 when rank ``q`` falls in
    the ``+Inf`` bucket or the histogram is empty (see the module docstring)."""
    total = float(np.sum(counts))
    if total <= 0:
        return 0.0
    cum = np.cumsum(counts) / total
    b = int(np.searchsorted(cum, q, side="left"))  # the first bucket whose cumulative share reaches q
    if b >= len(counts) - 1 or counts[b] <= 0:
        return 0.0
    below = float(cum[b - 1]) if b > 0 else 0.0
    p_b = float(counts[b]) / total
    t = (q - below) / p_b
    var = below * (1.0 - below) + t * t * p_b * (1.0 - p_b) - 2.0 * t * below * p_b
    width = max(float(bounds[b]) - (float(bounds[b - 1]) if b > 0 else 0.0), 0.0)
    return math.sqrt(max(var, 0.0)) * width / p_b
