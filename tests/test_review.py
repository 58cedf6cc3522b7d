"""``driftgate review``: enforcement changes since a git ref, loosening flagged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftgate import pipeline
from driftgate.cli import main
from driftgate.errors import BaselineError
from driftgate.review import review
from tests.conftest import REPO


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def infra(tmp_path: Path, example_exports: Path) -> Path:
    root = tmp_path / "infra"
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, root / part)
    shutil.copytree(example_exports, root / "exports")  # a change of a fit input is refitted
    (root / ".gitignore").write_text("exports/\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return root


def test_nothing_changed(infra: Path) -> None:
    text, changes = review(infra, infra / "specs", "main")
    assert changes == []
    assert "No change to rollback enforcement." in text


def test_loosened_threshold_and_tier_are_flagged(infra: Path) -> None:
    spec = infra / "specs/reco-ranker.yaml"
    text = spec.read_text()
    text = text.replace("    statistic: psi\n", "    statistic: psi\n    threshold: {auto: 0.5}\n", 1)
    text = text.replace("    min_events: 1000\n", "    min_events: 1000\n    tier: manual\n", 1)
    spec.write_text(text)
    stale = r"signals\.error_ratio\.tier is manual, but the baseline was fitted for auto"
    with pytest.raises(BaselineError, match=stale):
        review(infra, infra / "specs", "main")  # the tier is a fit input (the budget's split): refit first
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    md, changes = review(infra, infra / "specs", "main")
    loose = {(c.model, c.what) for c in changes if c.loosens}
    assert ("reco-ranker", "score_drift (fast 15m): automatic threshold") in loose
    assert ("reco-ranker", "score_drift (slow 1h): automatic threshold") in loose
    assert ("reco-ranker", "error_ratio: tier") in loose
    assert any(c.what.startswith("alert DriftgateAutoRollback (error_ratio") for c in changes if c.loosens)
    assert "LOOSEN enforcement" in md
    row = next(line for line in md.splitlines() if "score_drift (fast 15m): automatic threshold" in line)
    assert "| 0.5 |" in row and "**LOOSENS**" in row
    result = CliRunner().invoke(main, ["review", "main", "--root", str(infra), "--fail-on-loosen"])
    assert result.exit_code == 1, result.output
    assert "LOOSENS" in result.output


def test_tightening_is_not_flagged(infra: Path) -> None:
    spec = infra / "specs/reco-ranker.yaml"
    tighter = spec.read_text().replace("    statistic: psi\n", "    statistic: psi\n    threshold: {auto: 0.001}\n", 1)
    spec.write_text(tighter)
    md, changes = review(infra, infra / "specs", "main")
    assert changes and not any(c.loosens for c in changes)
    assert "No change loosens enforcement." in md


def test_removed_model_is_flagged(infra: Path) -> None:
    (infra / "specs/fraud-scorer.yaml").unlink()
    _, changes = review(infra, infra / "specs", "main")
    assert [(c.model, c.what, c.after, c.loosens) for c in changes] == [("fraud-scorer", "model", "removed", True)]


def test_unknown_ref_is_a_clear_error(infra: Path) -> None:
    result = CliRunner().invoke(main, ["review", "no-such-ref", "--root", str(infra)])
    assert result.exit_code == 1
    assert "git rev-parse" in result.output or "git rev-parse" in str(result.stderr_bytes)


def _as_older_driftgate(path: Path, fit_version: int) -> None:
    """A baseline as an older driftgate wrote it: another fit_version, without the keys added since
    (the canary figures, fit_version 8) and with one it had that this version dropped."""
    import yaml

    from driftgate.baseline import FIT_VERSION

    head, body = path.read_text().split("\n", 1)  # the generated header, then the mapping
    data = yaml.safe_load(body)
    assert data["fit_version"] == FIT_VERSION != fit_version
    data["fit_version"] = fit_version
    data["retired_key"] = 1
    del data["fit_inputs"]  # recorded since fit_version 11
    for s in data["signals"]:
        for which in ("fast", "slow"):
            for key in [k for k in s[which] if k.startswith("canary_")]:
                del s[which][key]
    path.write_text(head + "\n" + yaml.safe_dump(data, sort_keys=True))


def test_a_base_written_by_an_older_driftgate_is_reviewed(infra: Path) -> None:
    """The pull request that upgrades driftgate (and refits) must still be reviewable against main."""
    from driftgate import baseline as bl

    current = {p.name: p.read_bytes() for p in (infra / "baselines").glob("*.yaml")}
    for p in (infra / "baselines").glob("*.yaml"):
        _as_older_driftgate(p, 7)
    with pytest.raises(BaselineError, match="fit_version 7"):  # render and fit still refuse it
        bl.load(infra / "baselines/reco-ranker.yaml", "baselines/reco-ranker.yaml")
    _git(infra, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "older driftgate")
    for name, data in current.items():
        (infra / "baselines" / name).write_bytes(data)
    text, changes = review(infra, infra / "specs", "main")
    assert changes == [] and "No change to rollback enforcement." in text
    # ... and a real change is still seen across the upgrade.
    spec = infra / "specs/reco-ranker.yaml"
    pinned = "    statistic: psi\n    threshold: {auto: 0.5}\n"
    spec.write_text(spec.read_text().replace("    statistic: psi\n", pinned, 1))
    _, changes = review(infra, infra / "specs", "main")
    assert ("reco-ranker", "score_drift (fast 15m): automatic threshold") in {(c.model, c.what) for c in changes
                                                                            if c.loosens}


def test_a_change_of_what_a_signal_is_fitted_for_is_an_enforcement_change(infra: Path) -> None:
    """Quantile, min_events, direction, labels: refitted, and reported even where a number stays put."""
    spec = infra / "specs/reco-ranker.yaml"
    text = spec.read_text().replace("    quantile: 0.99\n", "    quantile: 0.95\n", 1)
    text = text.replace("    min_events: 1000\n", "    min_events: 3000\n", 1)
    spec.write_text(text)
    pipeline.fit(infra, infra / "specs", "reco-ranker")
    md, changes = review(infra, infra / "specs", "main")
    got = {c.what: (c.before, c.after, c.loosens) for c in changes if c.what.startswith("spec ")}
    assert got == {"spec signals.latency_p99.quantile": ("0.99", "0.95", False),
                   "spec signals.error_ratio.min_events": ("1000", "3000", True)}
    assert "| reco-ranker | spec signals.error_ratio.min_events | 1000 | 3000 | spec change | **LOOSENS** |" in md
    assert "No change to rollback enforcement." not in md
