"""``driftgate review BASE``: what a pull request changes in enforcement, as a PR comment.

Both sides are rendered the same way (spec + baseline -> render context), BASE from ``git archive``
of its ``specs/`` and ``baselines/``, so a change is reported in the terms that are enforced:
automatic threshold, manual band, tier, implied false-rollback rate and detection delay. Changes
that *loosen* enforcement are flagged first and loudly: a higher automatic threshold (lower for
``direction: below``), a signal moved from automatic to manual, a signal, window, alert or model
removed, a no-data policy relaxed to ``pass``, a change of the series, matchers or direction a signal
watches, more ``min_events``, a smaller false-rollback budget. Every other change of a fit input
(quantile, ...) is listed too.

Every moved number says **why** it moved (the ``cause`` column), in this order:

* ``pinned in the spec``: a threshold the spec pins;
* ``spec: signals.X.key a → b``: a change of what the signal is fitted for;
* ``budget.auto a → b`` / ``budget.manual a → b``: the budget itself (the budget row says whether that
  loosens: a smaller budget allows fewer false rollbacks, so thresholds rise and shifts are caught later);
  the thresholds it moved are not flagged again;
* ``budget split: N → M configurations``: a signal or window added or removed re-divides the model's
  budget over its configurations, so every other threshold moves to keep the model's false-rollback
  rate the same; not a loosening of the model (the added or removed signal is its own row);
* ``refit noise``: a refit on new history moved the number inside the previous fit's 90% bootstrap
  band, which is how far it moves between equally good histories; not flagged unless
  ``strict=True`` (``driftgate review --strict``);
* ``refit``: new history moved it outside that band: flagged when it loosens.

A change of ``history.exclude`` (spans left out of the fit) changes the data, not the meaning: its moves
are judged as a refit's (noise inside the band, a flagged loosening outside it), with the exclusion named.

A change of a signal's ``compare_with`` changes the statistic itself: its thresholds are listed with that
cause, never judged by value, and the canary's alert delays for the reference shifts are compared instead
(flagged when a shift is caught later or not at all).

An added model gets its whole enforcement table (thresholds in their units, tiers, alert delays for the
reference shifts, provisional status), and every changed window its alert delays before and after.
"""

from __future__ import annotations

import functools
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftgate import pipeline
from driftgate.errors import DriftgateError, UsageError, visible
from driftgate.fit.inputs import fit_inputs
from driftgate.render.context import ModelContext, SignalRow, WindowRow, fit_input_changes
from driftgate.render.env import delay_list
from driftgate.render.promql import num
from driftgate.render.rules import DRIFT_ALERT


@dataclass(frozen=True)
class Change:
    model: str
    what: str
    before: str
    after: str
    loosens: bool
    cause: str = ""


def _git(root: Path, *args: str) -> bytes:
    try:
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout
    except FileNotFoundError:
        raise DriftgateError("git is not installed; review compares against a git ref") from None
    except subprocess.CalledProcessError as exc:
        detail = " ".join(exc.stderr.decode(errors="replace").split())[:300]
        command = next(a for a in args if not a.startswith("-"))
        raise DriftgateError(visible(f"git {command} failed: {detail}", ascii_only=True)) from None


def _base_contexts(root: Path, spec_dir: Path, base: str, tmp: Path) -> dict[str, ModelContext]:
    _git(root, "rev-parse", "--verify", f"{base}^{{commit}}")
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    try:
        rel_specs = spec_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"--specs {visible(str(spec_dir), ascii_only=True)}: review reads BASE's specs from the "
                         f"git repository of --root, so the spec directory must be inside --root "
                         f"({visible(str(root), ascii_only=True)})") from None
    # NUL-separated names and literal pathspecs: a file name with a space, a newline or a '*' is one path.
    listed = _git(root, "--literal-pathspecs", "ls-tree", "-r", "-z", "--name-only", base, "--",
                  f"{prefix}{rel_specs}", f"{prefix}baselines")
    names = [n for n in listed.decode("utf-8", "surrogateescape").split("\0") if n]
    if not names:
        return {}
    data = _git(root, "--literal-pathspecs", "archive", "--format=tar", base, "--", *names)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    base_root = tmp / prefix if prefix else tmp
    if not (base_root / rel_specs).is_dir():
        return {}
    return {c.spec.name: c for c in pipeline.contexts(base_root, base_root / rel_specs, any_fit_version=True)}


