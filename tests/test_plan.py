"""The monitoring plan answers the audit questions with the baseline's real numbers; pictures are stable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from driftgate import pipeline
from driftgate.render import plots
from driftgate.render.audit import audit
from driftgate.render.plots import render_pictures
from driftgate.render.promql import num
from tests.conftest import REPO

MODELS = ("fraud-scorer", "reco-ranker")


@pytest.fixture(scope="module")
def contexts() -> dict[str, pipeline.ModelContext]:
    return {c.spec.name: c for c in pipeline.contexts(REPO, REPO / "specs")}


def _section(text: str, number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## )", text, re.S | re.M)
    assert match, f"section {number} missing"
    return match.group(0)


@pytest.mark.parametrize("model", MODELS)
def test_audit_questions_answered_with_real_numbers(contexts: dict[str, pipeline.ModelContext], model: str) -> None:
    ctx = contexts[model]
    plan = (REPO / "generated/plans" / f"{model}.md").read_text()
    one = _section(plan, 1)
    assert one.startswith("## 1. What is the automatic rollback threshold for each signal?")
    for row in ctx.rows:
        for w in row.windows:
            line = next(x for x in one.splitlines() if f"**{row.signal.name}**, {w.window} window" in x)
            if row.tier == "auto":
                assert f"**{num(w.eff.auto)}**" in line
                assert num(w.eff.auto) == num(ctx.baseline.signal(row.signal.name).window(w.which).auto.value) \
                    or w.pinned_auto
            else:
                assert "**no automatic rollback**" in line and num(w.eff.manual) in line
    two = _section(plan, 2)
    assert "When did the last automatic rollback fire?" in two
    assert f'model="{model}"' in two and "/api/v1/query" in two and "kubectl argo rollouts get rollout" in two
    three = _section(plan, 3)
    a = audit(ctx)
    assert ctx.baseline.history_start in three and ctx.baseline.history_end in three
    assert ctx.baseline.input_hash in three
    assert f"**{a.backtest_auto}** would-have-fired" in three
    assert f"{a.promised_per_quarter:.2f} per quarter" in three
    four = _section(plan, 4)
    assert ctx.spec.authority.name in four and ctx.spec.authority.contact in four
    for verb in ("abort", "promote", "undo"):
        assert f"kubectl argo rollouts {verb}" in four
    assert "freeze.lifted_until" in four
    six = _section(plan, 6)
    rows = [x for x in six.splitlines() if x.startswith("| ") and not x.startswith("| signal")]
    assert len(rows) == 2 * len(ctx.rows)
    assert "## 10. NIST AI RMF: MANAGE 4.1" in plan
    for element in ("Appeal and override", "Decommissioning", "Incident response", "Recovery", "Change management",
                    "Input from users and other AI actors"):
        assert f"| {element} |" in plan


def test_provisional_status_is_explicit() -> None:
    plan = (REPO / "generated/plans/fraud-scorer.md").read_text()
    assert "**PROVISIONAL**" in plan and "**no automatic rollback** (provisional" in plan


@pytest.mark.parametrize("model", MODELS)
def test_pictures_exist_are_linked_and_byte_stable(contexts: dict[str, pipeline.ModelContext], model: str) -> None:
    ctx = contexts[model]
    plan = (REPO / "generated/plans" / f"{model}.md").read_text()
    first = render_pictures(ctx, ctx.evidence)
    second = render_pictures(ctx, ctx.evidence)
    assert first == second  # same inputs, same keys
    assert set(first) == {f"generated/plans/{model}/{row.signal.name}.png" for row in ctx.rows}
    assert len({p.key for p in first.values()}) == len(first)  # each picture shows something else
    for rel, picture in first.items():
        committed = (REPO / rel).read_bytes()
        assert plots.matches(committed, picture.key), f"{rel} was not drawn from these inputs"
        drawn = picture.draw()
        assert drawn == picture.draw()  # deterministic with one matplotlib
        assert plots.matches(drawn, picture.key)
        assert plots.text_chunks(drawn)[plots.INPUTS_KEY] == picture.key
        assert f"({Path(rel).relative_to('generated/plans').as_posix()})" in plan
        assert b"Matplotlib" not in drawn  # no software version or timestamp in the metadata


def test_picture_key_follows_what_is_drawn(contexts: dict[str, pipeline.ModelContext]) -> None:
    ctx = contexts["reco-ranker"]
    row = ctx.rows[0]
    ev = ctx.evidence.signals[row.signal.name]
    data = plots.figure_data(ctx, row, ev)
    key = plots.picture_key(data)
    assert plots.picture_key(json.loads(json.dumps(data))) == key
    moved = json.loads(json.dumps(data))
    moved["fast"]["manual"] *= 1.01
    assert plots.picture_key(moved) != key
    relabelled = json.loads(json.dumps(data))
    relabelled["slow"]["title"] += " "
    assert plots.picture_key(relabelled) != key


def test_resolve_reuses_only_a_matching_untouched_picture(contexts: dict[str, pipeline.ModelContext],
                                                          tmp_path: Path) -> None:
    ctx = contexts["reco-ranker"]
    pictures = render_pictures(ctx, ctx.evidence)
    rel, picture = next(iter(pictures.items()))
    drawn = picture.draw()
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(drawn)
    calls: list[str] = []

    class Counting(plots.Picture):
        def draw(self) -> bytes:
            calls.append("drawn")
            return super().draw()

    wrapped = {rel: Counting(picture.key, picture.data)}
    files, undrawn = plots.resolve(tmp_path, wrapped, draw=True)
    assert files[rel] == drawn and not calls and not undrawn  # reused, not redrawn
    (tmp_path / rel).write_bytes(drawn.replace(b"IEND", b"IEND", 1)[:-1] + b"\x00")  # broken CRC at the end
    files, undrawn = plots.resolve(tmp_path, wrapped, draw=False)
    assert rel not in files and undrawn == [rel]  # check: stale, without drawing
    files, _ = plots.resolve(tmp_path, wrapped, draw=True)
    assert calls == ["drawn"] and plots.matches(files[rel], picture.key)
    other = {rel: Counting("0" * 64, picture.data)}
    (tmp_path / rel).write_bytes(drawn)
    assert plots.resolve(tmp_path, other, draw=False)[1] == [rel]  # other inputs: not reused


def test_no_evidence_means_no_pictures_and_a_warning(tmp_path: Path) -> None:
    import shutil

    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / "baselines/reco-ranker.evidence.json").unlink()
    warnings: list = []
    files = pipeline.render_files(tmp_path, tmp_path / "specs", "reco-ranker", warnings)
    assert not any(k.endswith(".png") for k in files)
    assert any("no evidence file" in w.message for w in warnings)


def _plans() -> dict[str, str]:
    return {m: (REPO / f"generated/plans/{m}.md").read_text(encoding="utf-8") for m in ("reco-ranker", "fraud-scorer")}


def test_sections_are_numbered_in_order_and_every_reference_exists() -> None:
    import re

    for model, text in _plans().items():
        numbers = [int(n) for n in re.findall(r"^## (?:<a id=\"[^\"]+\"></a>)?(\d+)\. ", text, flags=re.M)]
        assert numbers == list(range(1, len(numbers) + 1)), model
        unnumbered = re.findall(r"^## (?!(?:<a id=\"[^\"]+\"></a>)?\d+\. )(.*)$", text, flags=re.M)
        assert unnumbered == [], (model, unnumbered)
        titles = dict(re.findall(r"^## (?:<a id=\"[^\"]+\"></a>)?(\d+)\. (.*)$", text, flags=re.M))
        for ref in re.findall(r"section (\d+)", text):
            assert ref in titles, (model, ref)
        assert titles["6"] == "Signals" and titles["4"].startswith("Who may roll back")
        assert "table in section 6" in text and "in Prometheus (section 6)" in text


def test_thresholds_read_in_units_at_canary_and_fleet_traffic() -> None:
    import re

    reco = _plans()["reco-ranker"]
    first = reco[reco.index("## 1."):reco.index("## 2.")]
    latency = next(line for line in first.splitlines() if line.startswith("- **latency_p99**, 15m"))
    assert re.search(r"quantile q0\.99 > \d{3} ms for a canary at its median traffic \([\d,]+ events in the window\); "
                     r"\d{3} ms for the fleet at its median \([\d,]+ events\)", latency), latency
    errors = next(line for line in first.splitlines() if line.startswith("- **error_ratio**, 15m"))
    assert re.search(r"ratio > \d\.\d+% for a canary", errors), errors
    for line in first.splitlines():
        if line.startswith("- **"):
            for value in re.findall(r"(?:> |< |; )(\d[\d.]*)(?: ms|%)? (?:for a canary|for the fleet)", line):
                assert len(value.replace(".", "").lstrip("0")) <= 3, (value, line)  # 3 significant figures


def test_the_nist_table_claims_only_what_the_spec_provides() -> None:
    plans = _plans()
    nist = {m: t[t.index("NIST AI RMF"):] for m, t in plans.items()}
    fraud, reco = nist["fraud-scorer"], nist["reco-ranker"]
    assert "No business KPI signal (`kind: kpi_ratio`)" in fraud  # fraud-scorer has none
    assert "Business KPI signal(s) ctr measure user outcomes" in reco
    assert "**No automatic rollback**: every signal is manual-tier while the baseline is provisional" in fraud
    assert "Automatic rollback on score_drift, score_shift, latency_p99, error_ratio" in reco
    assert "this model's 3 signal(s) (score_drift, latency_p99, error_ratio)" in fraud
