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
  :func:`figure_data`, as canonical JSON) and of the drawing code's source
  (:mod:`driftgate.render.drawing`: a change to how pictures are drawn redraws them all);
* ``driftgate-pixels``: the SHA-256 of the image data (the ``IDAT`` chunks), so a picture edited by
  hand is still caught.

Render reuses the committed file when both match (no drawing, no matplotlib needed) and draws a
new one otherwise; ``check`` never draws: a picture whose inputs changed is reported stale. Only
drawing needs matplotlib (``pip install 'driftgate[plots]'``).
"""

from __future__ import annotations

import hashlib
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

from driftgate.fit.evidence import HOUR, Evidence, ExcludedEvidence, SignalEvidence, VersionEvidence
from driftgate.render.context import ModelContext, SignalRow
from driftgate.render.env import HEADER_MARK, unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INPUTS_KEY = "driftgate-inputs"
PIXELS_KEY = "driftgate-pixels"
_MAX_PICTURE_BYTES = 16 * 1024 * 1024
# The pictures' key covers the code that draws them (drawing.py, not this module: a change to how
# pictures are keyed, read or checked does not redraw every committed picture).
_CODE_DIGEST = hashlib.sha256((Path(__file__).parent / "drawing.py").read_bytes()).hexdigest()


def picture_path(model: str, signal: str) -> str:
    return f"generated/plans/{model}/{signal}.png"


@dataclass(frozen=True)
class Picture:
    """A picture to be drawn: its key (what it shows) and how to draw it (only when needed)."""

    key: str
    data: Mapping[str, Any]

    def draw(self) -> bytes:
        from driftgate.render.drawing import draw

        return with_pixel_digest(draw(self.data, self.key, INPUTS_KEY))


# ------------------------------------------------------------------------------------ what is drawn


def _window_data(row: SignalRow, ev: SignalEvidence, which: str, end: float) -> dict[str, Any]:
    w = next(x for x in row.windows if x.which == which)
    trace = ev.window(which)
    stable = row.signal.compare_with == "stable"
    difference = stable and row.signal.kind.value != "distribution_drift"
    against = " of a simulated canary minus the stable version's" if difference else \
        " of a simulated canary against stable" if stable else ""
    return {
        "title": f"{row.signal.name}: {row.signal.statistic.value}{against} over {w.window} ({which} window, "
                 f"tier {row.tier})",
        **({"difference": True} if difference else {}),
        "start": trace.start,  # UTC seconds of the first hour
        "step": HOUR,
        "end": end,
        "unit": unit(row),
        "values": [None if v is None else float(v) for v in trace.values],
        "manual": float(w.eff.manual),
        "auto": float(w.eff.auto) if row.tier == "auto" else None,
        "below": row.signal.direction.value == "below",
        # The statistic itself and the window's events at each hour's most extreme evaluation, with the noise
        # term b·n^-k: the picture draws the statistic against its threshold at that traffic (absent in an
        # evidence file written before they were kept: the decision statistic is drawn instead).
        **({"statistic": [None if v is None else float(v) for v in trace.statistic],
            "events": [None if v is None else float(v) for v in trace.events],
            "noise": [float(w.fit.noise_coefficient), float(w.fit.noise_power)],
            "manual_noise": float(w.fit.noise_of("manual"))} if trace.statistic else {}),
    }


def _seconds(rfc3339: str) -> float:
    return float(np.datetime64(rfc3339.rstrip("Z"), "s").astype(np.int64))


def figure_data(ctx: ModelContext, row: SignalRow, ev: SignalEvidence, excluded: tuple[ExcludedEvidence, ...] = (),
                versions: tuple[VersionEvidence, ...] = ()) -> dict[str, Any]:
    """Everything one picture shows, as plain JSON-able values (the key is computed from this)."""
    end = _seconds(ctx.baseline.history_end)
    data: dict[str, Any] = {
        "marker": f"{HEADER_MARK} from {ctx.spec.spec_path} and baselines/{ctx.spec.name}.evidence.json",
        "fast": _window_data(row, ev, "fast", end),
        "slow": _window_data(row, ev, "slow", end),
        "distribution": None,
    }
    if excluded:  # history.exclude: the spans the fit left out, shaded (only when there are any)
        data["excluded"] = [[_seconds(x.start), _seconds(x.end), x.reason] for x in excluded]
    if versions:  # the version label's values: a line where each new one first served (only when several)
        data["versions"] = [[_seconds(x.start), x.version] for x in versions[1:]]
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
        data = figure_data(ctx, row, ev, evidence.excluded, evidence.versions)
        out[picture_path(ctx.spec.name, row.signal.name)] = Picture(picture_key(data), data)
    return out


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
    to_draw: dict[str, Picture] = {}
    for rel, content in files.items():
        if not isinstance(content, Picture):
            out[rel] = content
            continue
        existing = read(root / rel) if root is not None else None
        if existing is not None and matches(existing, content.key):
            out[rel] = existing
        elif draw:
            to_draw[rel] = content
            out[rel] = None  # (drawn below: the order of ``files`` is kept)
        else:
            undrawn.append(rel)
    for rel, png in zip(to_draw, _draw_all(list(to_draw.values())), strict=True):
        out[rel] = png
    return out, undrawn


def _draw_one(picture: Picture) -> bytes:
    return picture.draw()


def _draw_all(pictures: list[Picture]) -> list[bytes]:
    """Each picture drawn; a few at once on every core when this is the main process (one model's
    pictures after an edit: a fleet render already renders its models on every core)."""
    import multiprocessing

    from driftgate.render import incremental

    if len(pictures) < 2 or multiprocessing.parent_process() is not None:
        return [p.draw() for p in pictures]
    from driftgate.render.drawing import pyplot

    pyplot()  # imported once here, before the workers fork
    return incremental.parallel_map(_draw_one, pictures, least=2)
