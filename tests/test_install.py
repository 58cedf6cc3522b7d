"""driftgate installed as a user installs it: a clean virtual environment, dependencies from the package
index (no constraints file, no ``--no-deps``), then run from a directory that is not the checkout.

* ``pip install <checkout>`` gives a working ``driftgate`` (``--help``, ``gen`` on a copy of the example,
  ``check``) with the runtime dependencies it declares and none of the optional ones;
* the import package is ``driftgate`` (the source folder ``gen/`` is mapped in pyproject.toml) and
  nothing called ``gen`` lands in site-packages; the templates ship inside it;
* without matplotlib, pictures whose inputs did not change are reused, and one that must be drawn is a
  one-line "pip install 'driftgate[plots]'" error; without pyarrow, a CSV export is a one-line
  "pip install 'driftgate[tabular]'" error;
* ``check`` is green on the untouched copy with the pinned matplotlib (the dev environment, in
  test_generated.py), with no matplotlib, and with the newest matplotlib from the index; still red when
  the evidence a picture is drawn from changes;
* the pre-commit hooks of ``.pre-commit-hooks.yaml`` install and run from a scratch git repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCE_PARTS = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "gen", "templates")
TIMEOUT = 1800


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_CONSTRAINT", "PIP_REQUIRE_VIRTUALENV",
            "DRIFTGATE_CRDS", "DRIFTGATE_REFERENCE_DIR", "PRE_COMMIT_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=_clean_env(**env), timeout=timeout)


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"$ {' '.join(proc.args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_source(target: Path) -> Path:
    target.mkdir(parents=True)
    for part in SOURCE_PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / part, target / part)
    return target


def example_exports(target: Path) -> None:
    """The example's exports (not committed: a seeded script makes them), as a user would have them."""
    if (REPO / "exports" / ".stamp").is_file():
        shutil.copytree(REPO / "exports", target, ignore=shutil.ignore_patterns(".stamp"))
        return
    _ok(subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_exports.py"), "--out", str(target)],
                       capture_output=True, text=True, timeout=600))


def copy_example(target: Path, exports: Path) -> Path:
    for part in ("specs", "baselines", "generated"):
        shutil.copytree(REPO / part, target / part)
    shutil.copytree(exports, target / "exports")
    return target