def _rate(w: WindowRow, days: float) -> float:
    """Implied false automatic rollbacks per quarter for one signal window (its budget share)."""
    return w.fit.auto.expected_alerts / max(days, 1e-9) * 90.0


def _looser(row: SignalRow, old: float, new: float) -> bool:
    return new > old if row.signal.direction.value == "above" else new < old


# Fit inputs reported by their own rows below (tier, windows), or the fitted numbers they move.
_OWN_ROW = (".tier", ".windows")


def _input_loosens(key: str, before: str, after: str) -> bool:
    """A change of what is watched (series, matchers, direction) can leave a model watching nothing or
    the wrong thing; more min_events decide later; a smaller budget raises the thresholds; a longer
    history minimum is not looser."""
    from driftgate.spec.load import parse_budget

    field = key.rsplit(".", 1)[-1]
    if field in {"metric", "numerator", "denominator", "matchers", "direction", "selector"}:
        return True
    if field == "min_events":
        try:
            return int(after) > int(before)
        except ValueError:
            return True
    if key in ("budget.auto", "budget.manual"):
        try:
            return parse_budget(after).rate_per_second < parse_budget(before).rate_per_second
        except ValueError:
            return True
    return False


# Fit inputs that change which history the numbers are fitted on, not what they mean: their moves are judged
# like a refit's (inside the previous band: noise; outside: a refit, flagged when it loosens). The input's
# own row ("spec history.exclude") is listed, never flagged: leaving an incident out is a review decision.
HISTORY_ONLY = frozenset({"history.exclude"})


@dataclass(frozen=True)
class _Causes:
    """What moved a model's fitted numbers between BASE and HEAD (see the module docstring)."""

    inputs: dict[str, tuple[str, str]]  # fit input key -> (before, after)
    split: str  # "" or "budget split: N → M configurations"
    history: str  # how the fitted history changed ("" when it did not)

    def of(self, sig: str, tier: str, wb: WindowRow, wa: WindowRow, old: float, new: float,
           band: tuple[float, float]) -> tuple[str, str]:
        """``(cause, kind)`` of a move of ``sig``'s ``tier`` number; kind: pinned, spec, budget, split,
        noise or refit."""
        if (wb.pinned_auto, wb.pinned_manual) != (wa.pinned_auto, wa.pinned_manual) or (
                wa.pinned_auto if tier == "auto" else wa.pinned_manual):
            return "pinned in the spec", "pinned"
        own = [k for k in self.inputs if k.startswith(f"signals.{sig}.") and not k.endswith(".tier")]
        if own:
            return "spec: " + "; ".join(f"{k} {self.inputs[k][0]} → {self.inputs[k][1]}" for k in own), "spec"
        budgets = [k for k in (f"budget.{tier}", "budget.auto", "budget.manual") if k in self.inputs]
        if budgets:
            k = budgets[0]
            return f"{k} {self.inputs[k][0]} → {self.inputs[k][1]}", "budget"
        general = [k for k in self.inputs if not k.startswith(("signals.", "budget.")) and k not in HISTORY_ONLY]
        if general:  # e.g. alerts.for: the whole model was fitted for something else
            return "spec: " + "; ".join(f"{k} {self.inputs[k][0]} → {self.inputs[k][1]}" for k in general), "spec"
        if self.split:
            return self.split, "split"
        # New history, or the same history with other spans excluded: the numbers mean the same, only the
        # data they were fitted on changed, so a move inside the previous band is noise like any refit's.
        data = [self.history] if self.history else []
        data += [f"{k} changed, see its row" for k in self.inputs if k in HISTORY_ONLY]
        lo, hi = band
        if lo <= new <= hi:
            why = f" ({'; '.join(data)})" if data and any(k in HISTORY_ONLY for k in self.inputs) else ""
            return f"refit noise{why}: inside the previous fit's 90% band {num(lo)}–{num(hi)}", "noise"
        where = f" ({'; '.join(data)})" if data else ""
        return f"refit{where}: outside the previous fit's 90% band {num(lo)}–{num(hi)}", "refit"


