"""The command line: exit codes, messages, and what render/check/validate do to a copy of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from driftgate import pipeline
from driftgate.cli import main
from driftgate.render import output
from tests.conftest import REPO

COMMANDS = ("fit", "render", "gen", "check", "validate")
ARGO_RECO = "generated/argo/reco-ranker.yaml"
PLAN_RECO = "generated/plans/reco-ranker.md"
SHARED = "generated/alertmanager/alertmanager.yml"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted((root / "generated").rglob("*")) if p.is_file()}


def copy_repo(root: Path) -> Path:
    """A copy of the repository's specs/, baselines/ and generated/ (no exports: render does not need them)."""
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, root / part)
    return root


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository copy with generated/ brought up to date once, so that the tests below exercise the CLI
    even while the committed tree is being regenerated (test_check_up_to_date and test_generated check that)."""
    root = copy_repo(tmp_path_factory.mktemp("current"))
    output.write(root, memo_render_files(root, root / "specs", None, []))  # as pipeline.render/check call it
    return root


@pytest.fixture
def infra(current: Path, tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(current, root)
    return root


_RENDERED: dict[tuple[object, ...], tuple[dict[str, Any], list[object]]] = {}
_real_render_files: Any = pipeline.render_files


def memo_render_files(root: Path, spec_dir: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """pipeline.render_files, computed for real once per distinct specs/ + baselines/ (and arguments)."""
    inputs = tuple((p.relative_to(root).as_posix(), p.read_bytes())
                   for d in (Path(spec_dir), root / "baselines") for p in sorted(d.rglob("*")) if p.is_file())
    key = (inputs, repr([a for a in args if not isinstance(a, list)]),
           repr({k: v for k, v in kwargs.items() if not isinstance(v, list)}))
    sinks = [a for a in (*args, *kwargs.values()) if isinstance(a, list)]  # e.g. the warnings list
    if key not in _RENDERED:
        marks = [len(sink) for sink in sinks]
        files: dict[str, Any] = _real_render_files(root, spec_dir, *args, **kwargs)
        _RENDERED[key] = (dict(files), [item for sink, n in zip(sinks, marks, strict=True) for item in sink[n:]])
        return files
    cached, added = _RENDERED[key]
    if sinks:
        sinks[0].extend(added)
    return dict(cached)


@pytest.fixture(autouse=True)
def memo_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering the example (plots included) takes seconds; these tests change only generated/ (or break specs/
    and baselines/, which changes the key), so pipeline.render_files is computed for real once per distinct input
    and reused. Everything after it (output.write, diff, the CLI's reporting and exit codes) runs as usual."""
    monkeypatch.setattr(pipeline, "render_files", memo_render_files)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", result.output, re.MULTILINE), f"{name} missing from --help"
    assert "Exit codes" in result.output


def test_python_dash_m_gen_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "driftgate", "--help"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in COMMANDS:
        assert name in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["rendr"])
    assert result.exit_code == 1  # a usage error is a user error like any other (click's default is 2)
    assert result.stderr.startswith("driftgate: error: No such command 'rendr'")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, not click's usage block


def test_check_up_to_date(tmp_path: Path) -> None:
    infra = copy_repo(tmp_path / "infra")  # exactly what is committed
    before = tree(infra)
    result = run("check", "--root", str(infra))
    assert result.exit_code == 0, result.output
    assert "generated/ is up to date" in result.stdout
    assert tree(infra) == before


def test_check_lists_a_stale_file_text_and_github(infra: Path) -> None:
    path = infra / ARGO_RECO
    path.write_text(path.read_text(encoding="utf-8").replace("count: ", "count:  ", 1), encoding="utf-8")
    edited = tree(infra)

    text = run("check", "--root", str(infra))
    assert text.exit_code == 1
    assert f"{ARGO_RECO}: stale" in text.stdout.splitlines()
    assert len([line for line in text.stdout.splitlines() if line.endswith(": stale")]) == 1
    assert "out of date" in text.stderr
    assert "up to date" not in text.stdout

    github = run("check", "--root", str(infra), "--format", "github")
    assert github.exit_code == 1
    errors = [line for line in github.stdout.splitlines() if line.startswith("::error ")]
    assert errors == [f"::error file={ARGO_RECO}::stale: run 'make gen' and commit the result"]
    assert tree(infra) == edited, "check must not write"


def test_missing_file_is_listed_and_render_restores_it(infra: Path, current: Path) -> None:
    original = (infra / PLAN_RECO).read_bytes()
    (infra / PLAN_RECO).unlink()

    result = run("check", "--root", str(infra))
    assert result.exit_code == 1
    assert f"{PLAN_RECO}: missing" in result.stdout.splitlines()

    result = run("render", "--root", str(infra))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"created {PLAN_RECO}"]
    assert (infra / PLAN_RECO).read_bytes() == original
    assert tree(infra) == tree(current)


