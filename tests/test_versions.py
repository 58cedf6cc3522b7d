"""Version changes in the history (issue 16): detected from the version label, kept in the evidence
(only when the history holds more than one version), drawn on the plan's pictures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from driftgate import pipeline
from driftgate.exports.series import Series
from driftgate.fit import evidence as ev
from driftgate.render import plots
from driftgate.spec.load import load_specs
from tests.conftest import REPO

LABEL = "rollouts_pod_template_hash"


def _series(version: str | None, t0: float, t1: float) -> Series:
    labels = (("pod", "p"),) + (((LABEL, version),) if version is not None else ())
    return Series("m", tuple(sorted(labels)), np.arange(t0, t1 + 1, 60.0), np.zeros(int((t1 - t0) / 60) + 1), "x")


def test_versions_are_found_in_order_of_first_sample() -> None:
    found = ev.versions_in([_series("new", 6000, 12000), _series("old", 0, 6600), _series(None, 0, 20000),
                            _series("old", 100, 3000)], LABEL)
    assert [(v.version, v.start, v.end) for v in found] == [
        ("old", "1970-01-01T00:00:00Z", "1970-01-01T01:50:00Z"),
        ("new", "1970-01-01T01:40:00Z", "1970-01-01T03:20:00Z")]
    assert ev.versions_in([_series("old", 0, 6000), _series("old", 60, 600)], LABEL) == ()  # one version: nothing


def _split_versions(src: Path, dst: Path, mid: float) -> None:
    """Each series of each export split at ``mid`` into the version that served before and the one after."""
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for r in doc["data"]["result"]:
            before = [v for v in r["values"] if float(v[0]) < mid]
            after = [v for v in r["values"] if float(v[0]) >= mid]
            out.append({**r, "values": before})
            old = r["metric"][LABEL]
            metric = {**r["metric"], LABEL: "5c6d7f8g9", "pod": r["metric"]["pod"].replace(old, "5c6d7f8g9")}
            out.append({"metric": metric, "values": after})
        doc["data"]["result"] = out
        (dst / path.name).write_text(json.dumps(doc), encoding="utf-8")


def test_a_release_in_the_history_is_in_the_evidence_and_on_the_pictures(example_exports: Path,
                                                                         tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    shutil.copy(REPO / "specs/fraud-scorer.yaml", root / "specs/fraud-scorer.yaml")
    first = json.loads(next((example_exports / "fraud-scorer").iterdir()).read_text(encoding="utf-8"))
    times = [float(v[0]) for v in first["data"]["result"][0]["values"]]
    mid = times[len(times) // 2]
    _split_versions(example_exports / "fraud-scorer", root / "exports/fraud-scorer", mid)
    pipeline.fit(root, root / "specs", force=True)
    doc = json.loads((root / "baselines/fraud-scorer.evidence.json").read_text(encoding="utf-8"))
    old = first["data"]["result"][0]["metric"][LABEL]
    assert [v["version"] for v in doc["versions"]] == [old, "5c6d7f8g9"]
    from driftgate.baseline import rfc3339

    assert doc["versions"][1]["from"] == rfc3339(mid) and doc["versions"][0]["to"] < rfc3339(mid)
    (spec,) = load_specs(root, root / "specs", check_exports=False)
    ctx = pipeline.model_context(root, spec, [])
    assert ctx.evidence is not None and [v.version for v in ctx.evidence.versions] == [old, "5c6d7f8g9"]
    row = ctx.rows[0]
    data = plots.figure_data(ctx, row, ctx.evidence.signals[row.signal.name], versions=ctx.evidence.versions)
    assert data["versions"] == [[mid, "5c6d7f8g9"]]
    picture = plots.render_pictures(ctx, ctx.evidence)[plots.picture_path("fraud-scorer", row.signal.name)]
    assert picture.data["versions"] == [[mid, "5c6d7f8g9"]]
    assert plots.matches(picture.draw(), picture.key)


def test_a_history_of_one_version_has_no_versions_key() -> None:
    for path in sorted((REPO / "baselines").glob("*.evidence.json")):
        assert "versions" not in json.loads(path.read_text(encoding="utf-8")), path.name


def test_bad_versions_in_an_evidence_file_are_refused(tmp_path: Path) -> None:
    import pytest

    from driftgate.errors import BaselineError

    src = REPO / "baselines/fraud-scorer.evidence.json"
    for bad, message in (([], "versions: expected a non-empty list"),
                         ([{"version": 1, "from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"}],
                          "versions[0].version: expected a string"),
                         ([{"version": "a", "from": "yesterday", "to": "2026-10-02T00:00:00Z"}],
                          "versions[0].from: expected an RFC 3339 UTC time")):
        doc = json.loads(src.read_text(encoding="utf-8"))
        doc["versions"] = bad
        path = tmp_path / "e.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(BaselineError, match=message.replace("[", r"\[").replace("]", r"\]")):
            ev.load(path, "e.json")
