"""One picture per signal, next to the plan: is the threshold where normal ends?

Top: the history of the decision statistic (hourly extremes, from the fit's evidence file) for
the fast and the slow window, with the manual band and the automatic threshold drawn and the hours
that would have fired marked. Bottom (drift signals): the baseline distribution against the most
recent slow window.

**Pictures are compared by what they are drawn from, not by their pixels.** Two matplotlib
releases draw the same figure with slightly different bytes (anti-aliasing, font hinting), so a
byte comparison made ``driftgate check`` red on every clone whose pip resolved another matplotlib.
Each picture therefore carries, in PNG ``tEXt`` chunks:

* ``driftgate-inputs``: the SHA-256 of everything drawn (the numbers, labels and titles extracted by
  :func:`figure_data`, as canonical JSON) and of this module's source (a change to how pictures
  are drawn redraws them all);
* ``driftgate-pixels``: the SHA-256 of the image data (the ``IDAT`` chunks), so a picture edited by
  hand is still caught.

Render reuses the committed file when both match (no drawing, no matplotlib needed) and draws a
new one otherwise; ``check`` never draws: a picture whose inputs changed is reported stale. Only
drawing needs matplotlib (``pip install 'driftgate[plots]'``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from driftgate.errors import RenderError
from driftgate.fit.evidence import HOUR, Evidence, SignalEvidence
from driftgate.render.context import ModelContext, SignalRow
from driftgate.render.env import HEADER_MARK

STYLE = {"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "figure.dpi": 80,
         "savefig.dpi": 80, "path.simplify": False, "svg.hashsalt": "driftgate"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INPUTS_KEY = "driftgate-inputs"
PIXELS_KEY = "driftgate-pixels"
_MAX_PICTURE_BYTES = 16 * 1024 * 1024
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def picture_path(model: str, signal: str) -> str:
    return f"generated/plans/{model}/{signal}.png"


@dataclass(frozen=True)
class Picture:
    """A picture to be drawn: its key (what it shows) and how to draw it (only when needed)."""

    key: str
    data: Mapping[str, Any]

    def draw(self) -> bytes:
        return _draw(self.data, self.key)


# ------------------------------------------------------------------------------------ what is drawn


def _window_data(row: SignalRow, ev: SignalEvidence, which: str, end: float) -> dict[str, Any]:
    w = next(x for x in row.windows if x.which == which)
    trace = ev.window(which)
    return {
        "title": f"{row.signal.name}: {row.signal.statistic.value} over {w.window} ({which} window, tier {row.tier})",
        "start_days": (trace.start - end) / 86400.0,
        "step_days": HOUR / 86400.0,
        "values": [None if v is None else float(v) for v in trace.values],
        "manual": float(w.eff.manual),
        "auto": float(w.eff.auto) if row.tier == "auto" else None,
        "below": row.signal.direction.value == "below",
    }


def figure_data(ctx: ModelContext, row: SignalRow, ev: SignalEvidence) -> dict[str, Any]:
    """Everything one picture shows, as plain JSON-able values (the key is computed from this)."""
    end = float(np.datetime64(ctx.baseline.history_end.rstrip("Z"), "s").astype(np.int64))
    data: dict[str, Any] = {
        "marker": f"{HEADER_MARK} from {ctx.spec.spec_path} and baselines/{ctx.spec.name}.evidence.json",
        "fast": _window_data(row, ev, "fast", end),
        "slow": _window_data(row, ev, "slow", end),
        "distribution": None,
    }
    if ev.recent_bins:
        data["distribution"] = {
            "baseline": [float(p) for p in row.fit.probabilities],
            "recent": [float(c) for c in ev.recent_bins],
            "les": list(row.fit.les),
            "recent_label": f"last {row.signal.windows.slow.text} of history",
        }
    return data


def picture_key(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(f"{_CODE_DIGEST}\n{canonical}".encode()).hexdigest()


def render_pictures(ctx: ModelContext, evidence: Evidence | None) -> dict[str, Picture]:
    """The pictures of a model's plan, not drawn yet (see :func:`resolve`)."""
    if evidence is None:
        return {}
    out: dict[str, Picture] = {}
    for row in ctx.rows:
        ev = evidence.signals.get(row.signal.name)
        if ev is None:
            continue
        data = figure_data(ctx, row, ev)
        out[picture_path(ctx.spec.name, row.signal.name)] = Picture(picture_key(data), data)
    return out


