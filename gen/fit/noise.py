"""Count-aware thresholds: how much of a statistic is sampling noise at ``n`` events.

Under pure sampling noise a window of ``n`` events drawn from the baseline ``q`` (``K`` bins) gives

* PSI ``≈ χ²(K−1) / n`` (PSI is the symmetrised KL divergence; ``2n·KL ≈ χ²``);
* Jensen-Shannon (log base 2) ``≈ χ²(K−1) / (8 n ln 2)``;
* TVD ``= ½ Σ|p−q| ≤ ½ sqrt(χ²(K−1) / n)`` (Cauchy-Schwarz with weights ``q``);
* a ratio ``k/n`` with baseline ``r0``: standard deviation ``sqrt(r0 (1−r0) / n)``.

So driftgate decides on the *excess* ``x = stat − b · n^−power`` (``+`` for ``direction: below``),
with ``b`` the noise quantile at the configuration's per-window exceedance probability ``p``, and fits
the threshold ``a`` on the history of ``x``. The deployed rule is ``stat > a + b · n^−power``: a
canary with a tenth of the traffic automatically gets the wider threshold its noise needs, and the
fleet at peak keeps a tight one. Latency quantiles have no closed form here (``b = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from gen.model import Signal, Statistic


@dataclass(frozen=True)
class Noise:
    coefficient: float  # b
    power: float  # 1.0 (b / n) or 0.5 (b / sqrt(n)); 0.0 when there is no noise term

    def term(self, n: float) -> float:
        if self.coefficient == 0.0 or n <= 0:
            return 0.0
        return float(self.coefficient / n**self.power)


NONE = Noise(0.0, 0.0)


def noise_for(signal: Signal, bins: int, p: float, baseline_ratio: float) -> Noise:
    """The noise term of ``signal`` for ``bins`` histogram bins at exceedance probability ``p``."""
    p = min(max(p, 1e-12), 0.5)
    if signal.statistic in (Statistic.PSI, Statistic.JS, Statistic.TVD):
        chi2 = float(stats.chi2.ppf(1.0 - p, max(bins - 1, 1)))
        if signal.statistic is Statistic.PSI:
            return Noise(chi2, 1.0)
        if signal.statistic is Statistic.JS:
            return Noise(chi2 / (8.0 * math.log(2.0)), 1.0)
        return Noise(0.5 * math.sqrt(chi2), 0.5)
    if signal.statistic is Statistic.RATIO:
        r0 = min(max(baseline_ratio, 1e-9), 1.0 - 1e-9)
        z = float(stats.norm.isf(p))
        return Noise(z * math.sqrt(r0 * (1.0 - r0)), 0.5)
    return NONE
