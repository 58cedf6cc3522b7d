"""The one grammar of a classic histogram's bucket bound (the ``le`` label), for the fit, the export
readers and render.

The rules select every bucket by its label value *verbatim* (``le="0.5"``), so driftgate never
rewrites an ``le``: it keeps the export's spelling and only checks that it is a bound Prometheus reads
the way driftgate does. Accepted (what Prometheus' ``strconv.ParseFloat`` reads and its client
libraries write, ASCII only):

* a finite decimal number: optional sign, digits with an optional fraction, optional exponent:
  ``0.5``, ``1``, ``1.0``, ``.5``, ``2.5e-05``, ``1e+06``, ``-1``;
* ``+Inf`` for the last bucket, exactly as every Prometheus client (and Prometheus 3's own
  normalisation of ``le``) writes it. A baseline's last bucket is ``+Inf`` by this spelling
  (:func:`driftgate.baseline._les`), and the rules select it verbatim, so other spellings
  Go would also read as infinity (``inf``, ``Inf``, ``+inf``, ``Infinity``) are refused with that
  reason rather than fitted into a baseline that render would refuse.

Refused: ``NaN`` (never a bound), ``-Inf`` (a bucket that counts nothing), surrounding whitespace,
non-ASCII digits (``١``, ``１``, which Python's ``float()`` would read), digit separators (``1_000``),
hexadecimal (``0x10``), and numbers too large for a float (``1e400``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from driftgate.errors import quote

INF = "+Inf"
_FINITE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
_NAN = re.compile(r"[+-]?nan", re.IGNORECASE)
EXPECTED = "a bucket bound as Prometheus writes it (a decimal number such as 0.5, 1 or 1e+06, or +Inf)"


def le_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable ``le`` (a phrase to follow ``le=<quoted>: ``), or None."""
    if text == INF:
        return None
    if _FINITE.fullmatch(text):
        if not math.isfinite(float(text)):
            return f"expected {EXPECTED}, got a number too large for a 64-bit float"
        return None
    if _INFINITY.fullmatch(text):
        if text.startswith("-"):
            return "a bucket bound of -Inf counts nothing; expected a finite bound or +Inf"
        return ("expected the infinite bucket spelled +Inf, as Prometheus and its client libraries write it; "
                "driftgate selects buckets by their exact label value and a baseline's last bucket is +Inf")
    if _NAN.fullmatch(text):
        return "NaN is not a bucket bound; expected a number or +Inf"
    if text != text.strip():
        return f"expected {EXPECTED}, without spaces around it"
    if not text.isascii():
        return f"expected {EXPECTED} in ASCII digits; the value has non-ASCII characters"
    return f"expected {EXPECTED}"


def parse_le(text: str) -> float:
    """The numeric bound of an ``le`` label value; :class:`ValueError` (with the reason) otherwise."""
    problem = le_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return math.inf if text == INF else float(text)


def les_problem(les: Sequence[str]) -> tuple[int, str] | None:
    """``(index, reason)`` of the first ``le`` of a histogram's ordered bucket list that is not acceptable
    (each parses, the bounds strictly increase, the last is ``+Inf``), or None."""
    previous = -math.inf
    for i, le in enumerate(les):
        problem = le_problem(le)
        if problem is not None:
            return i, f"le={quote(le)}: {problem}"
        value = parse_le(le)
        if not value > previous:
            return i, f"le={quote(le)}: expected bucket bounds in strictly increasing order, got it after " \
                      f"{quote(les[i - 1])}"
        previous = value
    if les and les[-1] != INF:
        return len(les) - 1, f"expected the last bucket to be le='+Inf', got le={quote(les[-1])}"
    return None
