"""How a plan's picture is drawn (matplotlib, imported only here and only when a picture is drawn).

The SHA-256 of this file is part of every picture's key (:mod:`driftgate.render.plots`): editing it
redraws every picture, editing anything else does not.

Layout: fixed margins for the fixed figure size (``tight_layout`` measured every tick label again and
took ~40% of a picture's time); legends sit outside the data, under each panel's title.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from driftgate.errors import RenderError
from driftgate.render.env import human

STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "figure.dpi": 90,
         "savefig.dpi": 90, "path.simplify": False, "svg.hashsalt": "driftgate"}
_BLUE, _AMBER, _RED, _GREY = "#4a6fa5", "#d08c00", "#c0392b", "#95a5a6"


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise RenderError("drawing the plan's pictures needs matplotlib, which is not installed: "
                          "pip install 'driftgate[plots]'",
                          hint="pictures whose inputs did not change are reused without it") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ms(seconds: Any) -> Any:
    return (np.asarray(seconds, dtype=float) * 1000).astype("int64").astype("datetime64[ms]")


def _history(ax: Any, d: Mapping[str, Any], excluded: list[list[Any]], versions: list[list[Any]]) -> None:
    from matplotlib import dates, ticker

    for i, (start, version) in enumerate(versions):  # where each new version first served
        ax.axvline(_ms(start), color="#7d3c98", linewidth=0.9, linestyle=":", zorder=1,
                   label="new version (version label)" if i == 0 else None)
        ax.annotate(str(version)[:16], (_ms(start), 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                    textcoords="offset points", fontsize=7, color="#7d3c98")

    for i, (start, end, _reason) in enumerate(excluded):  # the spans the fit left out, under the data
        ax.axvspan(_ms(start), _ms(end), facecolor="#bbbbbb", edgecolor="#777777", alpha=0.5, linewidth=0.8,
                   zorder=0, label="excluded (history.exclude)" if i == 0 else None)  # (the edge: a short span)

    values = np.array([np.nan if v is None else v for v in d["values"]], dtype=float)
    seconds = d["start"] + d["step"] * np.arange(values.size)
    when = _ms(seconds)
    u = d["unit"]
    sign = -1.0 if d["below"] else 1.0
    if "statistic" in d:  # the statistic itself, against its threshold at each hour's traffic
        stat = np.array([np.nan if v is None else v for v in d["statistic"]], dtype=float)
        n = np.array([np.nan if v is None else v for v in d["events"]], dtype=float)
        b, k = d["noise"]
        coefficient = {"auto": b, "manual": d.get("manual_noise", b)}  # each tier's own noise term

        def term(coef: float) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                out: np.ndarray = np.where(n > 0, coef / n**k, np.nan) if coef else np.zeros(n.size)
            return out

        ax.plot(when, stat, color=_BLUE, linewidth=0.7, label="statistic (hourly)")
        curves = [("manual", _AMBER, "--", 1.0, "manual band")]
        if d["auto"] is not None:
            curves.append(("auto", _RED, "-", 1.2, "automatic threshold"))
        for key, color, style, width, name in curves:
            line = d[key] + sign * term(coefficient[key])
            at_median = float(np.nanmedian(line)) if np.isfinite(line).any() else d[key]
            ax.plot(when, line, color=color, linewidth=width, linestyle=style, drawstyle="steps-mid",
                    label=f"{name} (median {human(at_median, u)})")
        shown = stat
    else:  # an evidence file without the statistic: the decision statistic against the fitted levels
        ax.plot(when, values, color=_BLUE, linewidth=0.7, label="decision statistic (hourly extreme)")
        ax.axhline(d["manual"], color=_AMBER, linewidth=1.0, linestyle="--",
                   label=f"manual band {human(d['manual'], u)}")
        if d["auto"] is not None:
            ax.axhline(d["auto"], color=_RED, linewidth=1.2, label=f"automatic threshold {human(d['auto'], u)}")
        shown = values
    if d["auto"] is not None:
        hot = values < d["auto"] if d["below"] else values > d["auto"]  # the decision, exactly as fitted
        hot &= np.isfinite(values) & np.isfinite(shown)
        if hot.any():
            ax.plot(when[hot], shown[hot], "o", color=_RED, markersize=3, label="would have fired")
    ax.set_title(d["title"], loc="left", pad=18)
    ax.xaxis.set_major_locator(dates.DayLocator(interval=max(1, round(values.size / 24 / 10))))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(dates.DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
    ax.set_xlabel("date (UTC) of the fitted history" + ("; the thresholds follow each hour's traffic (noise term)"
                                                          if "statistic" in d and d["noise"][0] else ""))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: human(y, u)))
    if u:
        what = "latency" if u == "seconds" else "share of events"
        # compare_with: stable, a ratio or quantile: the canary's value minus the stable version's.
        ax.set_ylabel(f"{what}, canary − stable" if d.get("difference") else what)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize=8, frameon=False,
              borderaxespad=0.2, handlelength=1.8)
    ax.grid(True, linewidth=0.3, color="#dddddd")


def _distribution(ax: Any, d: Mapping[str, Any]) -> None:
    q = np.array(d["baseline"])
    recent = np.array(d["recent"]) + 0.5
    recent = recent / recent.sum()
    x = np.arange(q.size)
    ax.bar(x - 0.2, q, width=0.4, color=_GREY, label="baseline")
    ax.bar(x + 0.2, recent, width=0.4, color=_BLUE, label=d["recent_label"])
    ax.set_xticks(x, [f"≤{le}" for le in d["les"]], rotation=45)
    ax.set_ylabel("share of events")
    ax.set_title("baseline distribution vs the most recent window", loc="left", pad=18)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False, borderaxespad=0.2)


def draw(data: Mapping[str, Any], key: str, key_name: str) -> bytes:
    """The PNG of one picture (without the pixel digest), with ``key`` in its ``key_name`` text chunk."""
    plt = pyplot()
    drift = data["distribution"] is not None
    panels = 3 if drift else 2
    height = 2.8 * panels
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(panels, 1, figsize=(9, height))
        # Fixed margins (inches converted to figure fractions): room for each panel's title and legend
        # above it and the tick labels below it.
        fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.75 / height, bottom=(0.95 if drift else 0.55) / height,
                            hspace=0.7)
        _history(axes[0], data["fast"], data.get("excluded", []), data.get("versions", []))
        _history(axes[1], data["slow"], data.get("excluded", []), data.get("versions", []))
        if drift:
            _distribution(axes[2], data["distribution"])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None, "Description": data["marker"], key_name: key})
        plt.close(fig)
    return buf.getvalue()