def _causes(b: ModelContext, a: ModelContext) -> _Causes:
    inputs = {k: (x, y) for k, x, y in fit_input_changes(fit_inputs(b.spec), fit_inputs(a.spec))}
    split = ""
    counts = ((b.baseline.auto_configurations, a.baseline.auto_configurations),
              (b.baseline.manual_configurations, a.baseline.manual_configurations))
    if any(x != y for x, y in counts):
        split = (f"budget split: {counts[0][0]} → {counts[0][1]} automatic, {counts[1][0]} → {counts[1][1]} "
                 f"manual configurations share the budgets")
    history = ""
    if (b.baseline.history_start, b.baseline.history_end) != (a.baseline.history_start, a.baseline.history_end):
        history = (f"history {b.baseline.history_start}..{b.baseline.history_end} → "
                   f"{a.baseline.history_start}..{a.baseline.history_end}")
    return _Causes(inputs, split, history)


def _input_changes(model: str, b: ModelContext, a: ModelContext, both: set[str]) -> list[Change]:
    """What the spec says the thresholds are fitted for (quantile, metric, selector, matchers, direction,
    budget, min_events, ...: :func:`driftgate.fit.inputs.fit_inputs`), BASE against HEAD: an enforcement
    change even when the refitted numbers happen to stay put."""
    out = []
    for key, before, after in fit_input_changes(fit_inputs(b.spec), fit_inputs(a.spec)):
        if key.endswith(_OWN_ROW) or (key.startswith("signals.") and key.split(".")[1] not in both):
            continue
        out.append(Change(model, f"spec {key}", before, after, _input_loosens(key, before, after), "spec change"))
    return out


def _shown(value: float, row: SignalRow, digits: int = 3) -> str:
    """A threshold as the plan's table writes it: the value in its unit, 3 significant figures (more when
    asked: a move the 3 figures would hide)."""
    from driftgate.render.env import human, unit

    return human(value, unit(row), digits)


def enforcement_table(ctx: ModelContext) -> list[str]:
    """The whole enforcement of one model, as Markdown rows: what a reviewer approves for an added model."""
    status = (f"**provisional** ({ctx.baseline.history_days:.1f} days of history, the spec asks for "
              f"{ctx.baseline.minimum_days:g}): every signal routes to manual rollback until a refit"
              if ctx.baseline.provisional else f"fitted on {ctx.baseline.history_days:.1f} days of history")
    lines = [f"#### {ctx.spec.name} (added): {status}; budgets {ctx.baseline.budget_auto} automatic, "
             f"{ctx.baseline.budget_manual} manual", "",
             "| signal | window | tier | automatic rollback | manual review | implied false rollbacks / quarter "
             "| alert delay (reference shifts) |", "|---|---|---|---|---|---|---|"]
    from driftgate.render.env import delay_list

    for row in ctx.rows:
        for w in row.windows:
            side = "above" if row.signal.direction.value == "above" else "below"
            auto = f"{side} {_shown(w.eff.auto, row)}" if row.tier == "auto" else \
                "never (provisional)" if row.signal.tier.value == "auto" else "never (manual tier)"
            rate, delays = f"{_rate(w, ctx.baseline.history_days):.3g}", delay_list(w.fit.detection) or "—"
            if row.tier != "auto":  # nothing rolls back automatically: the fitted numbers are not enforced yet
                later = row.signal.tier.value == "auto"  # (provisional: automatic after a refit on enough history)
                rate = f"0 (after a refit: {rate})" if later else "0"
                delays = f"none automatic; after a refit: {delays}" if later else "none automatic (manual tier)"
            cells = [row.signal.name, f"{w.which} {w.window}", row.tier, auto, f"{side} {_shown(w.eff.manual, row)}",
                     rate, delays]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _moved(model: str, causes: _Causes, strict: bool, what: str, old: float, new: float, tier: str,
           rb: WindowRow, ra: WindowRow, band: tuple[float, float], row: SignalRow, looser: bool) -> Change:
    """A moved threshold or band, with its cause; flagged when it loosens for a reason of its own (a pin,
    a spec change of the signal, new history outside the band; refit noise only when ``strict``)."""
    cause, kind = causes.of(row.signal.name, tier, rb, ra, old, new, band)
    flagged = looser and (kind in ("pinned", "spec", "refit") or (kind == "noise" and strict))
    before, after = _shown(old, row), _shown(new, row)
    digits = 3
    while before == after and digits < 6:  # a move that 3 figures hide: as many as it takes to see it
        digits += 1
        before, after = _shown(old, row, digits), _shown(new, row, digits)
    return Change(model, what, before, after, flagged, cause)


