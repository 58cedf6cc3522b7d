"""``driftgate review`` explains every change by its cause (issue 16): a budget split or a budget change
is not a loosening of each threshold it moves, a refit inside the previous bootstrap band is noise, an
added model gets its whole enforcement table."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from click.testing import CliRunner

from driftgate import pipeline
from driftgate.cli import main
from driftgate.review import compare, review
from tests.test_review import infra  # noqa: F401  (the fixture: a git repository of the examples)

_COMMIT = ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam"]


def _fail_on_loosen(root: Path) -> int:
    return CliRunner().invoke(main, ["review", "main", "--root", str(root), "--fail-on-loosen"]).exit_code


def test_adding_a_stricter_signal_is_one_added_row_and_a_budget_split(infra: Path) -> None:  # noqa: F811
    spec = infra / "specs/reco-ranker.yaml"
    text = spec.read_text()
    added = ("  - name: score_drift_js\n    kind: distribution_drift\n    metric: reco_score\n    statistic: js\n"
             "    windows: {fast: 15m, slow: 1h}\n    min_events: 500\n")
    spec.write_text(text.replace("  - name: score_shift\n", added + "  - name: score_shift\n", 1))
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    md, changes = review(infra, infra / "specs", "main")
    assert ("signal score_drift_js", "added (auto)") in {(c.what, c.after) for c in changes}
    moved = [c for c in changes if c.what.endswith(("automatic threshold", "manual band"))]
    assert moved and all(c.cause.startswith("budget split: 8 → 10 automatic") for c in moved)
    assert not [c for c in changes if c.loosens]
    assert "No change loosens enforcement." in md and "budget split" in md
    assert _fail_on_loosen(infra) == 0


def test_a_budget_change_is_flagged_once_on_the_budget_row(infra: Path) -> None:  # noqa: F811
    spec = infra / "specs/reco-ranker.yaml"
    spec.write_text(spec.read_text().replace("auto: 1/quarter", "auto: 4/quarter", 1))
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    _, raised = review(infra, infra / "specs", "main")
    assert [c for c in raised if c.loosens] == []  # more false rollbacks allowed: thresholds fall
    moved = [c for c in raised if c.what.endswith(("automatic threshold", "manual band"))]
    assert moved and all(c.cause == "budget.auto 1/quarter → 4/quarter" for c in moved)
    # The other way round: a smaller budget raises every threshold; one flag, on the budget itself.
    subprocess.run(["git", "-C", str(infra), *_COMMIT, "four per quarter"], check=True, capture_output=True)
    spec.write_text(spec.read_text().replace("auto: 4/quarter", "auto: 1/quarter", 1))
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    _, lowered = review(infra, infra / "specs", "main")
    assert [(c.what, c.before, c.after) for c in lowered if c.loosens] == [
        ("spec budget.auto", "4/quarter", "1/quarter")]
    assert _fail_on_loosen(infra) == 1


def _shifted(ctx: object, factor: float, new_end: str) -> object:
    """``ctx`` with every automatic threshold of its first signal moved by ``factor`` and a later history end."""
    c = ctx
    row = c.rows[0]  # type: ignore[attr-defined]
    windows = tuple(dataclasses.replace(w, eff=dataclasses.replace(w.eff, auto=w.eff.auto * factor))
                    for w in row.windows)
    rows = (dataclasses.replace(row, windows=windows), *c.rows[1:])  # type: ignore[attr-defined]
    baseline = dataclasses.replace(c.baseline, history_end=new_end)  # type: ignore[attr-defined]
    return dataclasses.replace(c, rows=rows, baseline=baseline)  # type: ignore[type-var]


def test_a_refit_inside_the_previous_band_is_noise_outside_it_a_loosening(infra: Path) -> None:  # noqa: F811
    (ctx,) = pipeline.contexts(infra, infra / "specs", "reco-ranker")
    w = ctx.rows[0].windows[0]
    band = (w.fit.auto.band_low, w.fit.auto.band_high)
    assert band[0] < w.eff.auto < band[1]
    inside = (w.eff.auto + (band[1] - w.eff.auto) / 2) / w.eff.auto
    later = "2026-11-07T00:00:00Z"
    noisy = compare({"reco-ranker": ctx}, {"reco-ranker": _shifted(ctx, inside, later)})  # type: ignore[dict-item]
    moved = [c for c in noisy if c.what.startswith(f"{ctx.rows[0].signal.name} (fast")]
    assert moved and moved[0].cause.startswith("refit noise: inside the previous fit's 90% band")
    assert not moved[0].loosens
    strict = compare({"reco-ranker": ctx}, {"reco-ranker": _shifted(ctx, inside, later)}, strict=True)  # type: ignore[dict-item]
    assert any(c.loosens and c.cause.startswith("refit noise") for c in strict)
    outside = band[1] * 1.5 / w.eff.auto
    far = compare({"reco-ranker": ctx}, {"reco-ranker": _shifted(ctx, outside, later)})  # type: ignore[dict-item]
    flagged = [c for c in far if c.loosens and c.what.startswith(f"{ctx.rows[0].signal.name} (fast")]
    assert flagged and flagged[0].cause.startswith("refit (history ")


def test_an_added_model_shows_its_enforcement_table(infra: Path) -> None:  # noqa: F811
    import shutil

    kept = infra.parent / "kept"
    kept.mkdir()
    for rel in ("specs/fraud-scorer.yaml", "baselines/fraud-scorer.yaml", "baselines/fraud-scorer.evidence.json"):
        shutil.move(str(infra / rel), str(kept / rel.replace("/", "_")))
    subprocess.run(["git", "-C", str(infra), "add", "-A"], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(infra), *_COMMIT, "without fraud-scorer"], check=True, capture_output=True)
    for rel in ("specs/fraud-scorer.yaml", "baselines/fraud-scorer.yaml", "baselines/fraud-scorer.evidence.json"):
        shutil.move(str(kept / rel.replace("/", "_")), str(infra / rel))
    md, changes = review(infra, infra / "specs", "main")
    assert [(c.model, c.what, c.after) for c in changes] == [("fraud-scorer", "model", "added")]
    table = md[md.index("#### fraud-scorer (added)"):]
    assert "**provisional**" in table  # the example's history is shorter than its minimum
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert {line.split(" | ")[0].lstrip("| ") for line in lines} == {"error_ratio", "latency_p99", "score_drift"}
    latency = next(line for line in lines if line.startswith("| latency_p99 | fast"))
    assert " ms | " in latency and "never (provisional)" in latency  # provisional: every signal manual
    error = next(line for line in lines if line.startswith("| error_ratio | fast"))
    assert "% | " in error and " min" in error  # the alert delays of the reference shifts
    # Provisional: nothing rolls back automatically yet, so no false rollbacks; the delays are those after a refit.
    assert "| 0 (after a refit: " in error and "none automatic; after a refit: ratio x" in error


def test_an_excluded_span_is_judged_like_a_refit(infra: Path) -> None:  # noqa: F811
    """Leaving an hour out of the history changes the data, not what the thresholds mean: moves inside the
    previous band are refit noise (named after the exclusion, not flagged), --strict flags those that loosen,
    and the exclusion itself is its own unflagged row."""
    spec = infra / "specs/reco-ranker.yaml"
    spec.write_text(spec.read_text().replace("  minimum: 14d\n", (
        "  minimum: 14d\n  exclude:\n    - {from: 2026-10-20T03:00:00Z, to: 2026-10-20T04:00:00Z, "
        "reason: \"INC-1: feature store restart\"}\n"), 1))
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    md, changes = review(infra, infra / "specs", "main")
    moved = [c for c in changes if c.what.endswith(("automatic threshold", "manual band"))]
    assert moved and all(c.before != c.after for c in moved)  # a move 3 figures hide is shown with more
    noise = [c for c in moved if c.cause.startswith("refit noise (history.exclude changed, see its row)")]
    assert noise and all(not c.loosens for c in noise)
    assert all(c.cause.startswith(("refit noise (history.exclude", "refit (history.exclude")) for c in moved)
    row = next(c for c in changes if c.what == "spec history.exclude")
    assert not row.loosens and "INC-1" in row.after
    assert "not flagged (`--strict` flags those that loosen)" in md
    strict_md, strict = review(infra, infra / "specs", "main", strict=True)
    flagged = [c for c in strict if c.loosens and c.cause.startswith("refit noise")]
    assert flagged and "loosen and are flagged (`--strict`)" in strict_md
    assert CliRunner().invoke(main, ["review", "main", "--root", str(infra), "--strict",
                                     "--fail-on-loosen"]).exit_code == 1


def test_a_new_comparison_is_judged_by_what_a_canary_is_caught_by(infra: Path) -> None:  # noqa: F811
    """error_ratio moved to compare_with: stable: its thresholds are on another statistic (the canary's ratio
    minus the stable version's), shown with that cause and never judged by value; the canary's alert delays
    are compared, flagged when a shift is caught later; the drift-without-a-release alerts it no longer has
    are flagged, with the comparison named as their cause."""
    spec = infra / "specs/reco-ranker.yaml"
    anchor = "    denominator: reco_requests_total\n"
    spec.write_text(spec.read_text().replace(anchor, anchor + "    compare_with: stable\n", 1))
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    _, changes = review(infra, infra / "specs", "main")
    mine = [c for c in changes if c.what.startswith("error_ratio (")]
    values = [c for c in mine if c.what.endswith(("automatic threshold", "manual band"))]
    assert values and all("another statistic, not comparable by value" in c.cause and not c.loosens for c in values)
    delays = [c for c in mine if c.what.endswith("canary alert delays")]
    for c in delays:
        assert c.loosens == ("caught later or not at all" in c.cause)
    removed = [c for c in changes if c.what.startswith("alert DriftgateDrift (error_ratio")]
    assert len(removed) == 2 and all(c.loosens and "compare_with baseline → stable" in c.cause for c in removed)
    assert ("spec signals.error_ratio.compare_with", "baseline", "stable") in {(c.what, c.before, c.after)
                                                                              for c in changes}
    # Nothing else moved: the other signals' numbers are the same fit's.
    assert not [c for c in changes if c.what.startswith(("score_drift (", "latency_p99 (", "ctr ("))]
    # A later canary is flagged: the same windows with a canary delay made worse by hand.
    (after,) = pipeline.contexts(infra, infra / "specs", "reco-ranker")
    subprocess.run(["git", "-C", str(infra), "stash", "-q"], check=True, capture_output=True)
    (before,) = pipeline.contexts(infra, infra / "specs", "reco-ranker")
    subprocess.run(["git", "-C", str(infra), "stash", "pop", "-q"], check=True, capture_output=True)
    row = next(r for r in after.rows if r.signal.name == "error_ratio")
    slower = tuple(dataclasses.replace(w, fit=dataclasses.replace(w.fit, canary_detection=tuple(
        dataclasses.replace(d, delay_minutes=None) for d in w.fit.canary_detection))) for w in row.windows)
    rows = tuple(dataclasses.replace(r, windows=slower) if r is row else r for r in after.rows)
    worse = compare({"reco-ranker": before}, {"reco-ranker": dataclasses.replace(after, rows=rows)})
    flagged = [c for c in worse if c.what.endswith("canary alert delays")]
    assert flagged and all(c.loosens and "caught later or not at all: ratio x" in c.cause for c in flagged)
