"""An installed driftgate works from any directory: the templates ship inside the package.

The package is built with pip from a clean copy of the checkout (so the build leaves no build/ or
*.egg-info in the checkout) and installed with ``--target`` into a temporary site directory; it is
then run with ``PYTHONPATH=<site>`` only, from a directory that does not contain the checkout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCE_PARTS = ("pyproject.toml", "README.md", "gen", "templates")


def _can_build_without_isolation() -> bool:
    """pyproject.toml asks for setuptools>=68 and wheel; without them --no-build-isolation cannot work."""
    if importlib.util.find_spec("wheel") is None or importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= 68


def _pip_install(source: Path, site: Path) -> None:
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
            "--target", str(site)]
    attempts = [[*base, "--no-build-isolation", str(source)], [*base, str(source)]]
    if not _can_build_without_isolation():
        attempts = attempts[1:]
    errors = []
    for cmd in attempts:
        shutil.rmtree(site, ignore_errors=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=source)
        if proc.returncode == 0:
            return
        errors.append(f"$ {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    pytest.fail("pip could not build and install driftgate:\n" + "\n".join(errors))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    source.mkdir()
    for part in SOURCE_PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / part, source / part)
    site = base / "site"
    _pip_install(source, site)
    shutil.rmtree(source)  # nothing may be read from the source tree after the install
    cwd = base / "elsewhere"
    cwd.mkdir()
    infra = base / "infra"
    for part in ("specs", "baselines"):
        shutil.copytree(REPO / part, infra / part)
    return {"site": site, "cwd": cwd, "infra": infra}


def _run(installed: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(installed["site"])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=installed["cwd"],
                          timeout=120)


def test_cwd_is_outside_the_checkout(installed: dict[str, Path]) -> None:
    assert REPO not in installed["cwd"].resolve().parents
    assert not (installed["cwd"] / "templates").exists()
    assert not (installed["site"] / "templates").exists(), "templates must live inside the gen package"
    assert not (installed["site"].parent / "templates").exists(), "no checkout-style fallback next to the site"


def test_gen_is_imported_from_the_install(installed: dict[str, Path]) -> None:
    # find_spec resolves exactly what ``import`` would load, without importing the heavy dependencies again
    code = ("import importlib.util as u; "
            "print(*(u.find_spec(m).origin for m in ('gen', 'driftgate.cli', 'driftgate.render.env', 'driftgate.templates')))")
    proc = _run(installed, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == 4
    site = installed["site"].resolve()
    for line in proc.stdout.split():
        path = Path(line).resolve()
        assert site in path.parents, f"{path} is not under {site}"
        assert REPO not in path.parents


def test_installed_help(installed: dict[str, Path]) -> None:
    proc = _run(installed, "-m", "driftgate", "--help")
    assert proc.returncode == 0, proc.stderr
    for name in ("fit", "render", "gen", "check", "validate"):
        assert name in proc.stdout


def test_installed_package_ships_the_templates(installed: dict[str, Path]) -> None:
    templates = installed["site"] / "gen" / "templates"
    shipped = sorted(p.relative_to(templates).as_posix() for p in templates.rglob("*.j2"))
    expected = sorted(p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*.j2"))
    assert expected, "the checkout has templates"
    assert any(name.startswith("argo/") for name in expected)
    assert shipped == expected
    for name in expected:
        assert (templates / name).read_bytes() == (REPO / "templates" / name).read_bytes()


def test_installed_render_matches_the_committed_tree(installed: dict[str, Path]) -> None:
    infra = installed["infra"]
    proc = _run(installed, "-m", "driftgate", "render", "--root", str(infra))
    assert proc.returncode == 0, proc.stderr[-4000:]
    rendered = {p.relative_to(infra).as_posix(): p.read_bytes()
                for p in sorted((infra / "generated").rglob("*")) if p.is_file()}
    committed = {p.relative_to(REPO).as_posix(): p.read_bytes()
                 for p in sorted((REPO / "generated").rglob("*")) if p.is_file()}
    assert sorted(rendered) == sorted(committed)
    for rel, data in committed.items():
        assert rendered[rel] == data, f"{rel} differs from the committed file"
