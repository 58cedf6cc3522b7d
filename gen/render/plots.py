"""One picture per signal, next to the plan: is the threshold where normal ends?

Top: the history of the decision statistic (hourly extremes, from the fit's evidence file) for
the fast and the slow window, with the manual band and the automatic threshold drawn and the hours
that would have fired marked. Bottom (drift signals): the baseline distribution against the most
recent slow window. Bytes are deterministic: the Agg backend, fixed size and fonts, and PNG
metadata reduced to driftgate's marker (no software version, no timestamp).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from gen.fit.evidence import HOUR, Evidence, SignalEvidence
from gen.render.context import ModelContext, SignalRow
from gen.render.env import HEADER_MARK

STYLE = {"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "figure.dpi": 80,
         "savefig.dpi": 80, "path.simplify": False, "svg.hashsalt": "driftgate"}


def picture_path(model: str, signal: str) -> str:
    return f"generated/plans/{model}/{signal}.png"


def _history(ax: Axes, row: SignalRow, ev: SignalEvidence, which: str, end: float) -> None:
    w = next(x for x in row.windows if x.which == which)
    trace = ev.window(which)
    values = np.array([np.nan if v is None else v for v in trace.values], dtype=float)
    days = (trace.start + HOUR * np.arange(values.size) - end) / 86400.0
    ax.plot(days, values, color="#4a6fa5", linewidth=0.7, label="decision statistic (hourly extreme)")
    below = row.signal.direction.value == "below"
    ax.axhline(w.eff.manual, color="#e0a100", linewidth=1.0, linestyle="--", label=f"manual {w.eff.manual:.4g}")
    if row.tier == "auto":
        ax.axhline(w.eff.auto, color="#c0392b", linewidth=1.2, label=f"automatic {w.eff.auto:.4g}")
        hot = values < w.eff.auto if below else values > w.eff.auto
        hot &= np.isfinite(values)
        if hot.any():
            ax.plot(days[hot], values[hot], "o", color="#c0392b", markersize=3, label="would have fired")
    ax.set_title(f"{row.signal.name}: {row.signal.statistic.value} over {w.window} ({which} window, tier {row.tier})")
    ax.set_xlabel("days before the end of the fitted history")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.grid(True, linewidth=0.3, color="#dddddd")


def _distribution(ax: Axes, row: SignalRow, ev: SignalEvidence) -> None:
    q = np.array(row.fit.probabilities)
    recent = np.array(ev.recent_bins) + 0.5
    recent = recent / recent.sum()
    x = np.arange(q.size)
    ax.bar(x - 0.2, q, width=0.4, color="#95a5a6", label="baseline")
    ax.bar(x + 0.2, recent, width=0.4, color="#4a6fa5", label=f"last {row.signal.windows.slow.text} of history")
    ax.set_xticks(x, [f"≤{le}" for le in row.fit.les], rotation=45)
    ax.set_ylabel("share of events")
    ax.set_title("baseline distribution vs the most recent window")
    ax.legend(loc="upper right", fontsize=7, frameon=False)


def render_pictures(ctx: ModelContext, evidence: Evidence | None) -> dict[str, bytes]:
    if evidence is None:
        return {}
    end = float(np.datetime64(ctx.baseline.history_end.rstrip("Z"), "s").astype(np.int64))
    out: dict[str, bytes] = {}
    for row in ctx.rows:
        ev = evidence.signals.get(row.signal.name)
        if ev is None:
            continue
        drift = bool(ev.recent_bins)
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(3 if drift else 2, 1, figsize=(8, 7.5 if drift else 5))
            _history(axes[0], row, ev, "fast", end)
            _history(axes[1], row, ev, "slow", end)
            if drift:
                _distribution(axes[2], row, ev)
            fig.tight_layout()
            buf = io.BytesIO()
            marker = f"{HEADER_MARK} from {ctx.spec.spec_path} and baselines/{ctx.spec.name}.evidence.json"
            fig.savefig(buf, format="png", metadata={"Software": None, "Description": marker})
            plt.close(fig)
        out[picture_path(ctx.spec.name, row.signal.name)] = buf.getvalue()
    return out
