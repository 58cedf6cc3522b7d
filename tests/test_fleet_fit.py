"""``driftgate fit`` on Dask (driftgate.fit.fleet): the same bytes as a serial fit, the same errors.

A fleet of four models (the two examples, a copy of fraud-scorer with its own export folder and one
sharing fraud-scorer's exports) is fitted serially and on a local cluster of two worker processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftgate import cli, pipeline
from driftgate.errors import ExportError
from driftgate.fit import fleet

REPO = Path(__file__).resolve().parents[1]
DRIFTGATE = Path(sys.executable).with_name("driftgate")
MODELS = ["fraud-b", "fraud-c", "fraud-scorer", "reco-ranker"]
CORRUPT = "exports/fraud-b/fraud_score_bucket.json"


@pytest.fixture(scope="session")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_exports.py"), "--out",
                    str(root / "exports")], check=True, capture_output=True)
    (root / "specs").mkdir()
    for spec in (REPO / "specs").glob("*.yaml"):
        shutil.copy(spec, root / "specs" / spec.name)
    shutil.copytree(root / "exports" / "fraud-scorer", root / "exports" / "fraud-b")
    text = (root / "specs" / "fraud-scorer.yaml").read_text(encoding="utf-8")
    for name, own_exports in (("fraud-b", True), ("fraud-c", False)):
        copy = text.replace("model: fraud-scorer", f"model: {name}").replace("rollout: fraud-scorer",
                                                                             f"rollout: {name}")
        if own_exports:
            copy = copy.replace("exports/fraud-scorer/", f"exports/{name}/")
        (root / "specs" / f"{name}.yaml").write_text(copy, encoding="utf-8")
    return root


@pytest.fixture
def fleet_repo(fleet_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(fleet_template, root)
    return root


def _driftgate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run([str(DRIFTGATE), *args, "--root", str(root)], capture_output=True, text=True,
                          timeout=180, env=env)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_workers_fit_the_same_bytes_as_a_serial_fit(fleet_repo: Path, tmp_path: Path) -> None:
    serial_root = tmp_path / "serial"
    shutil.copytree(fleet_repo, serial_root)
    serial = _driftgate(serial_root, "fit")
    assert serial.returncode == 0, serial.stderr
    on_dask = _driftgate(fleet_repo, "fit", "--workers", "2")
    assert on_dask.returncode == 0, on_dask.stderr
    assert on_dask.stdout == serial.stdout  # the same report, in the same (spec) order
    assert on_dask.stderr == serial.stderr == ""  # no Dask log lines; no progress bar without a terminal
    assert [line.split(".yaml")[0].removeprefix("baselines/") for line in serial.stdout.splitlines()] == MODELS
    expected = _tree(serial_root / "baselines")
    assert sorted(expected) == sorted([f"{m}.yaml" for m in MODELS] + [f"{m}.evidence.json" for m in MODELS])
    assert _tree(fleet_repo / "baselines") == expected
    # Nothing changed: the fleet fit skips every model, like a serial one.
    again = _driftgate(fleet_repo, "fit", "--workers", "2", "--progress")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": unchanged") == len(MODELS)


def test_a_worker_error_is_the_serial_error_and_nothing_is_written(fleet_repo: Path) -> None:
    (fleet_repo / CORRUPT).write_text('{"status": "success", "data": {"resultType": "matrix", "result": [',
                                      encoding="utf-8")
    with pytest.raises(ExportError) as serial:
        pipeline.fit(fleet_repo, fleet_repo / "specs", force=True)
    assert CORRUPT in str(serial.value)
    on_dask = _driftgate(fleet_repo, "fit", "--workers", "2")
    assert on_dask.returncode == 1
    assert on_dask.stdout == ""
    assert on_dask.stderr == f"driftgate: error: {serial.value.render()}\n"
    assert not (fleet_repo / "baselines").exists()


def test_a_worker_error_keeps_its_class_from_python(fleet_repo: Path) -> None:
    """pipeline.fit(..., workers=N) from Python (what bench/scale.py calls) raises the serial exception."""
    (fleet_repo / CORRUPT).write_bytes(b"")
    with pytest.raises(ExportError) as serial:
        pipeline.fit(fleet_repo, fleet_repo / "specs", force=True)
    with pytest.raises(ExportError) as on_dask:
        pipeline.fit(fleet_repo, fleet_repo / "specs", force=True, workers=2)
    assert type(on_dask.value) is type(serial.value)
    assert on_dask.value.render() == serial.value.render()
    assert not (fleet_repo / "baselines").exists()


def test_workers_and_scheduler_together_are_a_usage_error(fleet_repo: Path) -> None:
    result = CliRunner().invoke(cli.main, ["fit", "--root", str(fleet_repo), "--workers", "2",
                                           "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 1
    assert "--workers and --scheduler are mutually exclusive" in result.output
    for bad in (["--workers", "0"], ["--workers", "two"]):
        result = CliRunner().invoke(cli.main, ["gen", "--root", str(fleet_repo), *bad])
        assert result.exit_code == 1, result.output
        assert "--workers" in result.output
    assert not (fleet_repo / "baselines").exists()


def test_a_scheduler_nobody_listens_on_fails_within_the_timeout(fleet_repo: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "CONNECT_TIMEOUT", 2.0)
    start = time.monotonic()
    result = CliRunner().invoke(cli.main, ["fit", "--root", str(fleet_repo), "--scheduler", "tcp://127.0.0.1:1"])
    assert time.monotonic() - start < 15
    assert result.exit_code == 1
    assert "driftgate: error: --scheduler tcp://127.0.0.1:1: cannot connect to a Dask scheduler" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli.main, ["fit", "--root", str(fleet_repo), "--scheduler", "no-port-here"])
    assert result.exit_code == 1
    assert "driftgate: error: --scheduler no-port-here: cannot connect" in result.output
    assert not (fleet_repo / "baselines").exists()


def test_without_dask_workers_say_what_to_install(fleet_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    result = CliRunner().invoke(cli.main, ["fit", "--root", str(fleet_repo), "--workers", "2"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].endswith("pip install 'driftgate[fleet]'"), result.output


def test_a_serial_fit_does_not_import_dask(fleet_repo: Path) -> None:
    code = ("import sys; from pathlib import Path; from driftgate import pipeline; "
            f"root = Path({str(fleet_repo)!r}); pipeline.fit(root, root / 'specs', 'fraud-scorer'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (fleet_repo / "baselines" / "fraud-scorer.yaml").is_file()


def test_a_problems_error_survives_the_trip_from_a_worker() -> None:
    """pickle alone would rebuild a ProblemsError from its message (its constructor takes problems)."""
    import pickle

    from driftgate.errors import Problem, SpecError

    exc = SpecError([Problem("specs/a.yaml", 3, 5, "signals[0]", "expected a name")], hint="see docs/spec.md")
    payload = (type(exc), exc.args, dict(vars(exc)))  # what fleet._task returns for it
    back = fleet._revive(*pickle.loads(pickle.dumps(payload)))
    assert type(back) is SpecError
    assert back.render() == exc.render() and back.problems == exc.problems
