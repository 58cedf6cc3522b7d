"""``driftgate review BASE``: what a pull request changes in enforcement, as a PR comment.

Both sides are rendered the same way (spec + baseline -> render context), BASE from ``git archive``
of its ``specs/`` and ``baselines/``, so a change is reported in the terms that are enforced:
automatic threshold, manual band, tier, implied false-rollback rate and detection delay. Changes
that *loosen* enforcement are flagged first and loudly: a higher automatic threshold (lower for
``direction: below``), a signal moved from automatic to manual, a signal, window, alert or model
removed, a no-data policy relaxed to ``pass``, a change of the series, matchers or direction a signal
watches, more ``min_events``. Every other change of a fit input (quantile, budget, ...) is listed too.
"""

from __future__ import annotations

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
from driftgate.render.promql import num


@dataclass(frozen=True)
class Change:
    model: str
    what: str
    before: str
    after: str
    loosens: bool


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


def _delay(w: WindowRow) -> str:
    det = list(w.fit.detection)
    if not det:
        return "—"
    d = det[1] if len(det) > 1 else det[-1]
    return f"{'never' if d.delay_minutes is None else f'{d.delay_minutes:.0f} min'} ({d.shift})"


def _looser(row: SignalRow, old: float, new: float) -> bool:
    return new > old if row.signal.direction.value == "above" else new < old


# Fit inputs reported by their own rows below (tier, windows), or the fitted numbers they move.
_OWN_ROW = (".tier", ".windows")


def _input_loosens(key: str, before: str, after: str) -> bool:
    """A change of what is watched (series, matchers, direction) can leave a model watching nothing or
    the wrong thing; more min_events decide later; a longer history minimum is not looser."""
    field = key.rsplit(".", 1)[-1]
    if field in {"metric", "numerator", "denominator", "matchers", "direction", "selector"}:
        return True
    if field == "min_events":
        try:
            return int(after) > int(before)
        except ValueError:
            return True
    return False


def _input_changes(model: str, b: ModelContext, a: ModelContext, both: set[str]) -> list[Change]:
    """What the spec says the thresholds are fitted for (quantile, metric, selector, matchers, direction,
    budget, min_events, ...: :func:`driftgate.fit.inputs.fit_inputs`), BASE against HEAD: an enforcement
    change even when the refitted numbers happen to stay put."""
    out = []
    for key, before, after in fit_input_changes(fit_inputs(b.spec), fit_inputs(a.spec)):
        if key.endswith(_OWN_ROW) or (key.startswith("signals.") and key.split(".")[1] not in both):
            continue
        out.append(Change(model, f"spec {key}", before, after, _input_loosens(key, before, after)))
    return out


def compare(before: dict[str, ModelContext], after: dict[str, ModelContext]) -> list[Change]:
    out: list[Change] = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if a is None:
            out.append(Change(name, "model", "enforced", "removed", True))
            continue
        if b is None:
            out.append(Change(name, "model", "—", "added", False))
            continue
        rows_b = {r.signal.name: r for r in b.rows}
        rows_a = {r.signal.name: r for r in a.rows}
        out.extend(_input_changes(name, b, a, set(rows_b) & set(rows_a)))
        for sig in sorted(set(rows_b) | set(rows_a)):
            rb, ra = rows_b.get(sig), rows_a.get(sig)
            if ra is None:
                out.append(Change(name, f"signal {sig}", "enforced", "removed", True))
                continue
            if rb is None:
                out.append(Change(name, f"signal {sig}", "—", "added", False))
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
                if num(wb.eff.auto) != num(wa.eff.auto):
                    out.append(Change(name, f"{label}: automatic threshold", num(wb.eff.auto), num(wa.eff.auto),
                                      ra.tier == "auto" and _looser(ra, wb.eff.auto, wa.eff.auto)))
                if num(wb.eff.manual) != num(wa.eff.manual):
                    out.append(Change(name, f"{label}: manual band", num(wb.eff.manual), num(wa.eff.manual),
                                      _looser(ra, wb.eff.manual, wa.eff.manual)))
                rate_b, rate_a = _rate(wb, b.baseline.history_days), _rate(wa, a.baseline.history_days)
                if f"{rate_b:.3g}" != f"{rate_a:.3g}":
                    out.append(Change(name, f"{label}: implied false rollbacks per quarter", f"{rate_b:.3g}",
                                      f"{rate_a:.3g}", False))
                if _delay(wb) != _delay(wa):
                    out.append(Change(name, f"{label}: alert delay", _delay(wb), _delay(wa), False))
        alerts_b = {(r.alert, dict(r.labels).get("signal"), dict(r.labels).get("window"))
                    for g in b.groups for r in g.rules if r.alert}
        alerts_a = {(r.alert, dict(r.labels).get("signal"), dict(r.labels).get("window"))
                    for g in a.groups for r in g.rules if r.alert}
        for alert, signal_name, window in sorted(alerts_b - alerts_a, key=str):
            out.append(Change(name, f"alert {alert} ({signal_name or '-'}, {window or '-'})", "present", "removed",
                              True))
    return out


def markdown(changes: list[Change], base: str) -> str:
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
    lines += ["| model | what | before | after | |", "|---|---|---|---|---|"]
    for c in sorted(changes, key=lambda c: (not c.loosens, c.model, c.what)):
        flag = "**LOOSENS**" if c.loosens else ""
        cells = [c.model, c.what, c.before, c.after, flag]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def review(root: Path, spec_dir: Path, base: str) -> tuple[str, list[Change]]:
    with tempfile.TemporaryDirectory(prefix="driftgate-review-") as tmp:
        before = _base_contexts(root, spec_dir, base, Path(tmp))
        after = {c.spec.name: c for c in pipeline.contexts(root, spec_dir)}
        changes = compare(before, after)
    return markdown(changes, base), changes