@dataclass(frozen=True)
class Venv:
    root: Path
    cwd: Path
    exports: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def driftgate(self) -> str:
        return str(self.root / "bin" / "driftgate")

    def site(self) -> Path:
        out = _ok(_run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], self.cwd))
        return Path(out.stdout.strip())

    def run(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return _run([self.driftgate, *args], self.cwd, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    base = tmp_path_factory.mktemp("install")
    source = copy_source(base / "src")
    root = base / "venv"
    _ok(_run([sys.executable, "-m", "venv", str(root)], base))
    _ok(_run([str(root / "bin" / "python"), "-m", "pip", "install", "--no-input", str(source)], base,
             timeout=TIMEOUT))
    shutil.rmtree(source)  # nothing may be read from the source tree after the install
    cwd = base / "elsewhere"
    cwd.mkdir()
    exports = base / "exports"
    example_exports(exports)
    yield Venv(root, cwd, exports)


def test_nothing_named_gen_is_installed(venv: Venv) -> None:
    site = venv.site()
    assert (site / "driftgate" / "cli.py").is_file()
    assert not (site / "gen").exists(), "a top-level 'gen' package would collide in any shared image"
    assert not (site / "templates").exists(), "templates must live inside the driftgate package"
    top = (next(site.glob("driftgate-*.dist-info")) / "top_level.txt")
    if top.is_file():
        assert top.read_text().split() == ["driftgate"]
    record = (next(site.glob("driftgate-*.dist-info")) / "RECORD").read_text()
    assert not any(line.startswith(("gen/", "templates/")) for line in record.splitlines())


def test_optional_dependencies_are_not_installed(venv: Venv) -> None:
    proc = _ok(_run([venv.python, "-c", "import importlib.util as u; "
                     "print(u.find_spec('matplotlib') is None, u.find_spec('pyarrow') is None)"], venv.cwd))
    assert proc.stdout.split() == ["True", "True"]


def test_installed_help_from_another_directory(venv: Venv) -> None:
    proc = _ok(venv.run("--help"))
    for name in ("fit", "render", "gen", "check", "validate", "review", "export"):
        assert name in proc.stdout
    module = _ok(_run([venv.python, "-m", "driftgate", "--help"], venv.cwd)).stdout
    assert module.split("\n", 1)[1] == proc.stdout.split("\n", 1)[1]  # the same commands, another "Usage:" line


def test_installed_package_ships_the_templates(venv: Venv) -> None:
    templates = venv.site() / "driftgate" / "templates"
    shipped = sorted(p.relative_to(templates).as_posix() for p in templates.rglob("*.j2"))
    expected = sorted(p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*.j2"))
    assert expected and shipped == expected
    for name in expected:
        assert (templates / name).read_bytes() == (REPO / "templates" / name).read_bytes()


def test_gen_and_check_on_a_copy_of_the_example(venv: Venv, tmp_path: Path) -> None:
    infra = copy_example(tmp_path / "infra", venv.exports)
    gen = _ok(venv.run("gen", "--root", str(infra)))
    assert "baselines/reco-ranker.yaml: unchanged" in gen.stdout
    assert "generated/ is up to date" in gen.stdout
    # No CRD schemas in a bare infra repository: one line says validation was skipped and why.
    skipped = [line for line in gen.stderr.splitlines() if "schema validation" in line]
    assert len(skipped) == 1 and "skipped" in skipped[0] and "--crds" in skipped[0]
    for rel in sorted(p.relative_to(REPO).as_posix() for p in (REPO / "generated").rglob("*") if p.is_file()):
        assert (infra / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    check = _ok(venv.run("check", "--root", str(infra)))
    assert "generated/ is up to date" in check.stdout
    # --strict turns the skipped validation into a failure; CRD files found in crds/ switch it on.
    strict = venv.run("check", "--root", str(infra), "--strict")
    assert strict.returncode == 1 and "schema validation" in strict.stderr
    crds = Path(os.environ["DRIFTGATE_CRDS"])
    shutil.copytree(crds, infra / "crds")
    found = venv.run("check", "--root", str(infra))
    assert found.returncode == 0 and "schema validation" not in found.stderr, found.stderr


def _move_a_picture(infra: Path) -> str:
    """Change the evidence one picture is drawn from (and nothing else): its key changes."""
    path = infra / "baselines" / "reco-ranker.evidence.json"
    data = json.loads(path.read_text())
    values = data["signals"]["error_ratio"]["fast"]["values"]
    i = next(i for i, v in enumerate(values) if v is not None)
    values[i] = values[i] * 1.5 + 1e-3
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return "generated/plans/reco-ranker/error_ratio.png"


def test_a_picture_that_must_be_drawn_needs_matplotlib(venv: Venv, tmp_path: Path) -> None:
    infra = copy_example(tmp_path / "infra", venv.exports)
    picture = _move_a_picture(infra)
    check = venv.run("check", "--root", str(infra))
    assert check.returncode == 1 and f"{picture}: stale" in check.stdout, check.stdout + check.stderr
    before = {p: p.read_bytes() for p in (infra / "generated").rglob("*") if p.is_file()}
    render = venv.run("render", "--root", str(infra))
    assert render.returncode == 1
    lines = [line for line in render.stderr.splitlines() if line.strip()]
    assert any("pip install 'driftgate[plots]'" in line for line in lines), render.stderr
    assert "Traceback" not in render.stderr
    assert {p: p.read_bytes() for p in (infra / "generated").rglob("*") if p.is_file()} == before


def test_a_csv_export_needs_pyarrow(venv: Venv, tmp_path: Path) -> None:
    infra = copy_example(tmp_path / "infra", venv.exports)
    spec = infra / "specs" / "reco-ranker.yaml"
    (infra / "exports" / "reco-ranker" / "extra.csv").write_text("timestamp,metric,labels,value\n")
    text = spec.read_text().replace("  exports:\n", "  exports:\n    - exports/reco-ranker/extra.csv\n", 1)
    assert "extra.csv" in text
    spec.write_text(text)
    fit = venv.run("fit", "--root", str(infra), "--force")
    assert fit.returncode == 1, fit.stdout + fit.stderr
    assert "pip install 'driftgate[tabular]'" in fit.stderr and "extra.csv" in fit.stderr
    assert "Traceback" not in fit.stderr


def test_check_with_the_newest_matplotlib(venv: Venv, tmp_path: Path) -> None:
    """The pictures were drawn with the pinned matplotlib; the newest one must not turn check red, and a
    picture whose inputs changed is still caught, then drawn by the newest release."""
    _ok(_run([venv.python, "-m", "pip", "install", "--no-input", "--upgrade", "matplotlib"], venv.cwd,
             timeout=TIMEOUT))
    version = _ok(_run([venv.python, "-c", "import matplotlib; print(matplotlib.__version__)"], venv.cwd))
    pinned = _ok(_run([sys.executable, "-c", "import matplotlib; print(matplotlib.__version__)"], venv.cwd))
    infra = copy_example(tmp_path / "infra", venv.exports)
    assert _ok(venv.run("check", "--root", str(infra))).stdout.strip().endswith("generated/ is up to date")
    # The same untouched copy is green with the pinned matplotlib of the dev environment (constraints.txt).
    dev = _ok(subprocess.run([sys.executable, "-m", "driftgate", "check", "--root", str(infra)], capture_output=True,
                             text=True, timeout=300))
    assert dev.stdout.strip().endswith("generated/ is up to date"), (pinned.stdout, version.stdout)
    picture = _move_a_picture(infra)
    assert f"{picture}: stale" in venv.run("check", "--root", str(infra)).stdout
    _ok(venv.run("render", "--root", str(infra)))
    assert _ok(venv.run("check", "--root", str(infra))).returncode == 0
    drawn = (infra / picture).read_bytes()
    assert drawn != (REPO / picture).read_bytes(), f"matplotlib {version.stdout.strip()} drew the same bytes"
    # The edit of one signal's evidence redrew that signal's picture only.
    others = [p for p in (REPO / "generated/plans/reco-ranker").glob("*.png") if p.name != Path(picture).name]
    assert others and all((infra / p.relative_to(REPO)).read_bytes() == p.read_bytes() for p in others)


def test_a_picture_edited_by_hand_is_stale(venv: Venv, tmp_path: Path) -> None:
    from driftgate.render import plots

    infra = copy_example(tmp_path / "infra", venv.exports)
    picture = infra / "generated/plans/reco-ranker/score_drift.png"
    data = picture.read_bytes()
    chunks = list(plots.chunks(data))
    assert any(k == b"IDAT" for k, _ in chunks)
    # Same text chunks, other pixels: flip one byte of the compressed image data and fix its CRC.
    import struct
    import zlib

    pos = data.index(b"IDAT")
    length = struct.unpack(">I", data[pos - 4:pos])[0]
    body = bytearray(data[pos + 4:pos + 4 + length])
    body[len(body) // 2] ^= 0xFF
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    picture.write_bytes(data[:pos + 4] + bytes(body) + crc + data[pos + 8 + length:])
    check = venv.run("check", "--root", str(infra))
    assert check.returncode == 1 and "score_drift.png: stale" in check.stdout


# --- pre-commit, as another repository uses it -------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = _clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
                     GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_pre_commit_hooks_in_a_scratch_repository(venv: Venv, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed for the pre-commit test (make tools installs it)")
    hooks_repo = copy_source(tmp_path / "driftgate")
    _git(hooks_repo, "init", "-q", "-b", "main")
    _git(hooks_repo, "add", "-A")
    _git(hooks_repo, "commit", "-q", "-m", "driftgate")
    _git(hooks_repo, "tag", "v0.1.0")
    rev = _git(hooks_repo, "rev-parse", "HEAD")
    infra = copy_example(tmp_path / "infra", venv.exports)
    shutil.rmtree(infra / "exports")
    # One model without provisional warnings, so that `validate --strict` passes; its tree rendered fresh.
    for path in (*(infra / "specs").glob("fraud-scorer*"), *(infra / "baselines").glob("fraud-scorer*")):
        path.unlink()
    shutil.rmtree(infra / "generated")
    _ok(subprocess.run([sys.executable, "-m", "driftgate", "render", "--root", str(infra)], capture_output=True,
                       text=True, timeout=600))
    (infra / ".pre-commit-config.yaml").write_text(textwrap.dedent(f"""\
        repos:
          - repo: {hooks_repo}
            rev: {rev}
            hooks:
              - id: driftgate-check
              - id: driftgate-validate
        """))
    _git(infra, "init", "-q", "-b", "main")
    _git(infra, "add", "-A")
    _git(infra, "commit", "-q", "-m", "infra")
    home = tmp_path / "pre-commit-home"
    pre_commit = [sys.executable, "-m", "pre_commit"]
    run = _run([*pre_commit, "run", "--all-files"], infra, timeout=TIMEOUT, PRE_COMMIT_HOME=str(home))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "driftgate check" in run.stdout and "Passed" in run.stdout
    # A stale generated file fails the hook, naming the file.
    rules = infra / "generated/prometheus/rules/reco-ranker.rules.yaml"
    rules.write_text(rules.read_text().replace("0.5", "0.6", 1))
    _git(infra, "add", "-A")
    stale = _run([*pre_commit, "run", "--all-files"], infra, timeout=TIMEOUT, PRE_COMMIT_HOME=str(home))
    assert stale.returncode == 1 and "reco-ranker.rules.yaml: stale" in stale.stdout, stale.stdout
