"""PromQL text, built in Python so templates only lay it out.

Every name that reaches PromQL has passed a grammar in :mod:`driftgate.spec.names`; label *values* are
additionally escaped here (``\\`` and ``"``), so a value can never end the string and inject a
matcher. Numbers are written positionally with at most 6 significant digits (no exponent, which
keeps them readable and valid in both PromQL and Argo's expr-lang).
"""

from __future__ import annotations

from decimal import Decimal

from driftgate.validate.durations import parse_prom_duration


def num(x: float) -> str:
    """A stable, positional rendering of ``x`` (``1.23e-05`` -> ``0.0000123``)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {x}")
    text = format(Decimal(f"{x:.6g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(name: str, matchers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
             more: tuple[tuple[str, str, str], ...] = ()) -> str:
    """``name{k="v",...}``; ``more``: (label, op, value) matchers after them (``=~`` for a regex)."""
    inner = ",".join([f"{k}={quote(v)}" for k, v in matchers] + [f"{k}{op}{quote(v)}" for k, op, v in more])
    return f"{name}{{{inner}}}"


_UNITS_MS = (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def duration_ms(text: str) -> int:
    """Milliseconds of a Prometheus duration as driftgate renders them (``1h``, ``15m``, ``1h30m``);
    the grammar is :func:`driftgate.validate.durations.parse_prom_duration`'s, ASCII digits only."""
    seconds = parse_prom_duration(text) if isinstance(text, str) and text.isascii() else -1.0
    if seconds <= 0:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return round(seconds * 1000)


def format_ms(ms: int) -> str:
    """A positive millisecond count as a Prometheus duration (``899999`` -> ``14m59s999ms``)."""
    parts = []
    for unit, size in _UNITS_MS:  # h, m, s, ms: every Prometheus since 2.x parses the compound form
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def range_selector(sel: str, window: str) -> str:
    """``sel`` over the last ``window``, with the same samples on Prometheus 2.x and 3.x.

    Prometheus 2.x range selectors are closed (``[t - w, t]``); 3.x made them left-open
    (``(t - w, t]``). A sample exactly at the window's start (aligned scrapes, backfilled or
    ``promtool test`` data) was in the window on 2.x and is not on 3.x, which moved every count and
    delta by one scrape. The range is rendered 1 ms shorter than the window, ``[t - w + 1ms, t]``:
    left-open on both, for samples with millisecond timestamps (Prometheus' resolution). The numpy
    twin (:mod:`driftgate.fit.windows`) models exactly this range."""
    return f"{sel}[{format_ms(duration_ms(window) - 1)}]"
