"""history.exclude: an incident in the history is kept out of "normal" (issue 16, first point).

The outcome on a seeded synthetic history (driftgate.synth, 7 days at a 1m step) with one 25-minute incident
at 5% errors, 33x the service's 0.15%: fitted as it is, the fast (5m) window's automatic threshold sits above
the incident (a canary erring at 5% is not rolled back by it) and the backtest fires on the incident, which
the CLI warns about; with the incident excluded, both windows' thresholds are many times lower (5m: 0.0492
-> 0.0034 as the excess over the noise term) and a canary at the incident's error rate exceeds them.
Then: spans outside the history and overlapping spans, bad spans and bad exclude files (file:line:col and
key path), the fit CLI's warning and --strict, and the committed baselines unchanged by all of it (byte for
byte, without an exclude).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate import pipeline, synth
from driftgate.cli import main
from driftgate.errors import SpecError
from driftgate.fit import evidence as ev
from driftgate.spec.load import load_specs
from tests.conftest import REPO
from tests.test_fit_contract import END, SERVICE, spec_text
from tests.test_spec_errors import GOOD

DAYS = 7
STEP = 60
BASE_ERRORS = 0.0015
INCIDENT_ERRORS = 0.05
INCIDENT = synth.Incident(synth.IncidentKind.ERROR_REGRESSION, END - 3 * 86400 + 3 * 3600,
                          END - 3 * 86400 + 3 * 3600 + 25 * 60, magnitude=INCIDENT_ERRORS / BASE_ERRORS)
FROM, TO = bl.rfc3339(INCIDENT.start), bl.rfc3339(INCIDENT.end)  # 2026-10-29T03:00:00Z, 03:25:00Z
METRICS = ("mini_requests_total", "mini_request_errors_total")
SIGNAL = """\
  - name: error_ratio
    kind: error_ratio
    numerator: mini_request_errors_total
    denominator: mini_requests_total
    windows: {fast: 5m, slow: 20m}
    min_events: 500