def compare(before: dict[str, ModelContext], after: dict[str, ModelContext], strict: bool = False) -> list[Change]:
    """Every enforcement change, each with its cause; ``strict``: a move inside the previous bootstrap
    band (refit noise) is flagged as loosening like any other."""
    out: list[Change] = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if a is None:
            out.append(Change(name, "model", "enforced", "removed", True))
            continue
        if b is None:
            out.append(Change(name, "model", "—", "added", False, "new spec (its enforcement table below)"))
            continue
        moved = functools.partial(_moved, name, _causes(b, a), strict)

        rows_b = {r.signal.name: r for r in b.rows}
        rows_a = {r.signal.name: r for r in a.rows}
        out.extend(_input_changes(name, b, a, set(rows_b) & set(rows_a)))
        for sig in sorted(set(rows_b) | set(rows_a)):
            rb, ra = rows_b.get(sig), rows_a.get(sig)
            if ra is None:
                out.append(Change(name, f"signal {sig}", "enforced", "removed", True, "removed from the spec"))
                continue
            if rb is None:
                out.append(Change(name, f"signal {sig}", "—", f"added ({ra.tier})", False, "added to the spec"))
                continue
            if rb.tier != ra.tier:
                out.append(Change(name, f"{sig}: tier", rb.tier, ra.tier, rb.tier == "auto"))
            if rb.signal.no_data != ra.signal.no_data:
                out.append(Change(name, f"{sig}: no_data", rb.signal.no_data.value, ra.signal.no_data.value,
                                  ra.signal.no_data.value == "pass"))
            wins_b = {w.which: w for w in rb.windows}
            for wa in ra.windows:
                wb = wins_b.get(wa.which)
                if wb is None:
                    continue
                label = f"{sig} ({wa.which} {wa.window})"
                if wb.window != wa.window:
                    out.append(Change(name, f"{sig}: {wa.which} window", wb.window, wa.window, False))
                if rb.signal.compare_with != ra.signal.compare_with:
                    # Another statistic (against the fitted baseline, last week or the stable version): its
                    # numbers are not comparable with the old ones, what a canary is caught by is.
                    out.extend(_compared_anew(name, label, rb, ra, wb, wa))
                    continue
                if num(wb.eff.auto) != num(wa.eff.auto):
                    out.append(moved(f"{label}: automatic threshold", wb.eff.auto, wa.eff.auto, "auto", wb, wa,
                                     (wb.fit.auto.band_low, wb.fit.auto.band_high), ra,
                                     ra.tier == "auto" and _looser(ra, wb.eff.auto, wa.eff.auto)))
                if num(wb.eff.manual) != num(wa.eff.manual):
                    out.append(moved(f"{label}: manual band", wb.eff.manual, wa.eff.manual, "manual", wb, wa,
                                     (wb.fit.manual.band_low, wb.fit.manual.band_high), ra,
                                     _looser(ra, wb.eff.manual, wa.eff.manual)))
                rate_b, rate_a = _rate(wb, b.baseline.history_days), _rate(wa, a.baseline.history_days)
                if f"{rate_b:.3g}" != f"{rate_a:.3g}":
                    out.append(Change(name, f"{label}: implied false rollbacks per quarter", f"{rate_b:.3g}",
                                      f"{rate_a:.3g}", False, "the backtest at the new thresholds"))
                delays_b, delays_a = delay_list(wb.fit.detection), delay_list(wa.fit.detection)
                if delays_b != delays_a:
                    out.append(Change(name, f"{label}: alert delays", delays_b or "—", delays_a or "—", False,
                                      "the reference shifts at the new thresholds"))
        alerts_b = {(r.alert, dict(r.labels).get("signal"), dict(r.labels).get("window"))
                    for g in b.groups for r in g.rules if r.alert}
        alerts_a = {(r.alert, dict(r.labels).get("signal"), dict(r.labels).get("window"))
                    for g in a.groups for r in g.rules if r.alert}
        causes = _causes(b, a)
        for alert, signal_name, window in sorted(alerts_b - alerts_a, key=str):
            own = [k for k in causes.inputs if signal_name and k.startswith(f"signals.{signal_name}.")]
            own += [k for k in causes.inputs if k == "analysis.dry_run"]
            why = "spec: " + "; ".join(f"{k} {causes.inputs[k][0]} → {causes.inputs[k][1]}" for k in own) if own else ""
            if alert == DRIFT_ALERT and any(k.endswith(".compare_with") for k in own):
                why += (" (against the stable version an established version has nothing to be compared with: "
                        "drift without a release is no longer alerted for this signal)")
            out.append(Change(name, f"alert {alert} ({signal_name or '-'}, {window or '-'})", "present", "removed",
                              True, why))
    return out


