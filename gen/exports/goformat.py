"""Go's shortest float formatting, as Prometheus client libraries write ``le`` bucket bounds.

Generated histograms (synthetic exports, binned prediction logs) must spell ``le`` exactly like a
scraped one, because the rendered rules match bucket bounds as strings.
"""

from __future__ import annotations

import math


def format_le(x: float) -> str:
    """``le`` as the Go client writes it: ``strconv.FormatFloat(x, 'g', -1, 64)``.

    Shortest round-trip digits; exponent form when the decimal exponent is < -4 or >= 6:
    ``0.1``, ``1``, ``2.5``, ``100000``, ``1e+06``, ``1e-05``, ``+Inf``.
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp_text or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0") or "0"
    exp10 = point - 1  # decimal exponent of the first significant digit
    if exp10 < -4 or exp10 >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp10 < 0:
        return f"{sign}0.{'0' * (-exp10 - 1)}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