def test_orphan_is_listed_by_check_and_removed_by_render(infra: Path) -> None:
    orphan = infra / "generated/argo/retired-model.yaml"
    orphan.write_bytes((infra / ARGO_RECO).read_bytes())
    handmade = infra / "generated/argo/NOTES.md"
    handmade.write_text("hand-written, no header\n", encoding="utf-8")

    result = run("check", "--root", str(infra))
    assert result.exit_code == 1
    assert "generated/argo/retired-model.yaml: orphaned" in result.stdout.splitlines()
    assert "NOTES.md" not in result.stdout

    result = run("render", "--root", str(infra))
    assert result.exit_code == 0, result.output
    assert "removed generated/argo/retired-model.yaml" in result.stdout.splitlines()
    assert not orphan.exists()
    assert handmade.read_text(encoding="utf-8") == "hand-written, no header\n"


def _break_spec(infra: Path) -> int:
    """Add an unknown key after 'rollout:'; return its 1-based line number."""
    spec = infra / "specs/reco-ranker.yaml"
    lines = spec.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("rollout:")) + 1
    lines.insert(at, "rolout: reco-ranker\n")
    spec.write_text("".join(lines), encoding="utf-8")
    return at + 1


@pytest.mark.parametrize("command", ["validate", "render", "check"])
def test_broken_spec_exits_1_with_location_and_writes_nothing(infra: Path, command: str) -> None:
    line = _break_spec(infra)
    (infra / PLAN_RECO).unlink()  # render would (re)create it if it got that far
    before = tree(infra)

    result = run(command, "--root", str(infra))

    assert result.exit_code == 1, result.output
    assert f"specs/reco-ranker.yaml:{line}:1: error: rolout: unknown key 'rolout'" in result.stderr
    assert "did you mean 'rollout'" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(infra) == before


def test_broken_spec_github_format(infra: Path) -> None:
    line = _break_spec(infra)
    result = run("validate", "--root", str(infra), "--format", "github")
    assert result.exit_code == 1
    assert f"::error file=specs/reco-ranker.yaml,line={line},col=1::rolout: unknown key" in result.stdout


def test_validate_ok(infra: Path) -> None:
    before = tree(infra)
    result = run("validate", "--root", str(infra))
    assert result.exit_code == 0, result.output
    assert "2 model(s) valid: fraud-scorer, reco-ranker" in result.stdout
    assert tree(infra) == before


@pytest.mark.parametrize("command", ["validate", "render", "check"])
def test_missing_baseline_names_the_file_and_says_to_fit(infra: Path, command: str) -> None:
    (infra / "baselines/fraud-scorer.yaml").unlink()
    before = tree(infra)

    result = run(command, "--root", str(infra))

    assert result.exit_code == 1, result.output
    assert "baselines/fraud-scorer.yaml" in result.stderr
    assert "driftgate fit" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(infra) == before


def test_internal_error_exits_3_with_traceback(infra: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> dict[str, str]:
        raise RuntimeError("kaboom in render_files")

    monkeypatch.setattr(pipeline, "_render_tree", boom)
    before = tree(infra)

    result = CliRunner().invoke(main, ["render", "--root", str(infra)])

    assert result.exit_code == 3, result.output
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: kaboom in render_files" in result.stderr
    assert "internal error" in result.stderr
    assert tree(infra) == before


def _age(root: Path, when: int = 1_600_000_000) -> None:
    for p in (root / "generated").rglob("*"):
        if p.is_file():
            os.utime(p, (when, when))


def test_render_one_model_leaves_the_others_and_the_shared_file_alone(infra: Path, current: Path) -> None:
    fraud = sorted(rel for rel in tree(infra) if "fraud-scorer" in rel)
    assert len(fraud) >= 8
    # A stale fraud-scorer file and a stale shared file: a full render would rewrite both.
    stale_fraud = infra / "generated/argo/fraud-scorer.yaml"
    stale_fraud.write_bytes(stale_fraud.read_bytes() + b"# edited\n")
    shared = infra / SHARED
    shared.write_bytes(shared.read_bytes() + b"# edited\n")
    (infra / ARGO_RECO).unlink()
    _age(infra)
    before = tree(infra)

    result = run("render", "--root", str(infra), "--model", "reco-ranker")

    assert result.exit_code == 0, result.output
    after = tree(infra)
    assert after[ARGO_RECO] == (current / ARGO_RECO).read_bytes()
    for rel in [*fraud, SHARED]:
        assert rel in after, f"{rel} was deleted"
        assert after[rel] == before[rel], f"{rel} was rewritten"
        assert (infra / rel).stat().st_mtime == 1_600_000_000, f"{rel} was touched"
    assert {rel: b for rel, b in after.items() if rel != ARGO_RECO} == \
        {rel: b for rel, b in before.items() if rel != ARGO_RECO}


def test_render_one_model_does_not_claim_to_remove_other_files(infra: Path) -> None:
    result = run("render", "--root", str(infra), "--model", "reco-ranker")
    assert result.exit_code == 0
    assert (infra / "generated/argo/fraud-scorer.yaml").is_file()
    assert not [line for line in result.stdout.splitlines() if line.startswith("removed ")], result.stdout
    assert "generated/ is up to date" in result.stdout