def _compared_anew(model: str, label: str, rb: SignalRow, ra: SignalRow, wb: WindowRow,
                   wa: WindowRow) -> list[Change]:
    """A window whose signal compares with something else now (``compare_with``): its thresholds are on another
    statistic, shown for the record and never judged by value; the canary's alert delays for the reference
    shifts are what a reviewer compares, flagged when a shift is caught later or no longer caught."""
    why = (f"spec: signals.{ra.signal.name}.compare_with {rb.signal.compare_with} → {ra.signal.compare_with}: "
           f"another statistic, not comparable by value (see the canary's alert delays)")
    out = [Change(model, f"{label}: automatic threshold", _shown(wb.eff.auto, rb), _shown(wa.eff.auto, ra), False,
                  why),
           Change(model, f"{label}: manual band", _shown(wb.eff.manual, rb), _shown(wa.eff.manual, ra), False, why)]
    before = {d.shift: d.delay_minutes for d in wb.fit.canary_detection}
    after = {d.shift: d.delay_minutes for d in wa.fit.canary_detection}
    worse = []
    for k, m in before.items():
        later = after.get(k, m)
        if m is not None and k in after and (later is None or later > m):
            worse.append(k)
    shown_b, shown_a = delay_list(wb.fit.canary_detection), delay_list(wa.fit.canary_detection)
    if shown_b != shown_a or worse:
        cause = ("a canary at analysis.canary_weight: " + ("caught later or not at all: " + ", ".join(worse)
                                                           if worse else "caught as early or earlier"))
        out.append(Change(model, f"{label}: canary alert delays", shown_b or "—", shown_a or "—", bool(worse), cause))
    return out


def markdown(changes: list[Change], base: str, added: list[ModelContext] | None = None) -> str:
    loose = [c for c in changes if c.loosens]
    lines = [f"## driftgate review against `{base}`", ""]
    if not changes:
        lines.append("No change to rollback enforcement.")
        return "\n".join(lines) + "\n"
    if loose:
        lines += ["> [!WARNING]", f"> **{len(loose)} change(s) LOOSEN enforcement**: a bad release is caught later "
                  f"or not at all. The rollback authority should approve them explicitly.", ""]
    else:
        lines += ["No change loosens enforcement.", ""]
    noise = [c for c in changes if c.cause.startswith("refit noise")]
    if noise:
        # With --strict the loosening ones among them are flagged (compare(strict=True)); say which it is.
        verdict = (f"{sum(c.loosens for c in noise)} of them loosen and are flagged (`--strict`)"
                   if any(c.loosens for c in noise) else "not flagged (`--strict` flags those that loosen)")
        lines += [f"{len(noise)} number(s) moved by refit noise only (inside the previous fit's 90% bootstrap band: "
                  f"how far a refit moves them between equally good histories); {verdict}.", ""]
    lines += ["| model | what | before | after | cause | |", "|---|---|---|---|---|---|"]
    for c in sorted(changes, key=lambda c: (not c.loosens, c.model, c.what)):
        flag = "**LOOSENS**" if c.loosens else ""
        cells = [c.model, c.what, c.before, c.after, c.cause, flag]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    for ctx in added or []:
        lines += ["", *enforcement_table(ctx)]
    return "\n".join(lines) + "\n"


def review(root: Path, spec_dir: Path, base: str, strict: bool = False) -> tuple[str, list[Change]]:
    with tempfile.TemporaryDirectory(prefix="driftgate-review-") as tmp:
        before = _base_contexts(root, spec_dir, base, Path(tmp))
        after = {c.spec.name: c for c in pipeline.contexts(root, spec_dir)}
        changes = compare(before, after, strict=strict)
    added = [after[name] for name in sorted(set(after) - set(before))]
    return markdown(changes, base, added), changes
