"""The release outcome end to end (bench/seed_replay.py at its smallest): the generated Rollout steps, the
generated rules in promtool (Prometheus 2.x and 3.x), Argo Rollouts' own decision code and amtool.

A canary with the embedding bug is aborted (traffic back on the previous version) within 8 minutes and
the freeze holds a re-roll; a healthy release is neither aborted nor paged; drift of an established
version pages the rollback authority and the team without freezing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bench import seed_replay as sr
from driftgate import baseline as bl
from tests.conftest import REPO, Prom, _missing, tool, toolset

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sr.Plan, np.ndarray, list[str]]:
    from driftgate import pipeline
    from driftgate.render import output

    root = tmp_path_factory.mktemp("replay")
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    spec = root / "specs" / f"{sr.MODEL}.yaml"
    spec.write_text(sr.with_horizon(spec.read_text(), "5h"))  # less history for the established case
    output.write(root, pipeline.render_files(root, root / "specs", sr.MODEL), prune=False)
    fit = bl.load(REPO / "baselines" / f"{sr.MODEL}.yaml", sr.MODEL).signal("score_drift")
    return root, sr.read_plan(root), np.array(fit.probabilities) / sum(fit.probabilities), list(fit.les)


def _replay(setup: tuple[Path, sr.Plan, np.ndarray, list[str]], prom: Prom, case: sr.Case) -> dict[str, object]:
    if not toolset.ARGO_EVAL.is_file():
        _missing(f"Argo Rollouts driver {toolset.ARGO_EVAL} (python scripts/tools.py)")
    root, plan, q, les = setup
    amtool = tool("amtool", f"alertmanager-{toolset.ALERTMANAGER_RELEASE}")
    return sr.replay(case, plan, root, prom.promtool, amtool, q, les)


def test_a_bad_canary_is_rolled_back_within_minutes_and_stays_frozen(setup: tuple[Path, sr.Plan, np.ndarray,
                                                                                  list[str]], prom: Prom) -> None:
    r = _replay(setup, prom, sr.Case("bug 30 min into the canary", "canary", 30))
    assert r["alert"] == "DriftgateAutoRollback"
    assert r["abort_min"] is not None and r["abort_min"] <= 8, r
    assert r["degraded"] <= sr.SEED_DEGRADED / 1000
    assert r["freeze"] and r["freeze_holds_reroll"]
    assert {"reco-ranker-rollback-authority", "reco-ranker-team-pager"} <= set(r["paged"])  # type: ignore[arg-type]


def test_after_completion_the_authority_is_paged_and_the_opt_in_undo_acts(
        setup: tuple[Path, sr.Plan, np.ndarray, list[str]], prom: Prom) -> None:
    """The example opts in to release.auto_undo: amtool routes the breach to the undo receiver too."""
    r = _replay(setup, prom, sr.Case("bug 4.5 h after the release started", "completed", 270))
    assert r["alert"] == "DriftgateAutoRollback" and r["freeze"]
    assert {"reco-ranker-rollback-authority", "reco-ranker-team-pager"} <= set(r["paged"])  # type: ignore[arg-type]
    assert r["page_min"] is not None and r["page_min"] <= 10, r  # type: ignore[operator]
    assert r["abort_min"] is not None and r["abort_min"] <= 10, r  # type: ignore[operator]
    assert all(ok for _, ok in sr.verdicts(r)), sr.verdicts(r)


def test_a_healthy_release_is_left_alone(setup: tuple[Path, sr.Plan, np.ndarray, list[str]], prom: Prom) -> None:
    r = _replay(setup, prom, sr.Case("healthy release", "healthy", None))
    assert r["alert"] is None and r["abort_min"] is None and not r["paged"] and not r["freeze"]


def test_stable_drift_pages_without_freezing(setup: tuple[Path, sr.Plan, np.ndarray, list[str]], prom: Prom) -> None:
    r = _replay(setup, prom, sr.Case("stable drift", "stable-drift", 5 * 60 + 30, release=False))
    assert r["alert"] == "DriftgateDrift" and r["paged"] and not r["freeze"]
