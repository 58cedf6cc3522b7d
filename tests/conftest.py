"""Shared fixtures: the repository, a helper that writes ``{path: text}`` trees, tool lookup."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


def tool(name: str) -> str:
    """Path of a required external tool. Under CI a missing tool fails the test; locally it skips."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI: install Debian's prometheus / prometheus-alertmanager "
                    f"(make tools)")
    pytest.skip(f"{name} not installed (run 'make tools'); this test fails instead of skipping under CI=true")
