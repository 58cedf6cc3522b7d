"""Duration grammars of the tools driftgate renders for, checked offline.

* Prometheus durations (rule ``for:``, range selectors, ``evaluation_interval``): ``1h30m``, units
  ``ms s m h d w y``, each unit at most once and in decreasing order (``model.ParseDuration``).
* Go ``time.ParseDuration`` (Argo Rollouts ``interval``, ``initialDelay``): units ``ns us µs ms s m h``,
  decimals allowed, **no** ``d``. Argo rejects ``1d`` only when the analysis runs, so lint it here.
"""

from __future__ import annotations

import re

_PROM_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0,
               "ms": 0.001}
_PROM_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_PROM_RE = re.compile(r"((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?", re.ASCII)

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)


def parse_prom_duration(text: str) -> float:
    """Seconds in a Prometheus duration; ``ValueError`` naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError("empty duration")
    if text == "0":
        return 0.0
    match = _PROM_RE.fullmatch(text)
    if not match:
        raise ValueError("use a number followed by a unit (ms, s, m, h, d, w, y), largest unit first, "
                         "e.g. 90s or 1h30m")
    total = 0.0
    for i, unit in enumerate(_PROM_ORDER):
        value = match.group(2 * i + 2)
        if value is not None:
            total += int(value) * _PROM_UNITS[unit]
    if total > 290 * 365 * 86400:
        raise ValueError("duration out of range")
    return total


def parse_go_duration(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string; ``ValueError`` naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError("empty duration")
    body = text
    sign = 1.0
    if body[0] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    pos = 0
    total = 0.0
    if not body:
        raise ValueError(f"invalid Go duration {text!r}")
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if not match:
            hint = " (Go durations have no 'd' unit; write 24h)" if "d" in body else ""
            raise ValueError(f"invalid Go duration {text!r}{hint}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if total > 9.2e9:
        raise ValueError(f"Go duration {text!r} overflows")
    return sign * total


def go_duration(seconds: int) -> str:
    """The canonical Go form of a whole number of seconds (``3600`` -> ``1h``, ``90`` -> ``1m30s``)."""
    if seconds < 0:
        raise ValueError("negative duration")
    if seconds == 0:
        return "0s"
    h, rest = divmod(seconds, 3600)
    mnt, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (mnt, "m"), (s, "s")) if v)


def prom_duration(seconds: int) -> str:
    """The shortest Prometheus form of a whole number of seconds (``86400`` -> ``1d``)."""
    if seconds < 0:
        raise ValueError("negative duration")
    if seconds == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_PROM_UNITS[unit])
        v, seconds = divmod(seconds, size)
        if v:
            out.append(f"{v}{unit}")
    return "".join(out)
