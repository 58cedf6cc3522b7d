"""Shared fixtures: the repository, a helper that writes ``{path: text}`` trees, tool lookup."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import fetch_crds  # noqa: E402
import tools as toolset  # noqa: E402


def _crd_dir() -> Path:
    """The upstream CRD schemas the suite validates against, never skipped.

    ``$DRIFTGATE_CRDS`` when set (``make test`` sets it), else fetched from the Go module proxy into
    ``.tools/crds`` (scripts/fetch_crds.py). Nothing beside the repository is used."""
    named = os.environ.get("DRIFTGATE_CRDS")
    if named:
        return Path(named)
    try:
        return fetch_crds.fetch(REPO / ".tools" / "crds")
    except SystemExit as exc:
        raise pytest.UsageError(f"no CRD schemas for the tests: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    os.environ["DRIFTGATE_CRDS"] = str(_crd_dir())
    # Every render the tests run (in process and through the CLI) parses the objects driftgate validates as
    # built (driftgate.validate.crd.built_documents) with the real loader and fails on any difference.
    os.environ["DRIFTGATE_CHECK_BUILT"] = "1"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def write_tree(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def write(files: dict[str, str]) -> Path:
        for rel, text in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return tmp_path

    return write


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (make tools)")
    pytest.skip(f"{what} not installed (run 'make tools'); this test fails instead of skipping under CI=true")


def tool(name: str, flavour: str | None = None) -> str:
    """Path of a required external tool (of one flavour, e.g. ``prometheus-3``, when given). Under CI a
    missing tool fails the test; locally it skips."""
    if flavour is not None:
        path = toolset.FLAVOURS[flavour][name]
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        _missing(f"{name} of {flavour} ({path})")
    found = shutil.which(name)
    if found:
        return found
    _missing(name)
    raise AssertionError("unreachable")


PROMETHEUS_FLAVOURS = ("prometheus-2", "prometheus-3")
ALERTMANAGER_FLAVOURS = tuple(f for f in toolset.FLAVOURS if f.startswith("alertmanager-"))


@dataclass(frozen=True)
class Prom:
    """One Prometheus release's promtool and server (the suite runs on 2.x and 3.x)."""

    flavour: str

    @property
    def promtool(self) -> str:
        return tool("promtool", self.flavour)

    @property
    def server(self) -> str:
        return tool("prometheus", self.flavour)

    @property
    def major(self) -> int:
        return int(self.flavour.rsplit("-", 1)[1])


@pytest.fixture(params=PROMETHEUS_FLAVOURS, scope="session")
def prom(request: pytest.FixtureRequest) -> Prom:
    return Prom(request.param)


@pytest.fixture(params=ALERTMANAGER_FLAVOURS, scope="session")
def amtool(request: pytest.FixtureRequest) -> str:
    return tool("amtool", request.param)


@pytest.fixture(scope="session")
def example_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's exports (not committed: ``make gen`` makes them with a seeded script); made here
    once per session when this checkout has none."""
    import subprocess

    if (REPO / "exports" / ".stamp").is_file():
        return REPO / "exports"
    out = tmp_path_factory.mktemp("example") / "exports"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_exports.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=900)
    return out


def edited_examples(root: Path, exports: Path, edit: Callable[[str], str], model: str = "reco-ranker") -> Path:
    """A copy of the examples at ``root`` (specs, baselines, the exports) with ``model``'s spec text passed
    through ``edit``, refitted and rendered: a repository to test a spec change in."""
    from driftgate import pipeline

    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, root / part)
    shutil.copytree(exports, root / "exports")
    spec = root / f"specs/{model}.yaml"
    spec.write_text(edit(spec.read_text()))
    pipeline.fit(root, root / "specs", model)
    pipeline.render(root, root / "specs")
    return root


def promtool_test_rules(promtool: str, tmp_path: Path, rules: str, series: list[dict[str, str]],
                        tests: list[dict[str, object]]) -> None:
    """``promtool test rules`` of ``tests`` over ``series`` against a rendered rule file ``rules``, evaluated every
    5 minutes instead of every minute (a day of history stays cheap); fails with promtool's output."""
    import subprocess

    import yaml

    (tmp_path / "r.yaml").write_text(rules.replace('interval: "1m"', 'interval: "5m"'))
    doc = {"rule_files": ["r.yaml"], "evaluation_interval": "5m",
           "tests": [{"interval": "5m", "input_series": series, "promql_expr_test": tests}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc, width=1_000_000))
    result = subprocess.run([promtool, "test", "rules", str(tmp_path / "t.yaml")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