"""
BASELINE = "baselines/mini.yaml"
EVIDENCE = "baselines/mini.evidence.json"


def _spans(*spans: tuple[str, str, str]) -> str:
    return "  exclude:\n" + "".join(f"    - {{from: {a}, to: {b}, reason: {r}}}\n" for a, b, r in spans)


def make_repo(root: Path, exclude: str = "") -> Path:
    docs = synth.generate(dataclasses.replace(SERVICE, error_prob=BASE_ERRORS, peak_rps=30.0),
                          int(END - DAYS * synth.DAY), DAYS, STEP, 4711, [INCIDENT])
    synth.write_exports({m: docs[m] for m in METRICS}, root / "exports/mini")
    text = re.sub(r"    - exports/mini/mini_(score_bucket|impressions_total|clicks_total)\.json\n", "",
                  spec_text(SIGNAL, minimum="2d"))
    text = text.replace("  exports:\n", exclude + "  exports:\n", 1)
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs/mini.yaml").write_text(text, encoding="utf-8")
    return root


def fitted(root: Path) -> bl.Baseline:
    pipeline.fit(root, root / "specs", force=True)
    return bl.load(root / BASELINE, BASELINE, root=root)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("plain"))
    fitted(root)
    return root


@pytest.fixture(scope="module")
def excluded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("excluded"), _spans((FROM, TO, "INC-4711 5% errors")))
    fitted(root)
    return root


def load(root: Path) -> bl.Baseline:
    return bl.load(root / BASELINE, BASELINE, root=root)


def canary_excess(w: bl.WindowFit, ratio: float) -> float:
    """What the rules compare with the threshold for a canary erring at ``ratio`` (its events: the fit's
    canary_events at analysis.canary_weight of the median traffic): the ratio less its noise term."""
    return ratio - w.noise_coefficient / w.canary_events ** w.noise_power


# --------------------------------------------------------------------------------- the outcome


def test_an_excluded_incident_is_no_longer_normal(plain: Path, excluded: Path) -> None:
    before, after = load(plain).signal("error_ratio"), load(excluded).signal("error_ratio")
    # Fitted as it is, the incident is normal: the fast window's threshold sits above it (a canary at the
    # incident's error rate is not rolled back by it), and the backtest fires on the incident itself. (The slow
    # window's tail fit is pulled up 6x, but stays below the incident's 5% on this history.)
    assert before.fast.canary_decides_after_minutes is not None  # the canary's fast window does decide
    assert canary_excess(before.fast, INCIDENT_ERRORS) < before.fast.auto.value
    assert before.fast.statistic_max > INCIDENT_ERRORS  # the incident is in the fitted windows
    assert before.fast.auto.backtest_alerts >= 1 > before.fast.auto.expected_alerts
    # Excluded: both windows' thresholds are far lower, and the canary at 5% exceeds both.
    for which in ("fast", "slow"):
        was, now = before.window(which), after.window(which)
        assert now.auto.value < was.auto.value / 4, which
        assert canary_excess(now, INCIDENT_ERRORS) > 3 * now.auto.value, which
        assert now.statistic_max < 0.01, which  # no window of the incident was fitted
        assert now.auto.backtest_alerts == 0, which
        assert now.auto.expected_alerts < was.auto.expected_alerts  # the excluded time is not budgeted
        assert now.windows_decided < was.windows_decided
        assert now.windows_total == was.windows_total


def test_the_spans_are_recorded(plain: Path, excluded: Path) -> None:
    b = load(excluded)
    assert json.loads(b.fit_inputs["history.exclude"]) == [{"from": FROM, "to": TO, "reason": "INC-4711 5% errors"}]
    assert b.excluded_days == pytest.approx(25 / 1440, rel=1e-5)
    assert b.history_days == load(plain).history_days  # still the span from history_start to history_end
    text = (excluded / BASELINE).read_text(encoding="utf-8")
    assert "excluded_days: 0.0173611\n" in text
    doc = json.loads((excluded / EVIDENCE).read_text(encoding="utf-8"))
    assert doc["excluded"] == [{"from": FROM, "to": TO, "reason": "INC-4711 5% errors"}]
    loaded = ev.load(excluded / EVIDENCE, EVIDENCE, excluded, b)
    assert loaded is not None and loaded.excluded[0].start == FROM
    # ... and only when there are any: nothing of it without history.exclude.
    assert "history.exclude" not in load(plain).fit_inputs
    assert "excluded" not in (plain / BASELINE).read_text(encoding="utf-8")
    assert "excluded" not in (plain / EVIDENCE).read_text(encoding="utf-8")


def test_a_changed_span_asks_for_a_refit(excluded: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(excluded, root)
    spec = root / "specs/mini.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(f"to: {TO}", "to: 2026-10-29T03:40:00Z"),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--root", str(root)])
    assert result.exit_code == 1
    assert "specs/mini.yaml: history.exclude is [" in result.output
    assert "but the baseline was fitted for [" in result.output and "run 'driftgate fit'" in result.output
    (outcome,) = pipeline.fit(root, root / "specs")
    assert outcome.refitted


def test_the_plan_lists_the_spans(excluded: Path) -> None:
    result = CliRunner().invoke(main, ["render", "--root", str(excluded), "--no-cache"])
    assert result.exit_code == 0, result.output
    plan = (excluded / "generated/plans/mini.md").read_text(encoding="utf-8")
    assert "- Excluded from \"normal\" (`history.exclude`): 1 span(s), 0.02 days of the history." in plan
    assert "  | from (UTC) | to (UTC) | duration | reason |\n" in plan
    assert f"  | {FROM} | {TO} | 25m | INC-4711 5% errors |\n" in plan


def test_a_plan_without_spans_has_no_such_section(plain: Path) -> None:
    result = CliRunner().invoke(main, ["render", "--root", str(plain), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "history.exclude" not in (plain / "generated/plans/mini.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------- spans of every shape


def test_spans_outside_the_history_are_harmless(plain: Path, tmp_path: Path) -> None:
    root = make_repo(tmp_path, _spans(("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "long before"),
                                      ("2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z", "after")))
    b, want = fitted(root), load(plain)
    assert b.signals == want.signals and b.excluded_days == 0.0 and b.provisional is want.provisional
    assert "excluded_days" not in (root / BASELINE).read_text(encoding="utf-8")
    assert len(json.loads(b.fit_inputs["history.exclude"])) == 2  # recorded all the same


def test_overlapping_spans_count_once(excluded: Path, tmp_path: Path) -> None:
    middle = bl.rfc3339(INCIDENT.start + 600)
    root = make_repo(tmp_path, _spans((FROM, bl.rfc3339(INCIDENT.start + 900), "first half"),
                                      (middle, TO, "second half"), (FROM, TO, "the whole")))
    b, want = fitted(root), load(excluded)
    assert b.signals == want.signals  # the same windows left out as for the one span
    assert b.excluded_days == pytest.approx(want.excluded_days, rel=1e-6)


def test_excluded_time_is_not_history_for_the_minimum(tmp_path: Path) -> None:
    # 7 days of history with a 6-day minimum: enough, until 1.5 days of it are excluded.
    root = make_repo(tmp_path, _spans(("2026-10-26T00:00:00Z", "2026-10-27T12:00:00Z", "a bad release")))
    spec = root / "specs/mini.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("minimum: 2d", "minimum: 6d"), encoding="utf-8")
    b = fitted(root)
    assert b.provisional and b.history_days == pytest.approx(7.0) and b.excluded_days == pytest.approx(1.5)
    result = CliRunner().invoke(main, ["render", "--root", str(root)])
    assert "provisional: 5.5 days of history (1.5 excluded by history.exclude), the spec asks for 6" in result.output


# --------------------------------------------------------------------------------- bad spans


def spec_problems(write_tree: Callable[[dict[str, str]], Path], history: str,
                  files: dict[str, str] | None = None) -> list[str]:
    text = GOOD.replace("  exports: [exports/demo.json]\n", "  exports: [exports/demo.json]\n" + history)
    root = write_tree({"specs/demo.yaml": text, "exports/demo.json": "{}", **(files or {})})
    with pytest.raises(SpecError) as info:
        load_specs(root, root / "specs")
    return [p.format() for p in info.value.problems]


@pytest.mark.parametrize(("history", "files", "expected"), [
    ("  exclude:\n    - {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:00:00Z, reason: INC-1}\n", {},
     "specs/demo.yaml:20:36: error: history.exclude[0].to: expected a time after from (2026-10-20T14:00:00Z), got "
     "timestamp 2026-10-20T14:00:00+00:00: a span ends after it starts"),
    ("  exclude:\n    - {from: '2026-10-20T15:00:00+02:00', to: 2026-10-20T12:59:59Z, reason: INC-1}\n", {},
     "specs/demo.yaml:20:43: error: history.exclude[0].to: expected a time after from (2026-10-20T13:00:00Z), got "
     "timestamp 2026-10-20T12:59:59+00:00: a span ends after it starts"),
    ("  exclude:\n    - {from: 2026-10-20T14:00:00, to: 2026-10-20T14:25:00Z, reason: INC-1}\n", {},
     "specs/demo.yaml:20:8: error: history.exclude[0].from: expected an RFC 3339 timestamp with a time zone, got "
     "timestamp 2026-10-20T14:00:00: the timestamp needs a time zone (end it with Z)"),
    ("  exclude:\n    - {from: 2026-10-20, to: 2026-10-20T14:25:00Z, reason: INC-1}\n", {},
     "specs/demo.yaml:20:8: error: history.exclude[0].from: expected an RFC 3339 timestamp with a time zone, got "
     "date 2026-10-20: a bare date has no time of day or time zone; write e.g. 2026-11-26T12:00:00Z"),
    ("  exclude:\n    - {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:25:00Z}\n", {},
     "specs/demo.yaml:20:7: error: history.exclude[0]: missing required key 'reason'"),
    ("  exclude:\n    - {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:25:00Z, reason: ' '}\n", {},
     "specs/demo.yaml:20:62: error: history.exclude[0].reason: expected a non-empty reason (why this span is not "
     "normal, e.g. the incident's ticket), got ' '"),
    ("  exclude:\n    - {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:25:00Z, reason: x, ticket: INC-1}\n", {},
     "specs/demo.yaml:20:73: error: history.exclude[0].ticket: unknown key 'ticket'; expected one of from, reason, "
     "to"),
    ("  exclude: INC-1\n", {},
     "specs/demo.yaml:19:3: error: history.exclude: expected a list of spans {from: <RFC 3339 time>, to: <RFC 3339 "
     "time>, reason: <text>}, got 'INC-1'"),
    ("  exclude_file: incidents/demo.yaml\n", {},
     "specs/demo.yaml:19:3: error: history.exclude_file: incidents/demo.yaml: file not found"),
    ("  exclude_file: ../incidents.yaml\n", {},
     "specs/demo.yaml:19:3: error: history.exclude_file: expected a path inside the repository, got "
     "'../incidents.yaml'"),
    ("  exclude_file: incidents/demo.yaml\n", {"incidents/demo.yaml": "incidents:\n  - {from: 1}\n"},
     "incidents/demo.yaml:1:1: error: expected a list of spans {from, to, reason} (this file is "
     "history.exclude_file of specs/demo.yaml), got mapping {'incidents': [{'from': 1}]}"),
    ("  exclude_file: incidents/demo.yaml\n", {"incidents/demo.yaml": ""},
     "incidents/demo.yaml:1:1: error: the file is empty; expected a list of spans {from, to, reason} (this file is "
     "history.exclude_file of specs/demo.yaml)"),
    ("  exclude_file: incidents/demo.yaml\n", {"incidents/demo.yaml": (
        "# incident windows of the demo model\n"
        "- from: 2026-10-20T14:00:00Z\n  to: 2026-10-20T14:25:00Z\n  reason: INC-1\n"
        "- from: 2026-10-21T09:00:00Z\n  to: 2026-10-21T08:00:00Z\n  reason: INC-2\n")},
     "incidents/demo.yaml:6:3: error: [1].to: expected a time after from (2026-10-21T09:00:00Z), got timestamp "
     "2026-10-21T08:00:00+00:00: a span ends after it starts"),
    ("  exclude_file: incidents/demo.yaml\n", {"incidents/demo.yaml": "- {from: 2026-10-20T14:00:00Z, "
                                                                      "to: 2026-10-20T14:25:00Z, reasn: x}\n"},
     "incidents/demo.yaml:1:58: error: [0].reasn: unknown key 'reasn' (did you mean 'reason'?)"),
], ids=["to-equals-from", "to-before-from-offset", "no-time-zone", "bare-date", "missing-reason", "blank-reason",
        "unknown-key", "not-a-list", "file-missing", "file-outside", "file-not-a-list", "file-empty", "file-to-before",
        "file-unknown-key"])
def test_bad_spans_are_located(write_tree: Callable[[dict[str, str]], Path], history: str,
                               files: dict[str, str], expected: str) -> None:
    assert expected in spec_problems(write_tree, history, files)


def test_every_bad_span_is_reported_at_once(write_tree: Callable[[dict[str, str]], Path]) -> None:
    found = spec_problems(write_tree, "  exclude:\n"
                                      "    - {from: 2026-10-20T14:00:00, to: 2026-10-20T14:25:00Z, reason: a}\n"
                                      "    - {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:25:00Z}\n"
                                      "  exclude_file: incidents.yaml\n", {"incidents.yaml": "- {}\n"})
    assert [line.split(": error: ")[0] for line in found] == [
        "incidents.yaml:1:3", "incidents.yaml:1:3", "incidents.yaml:1:3",  # from, reason, to missing
        "specs/demo.yaml:20:8", "specs/demo.yaml:21:7"]


def test_good_spans_from_the_spec_and_a_file(write_tree: Callable[[dict[str, str]], Path]) -> None:
    text = GOOD.replace("  exports: [exports/demo.json]\n", "  exports: [exports/demo.json]\n"
                        "  exclude: [{from: '2026-10-21T16:00:00+02:00', to: 2026-10-21T14:25:00Z, reason: INC-2}]\n"
                        "  exclude_file: incidents.yaml\n")
    root = write_tree({"specs/demo.yaml": text, "exports/demo.json": "{}",
                       "incidents.yaml": "- {from: 2026-10-20T14:00:00Z, to: 2026-10-20T14:25:00Z, reason: INC-1}\n"})
    (spec,) = load_specs(root, root / "specs")
    assert [(bl.rfc3339(x.start), bl.rfc3339(x.end), x.reason) for x in spec.exclude] == [
        ("2026-10-20T14:00:00Z", "2026-10-20T14:25:00Z", "INC-1"), ("2026-10-21T14:00:00Z", "2026-10-21T14:25:00Z",
                                                                     "INC-2")]
    assert spec.exclude_file == "incidents.yaml"


# --------------------------------------------------------------------------------- the fit CLI


def test_fit_warns_about_the_incident_and_strict_fails(plain: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(plain, root)
    result = CliRunner().invoke(main, ["fit", "--root", str(root), "--force"])
    assert result.exit_code == 0, result.output
    assert "baselines/mini.yaml: fitted\n" in result.output
    (warning,) = [line for line in result.output.splitlines() if ": warning: " in line]
    assert warning.startswith("baselines/mini.yaml: warning: signals.error_ratio: the backtest saw ")
    assert "would-have-fired automatic rollback(s) over the history at the fitted thresholds, where the budget " \
           "(1/quarter) allows 0.078" in warning
    # The span to look at holds the incident (hours of the hourly trace, widened by the window read).
    assert "Look at 2026-10-29T02:40:00Z to 2026-10-29T04:00:00Z (20m window up to 0.0" in warning
    assert "if that was an incident, add it to history.exclude and refit" in warning
    strict = CliRunner().invoke(main, ["fit", "--root", str(root), "--strict"])
    assert strict.exit_code == 1
    assert "baselines/mini.yaml: unchanged\n" in strict.output  # the warning holds for an unchanged baseline too
    assert "driftgate: error: 1 warning(s) and --strict" in strict.output


def test_fit_is_quiet_once_the_incident_is_excluded(excluded: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(excluded, root)
    result = CliRunner().invoke(main, ["fit", "--root", str(root), "--strict"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


# --------------------------------------------------------------------------------- nothing else moves


def test_committed_baselines_refit_byte_identically(example_exports: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "specs", root / "specs")
    shutil.copytree(example_exports, root / "exports")
    outcomes = pipeline.fit(root, root / "specs", force=True)
    assert all(o.refitted for o in outcomes)
    for path in sorted((REPO / "baselines").iterdir()):
        assert (root / "baselines" / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_changed_exclude_file_is_seen_with_a_warm_cache(plain: Path, tmp_path: Path) -> None:
    """The render cache keys a model on its history.exclude_file too: editing the file after a render (the
    spec, baseline and evidence unchanged) makes check report the baseline fitted for other spans."""
    root = tmp_path / "repo"
    shutil.copytree(plain, root)
    spec = root / "specs/mini.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("  exports:\n", "  exclude_file: incidents.yaml\n"
                                                             "  exports:\n", 1), encoding="utf-8")
    (root / "incidents.yaml").write_text(f"- {{from: {FROM}, to: {TO}, reason: INC-4711}}\n", encoding="utf-8")
    pipeline.fit(root, root / "specs", force=True)
    assert CliRunner().invoke(main, ["render", "--root", str(root)]).exit_code == 0
    assert CliRunner().invoke(main, ["check", "--root", str(root)]).exit_code == 0  # warm, unchanged
    (root / "incidents.yaml").write_text(f"- {{from: {FROM}, to: 2026-10-29T03:40:00Z, reason: INC-4711}}\n",
                                         encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert "history.exclude is [" in result.output and "run 'driftgate fit'" in result.output