# ------------------------------------------------------------------------------------------ drawing


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise RenderError("drawing the plan's pictures needs matplotlib, which is not installed: "
                          "pip install 'driftgate[plots]'",
                          hint="pictures whose inputs did not change are reused without it") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _history(ax: Any, d: Mapping[str, Any]) -> None:
    values = np.array([np.nan if v is None else v for v in d["values"]], dtype=float)
    days = d["start_days"] + d["step_days"] * np.arange(values.size)
    ax.plot(days, values, color="#4a6fa5", linewidth=0.7, label="decision statistic (hourly extreme)")
    ax.axhline(d["manual"], color="#e0a100", linewidth=1.0, linestyle="--", label=f"manual {d['manual']:.4g}")
    if d["auto"] is not None:
        ax.axhline(d["auto"], color="#c0392b", linewidth=1.2, label=f"automatic {d['auto']:.4g}")
        hot = values < d["auto"] if d["below"] else values > d["auto"]
        hot &= np.isfinite(values)
        if hot.any():
            ax.plot(days[hot], values[hot], "o", color="#c0392b", markersize=3, label="would have fired")
    ax.set_title(d["title"])
    ax.set_xlabel("days before the end of the fitted history")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.grid(True, linewidth=0.3, color="#dddddd")


def _distribution(ax: Any, d: Mapping[str, Any]) -> None:
    q = np.array(d["baseline"])
    recent = np.array(d["recent"]) + 0.5
    recent = recent / recent.sum()
    x = np.arange(q.size)
    ax.bar(x - 0.2, q, width=0.4, color="#95a5a6", label="baseline")
    ax.bar(x + 0.2, recent, width=0.4, color="#4a6fa5", label=d["recent_label"])
    ax.set_xticks(x, [f"≤{le}" for le in d["les"]], rotation=45)
    ax.set_ylabel("share of events")
    ax.set_title("baseline distribution vs the most recent window")
    ax.legend(loc="upper right", fontsize=7, frameon=False)


def _draw(data: Mapping[str, Any], key: str) -> bytes:
    plt = _pyplot()
    drift = data["distribution"] is not None
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(3 if drift else 2, 1, figsize=(8, 7.5 if drift else 5))
        _history(axes[0], data["fast"])
        _history(axes[1], data["slow"])
        if drift:
            _distribution(axes[2], data["distribution"])
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png",
                    metadata={"Software": None, "Description": data["marker"], INPUTS_KEY: key})
        plt.close(fig)
    return with_pixel_digest(buf.getvalue())


# -------------------------------------------------------------------------------------- PNG chunks


def chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``(type, data)`` of each chunk; raises ValueError on a truncated file or a bad CRC."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        if pos + 8 > len(png):
            raise ValueError("truncated chunk header")
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        end = pos + 8 + length
        if end + 4 > len(png):
            raise ValueError("truncated chunk")
        body = png[pos + 8:end]
        (crc,) = struct.unpack(">I", png[end:end + 4])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        yield kind, body
        pos = end + 4
        if kind == b"IEND":
            return
    raise ValueError("no IEND chunk")


def _pixel_digest(png: bytes) -> str:
    return hashlib.sha256(b"".join(body for kind, body in chunks(png) if kind == b"IDAT")).hexdigest()


def with_pixel_digest(png: bytes) -> bytes:
    """``png`` with a ``tEXt`` chunk holding the digest of its image data, inserted before ``IEND``."""
    body = PIXELS_KEY.encode("latin-1") + b"\0" + _pixel_digest(png).encode("ascii")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


def text_chunks(png: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for kind, body in chunks(png):
        if kind == b"tEXt" and b"\0" in body:
            name, _, value = body.partition(b"\0")
            found[name.decode("latin-1")] = value.decode("latin-1")
    return found


def matches(png: bytes, key: str) -> bool:
    """Whether ``png`` is a picture driftgate drew from inputs with ``key``, pixels untouched."""
    try:
        text = text_chunks(png)
        return text.get(INPUTS_KEY) == key and text.get(PIXELS_KEY) == _pixel_digest(png)
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------- resolving


def _read_existing(path: Path) -> bytes | None:
    """The bytes of a regular file at ``path`` (never following a symlink, never blocking on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_PICTURE_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(_MAX_PICTURE_BYTES + 1)
    finally:
        os.close(fd)


def resolve(root: Path | None, files: Mapping[str, Any], draw: bool = True,
            read: Callable[[Path], bytes | None] = _read_existing) -> tuple[dict[str, Any], list[str]]:
    """Turn every :class:`Picture` in ``files`` into bytes.

    A picture whose file under ``root`` already shows the same inputs keeps that file's bytes; the
    others are drawn (``draw``) or, for ``check`` (``draw=False``), left out and returned as the
    second value (their files are stale or missing)."""
    out: dict[str, Any] = {}
    undrawn: list[str] = []
    for rel, content in files.items():
        if not isinstance(content, Picture):
            out[rel] = content
            continue
        existing = read(root / rel) if root is not None else None
        if existing is not None and matches(existing, content.key):
            out[rel] = existing
        elif draw:
            out[rel] = content.draw()
        else:
            undrawn.append(rel)
    return out, undrawn
