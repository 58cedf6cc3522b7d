"""PromQL text, built in Python so templates only lay it out.

Every name that reaches PromQL has passed a grammar in :mod:`gen.spec.names`; label *values* are
additionally escaped here (``\\`` and ``"``), so a value can never end the string and inject a
matcher. Numbers are written positionally with at most 6 significant digits (no exponent, which
keeps them readable and valid in both PromQL and Argo's expr-lang).
"""

from __future__ import annotations

from decimal import Decimal


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


def selector(name: str, matchers: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    inner = ",".join(f"{k}={quote(v)}" for k, v in matchers)
    return f"{name}{{{inner}}}"
