"""The generated tree is replaced as a whole or not at all, even when the process is killed.

:func:`driftgate.render.output.write` stages the complete new directory beside the live one and swaps
the two in one system call (see its module docstring). These tests kill a writer at every step,
with ``SIGKILL`` in a child process (nothing runs after it: no ``finally``, no cleanup), and check
that the live tree is then byte-identical to the previous one (same bytes, modification times and
inodes) or, once the swap happened, exactly the new one; and that the next run cleans up. They also
check that hand-edited files are never overwritten and that pinned thresholds in specs are never
changed by ``driftgate gen``.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate.errors import OutputError
from driftgate.render import output
from driftgate.render.env import header
from tests.conftest import REPO
from tests.test_corpus import make_pristine, run_cli

HDR = header(["specs/demo.yaml", "baselines/demo.yaml"])
MD = header(["specs/demo.yaml"], "<!--")
PNG = b"\x89PNG\r\n\x1a\n" + b"tEXtDescription\x00" + f"{output.HEADER_MARK} from specs/demo.yaml".encode()

OLD: dict[str, bytes] = {
    "generated/argo/a.yaml": (HDR + "kind: AnalysisTemplate\nold: true\n").encode(),
    "generated/argo/b.yaml": (HDR + "kind: AnalysisTemplate\nsame: true\n").encode(),
    "generated/plans/a.md": (MD + "# old plan\n").encode(),
    "generated/plans/a/pic.png": PNG + b"old pixels",
    "generated/plans/a/same.png": PNG + b"same pixels",
    "generated/prometheus/gone.yaml": (HDR + "groups: []\n").encode(),  # an orphan: pruned
    "generated/argo/NOTES.md": b"Hand-written notes next to the generated files.\n",  # never touched
}
NEW: dict[str, bytes] = {
    "generated/argo/a.yaml": (HDR + "kind: AnalysisTemplate\nold: false\n").encode(),
    "generated/argo/b.yaml": OLD["generated/argo/b.yaml"],
    "generated/plans/a.md": (MD + "# new plan\n").encode(),
    "generated/plans/a/pic.png": PNG + b"new pixels",
    "generated/plans/a/same.png": OLD["generated/plans/a/same.png"],
    "generated/terraform/new/a.tf": (HDR + "resource {}\n").encode(),
}


Entry = tuple[str, bytes, int, int]


def snapshot(root: Path) -> dict[str, Entry]:
    """Every entry under ``root``: kind, bytes (or link target), modification time, inode."""
    out: dict[str, Entry] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path).encode(), st.st_mtime_ns, st.st_ino)
            elif path.is_dir():
                out[rel] = ("dir", b"", st.st_mtime_ns, st.st_ino)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mtime_ns, st.st_ino)
    return out


def contents(root: Path) -> dict[str, bytes]:
    return {rel: e[1] for rel, e in snapshot(root).items() if e[0] == "file"}


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith((output.STAGING, output.PREVIOUS)))


@pytest.fixture
def old_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel, data in OLD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "generated/keep").mkdir()  # an empty directory someone made
    (root / "generated/argo/link.yaml").symlink_to("../../specs/demo.yaml")  # a symlink someone made
    (root / "specs").mkdir()
    (root / "specs/demo.yaml").write_text("model: demo\n")
    past = 1_600_000_000
    for path in (root / "generated").rglob("*"):
        if not path.is_symlink():
            os.utime(path, (past, past))
    return root


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus base repository, fitted and rendered (shared with tests/test_corpus.py)."""
    return make_pristine(tmp_path_factory)


def expected_new(root: Path) -> dict[str, bytes]:
    want = {rel.removeprefix("generated/"): data for rel, data in NEW.items()}
    want["argo/NOTES.md"] = OLD["generated/argo/NOTES.md"]
    return want


# --------------------------------------------------------------------------------------------
# In process


def test_write_swaps_in_the_complete_tree(old_tree: Path) -> None:
    before = snapshot(old_tree / "generated")
    changes = output.write(old_tree, dict(NEW))

    assert changes.missing == ("generated/terraform/new/a.tf",)
    assert set(changes.stale) == {"generated/argo/a.yaml", "generated/plans/a.md", "generated/plans/a/pic.png"}
    assert changes.orphaned == ("generated/prometheus/gone.yaml",)
    after = snapshot(old_tree / "generated")
    assert contents(old_tree / "generated") == expected_new(old_tree)
    # Unchanged and hand-made files are the very same files (same inode and time), not copies.
    for rel in ("argo/b.yaml", "plans/a/same.png", "argo/NOTES.md"):
        assert after[rel] == before[rel], rel
    assert after["argo/link.yaml"][:2] == ("link", b"../../specs/demo.yaml")
    assert after["keep"][0] == "dir", "an empty directory someone made is kept"
    assert "prometheus" not in after, "a directory that only held pruned files goes with them"
    assert leftovers(old_tree) == []
    assert output.write(old_tree, dict(NEW)).clean


def test_the_swap_is_one_exchange(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = output._exchange

    def spy(a: Path, b: Path) -> None:
        calls.append((Path(a).name, Path(b).name))
        real(a, b)

    monkeypatch.setattr(output, "_exchange", spy)
    output.write(old_tree, dict(NEW))
    assert calls == [(f"{output.STAGING}generated", "generated")]


@pytest.mark.parametrize("point", ["atomic_write", "_link", "_validate", "_exchange", "_fsync_dir"])
def test_a_failure_before_the_swap_changes_nothing(old_tree: Path, monkeypatch: pytest.MonkeyPatch,
                                                   point: str) -> None:
    before = snapshot(old_tree)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, f"simulated failure in {point}")

    monkeypatch.setattr(output, point, fail)
    # The OSError reaches the user as one OutputError (exit 1) naming the reason, not a traceback.
    with pytest.raises(OutputError, match=r"simulated failure in .*; nothing was changed"):
        output.write(old_tree, dict(NEW))
    assert snapshot(old_tree) == before
    assert leftovers(old_tree) == []


def test_an_interrupt_while_staging_changes_nothing(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(old_tree)
    real, calls = output.atomic_write, []

    def interrupted(path: Path, text: Any) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, text)

    monkeypatch.setattr(output, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        output.write(old_tree, dict(NEW))
    assert snapshot(old_tree) == before


def test_a_file_saved_while_staging_aborts_the_write(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = output._stage
    edited = old_tree / "generated/argo/NOTES.md"

    def stage_then_edit(*args: Any) -> None:
        real(*args)
        tmp = edited.with_suffix(".swp")
        tmp.write_text("Edited while driftgate was running.\n")
        os.replace(tmp, edited)  # how editors save: a new file renamed over the old one

    monkeypatch.setattr(output, "_stage", stage_then_edit)
    with pytest.raises(OutputError, match="changed while driftgate was writing it"):
        output.write(old_tree, dict(NEW))
    assert edited.read_text() == "Edited while driftgate was running.\n"
    assert contents(old_tree / "generated")["argo/a.yaml"] == OLD["generated/argo/a.yaml"]
    assert leftovers(old_tree) == []


def test_fallback_without_an_exchange(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(a: Path, b: Path) -> None:
        raise OSError(errno.EINVAL, "RENAME_EXCHANGE not supported")

    monkeypatch.setattr(output, "_exchange", unsupported)
    output.write(old_tree, dict(NEW))
    assert contents(old_tree / "generated") == expected_new(old_tree)
    assert leftovers(old_tree) == []


def test_first_write_into_an_empty_repository(tmp_path: Path) -> None:
    changes = output.write(tmp_path, dict(NEW))
    assert set(changes.missing) == set(NEW)
    assert contents(tmp_path / "generated") == {rel.removeprefix("generated/"): d for rel, d in NEW.items()}
    assert leftovers(tmp_path) == []


def test_prune_false_keeps_everything_else_of_the_directory(tmp_path: Path) -> None:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines/other.yaml").write_text("# " + output.HEADER_MARK + "\nmodel: other\n")
    (tmp_path / "baselines/README.md").write_text("reviewed by the risk team\n")
    output.write(tmp_path, {"baselines/demo.yaml": "# " + output.HEADER_MARK + "\nmodel: demo\n"}, prune=False)
    assert sorted(p.name for p in (tmp_path / "baselines").iterdir()) == ["README.md", "demo.yaml", "other.yaml"]


# --------------------------------------------------------------------------------------------
# Killed: SIGKILL in a child process at each step of a write

CHILD = r"""
import base64, errno, json, os, signal, sys
sys.path.insert(0, sys.argv[1])
from driftgate.render import output

root, files_json, point, when, nth, fallback = sys.argv[2:8]
files = {k: base64.b64decode(v) for k, v in json.loads(open(files_json).read()).items()}
calls = {"n": 0}

def kill(name, real):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        hit = calls["n"] == int(nth)
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

if fallback == "1":
    def unsupported(a, b):
        raise OSError(errno.EINVAL, "RENAME_EXCHANGE not supported")
    output._exchange = unsupported
if point == "os.rename":
    os.rename = kill(point, os.rename)
else:
    setattr(output, point, kill(point, getattr(output, point)))
output.write(__import__("pathlib").Path(root), files)
print("finished without being killed")
"""

KILL_POINTS = [
    # (function, before/after its n-th call, n, fallback without exchange, what the live tree then is)
    ("atomic_write", "before", 1, False, "old"),
    ("atomic_write", "after", 2, False, "old"),
    ("_link", "after", 1, False, "old"),
    ("_validate", "before", 1, False, "old"),
    ("_exchange", "before", 1, False, "old"),
    ("_exchange", "after", 1, False, "new"),
    ("os.rename", "after", 1, True, "missing"),  # between the two renames of the fallback
    ("os.rename", "after", 2, True, "new"),
]


@pytest.mark.parametrize(("point", "when", "nth", "fallback", "state"), KILL_POINTS,
                         ids=[f"{p}-{w}-{n}{'-fallback' if f else ''}" for p, w, n, f, _ in KILL_POINTS])
def test_killed_mid_write(old_tree: Path, tmp_path: Path, point: str, when: str, nth: int, fallback: bool,
                          state: str) -> None:
    before = snapshot(old_tree / "generated")
    files_json = tmp_path / "files.json"
    files_json.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in NEW.items()}))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(old_tree), str(files_json), point, when,
                           str(nth), "1" if fallback else "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed: {proc.returncode}\n{proc.stderr}"

    live = old_tree / "generated"
    if state == "old":
        assert snapshot(live) == before, "a kill before the swap must leave the previous tree byte-identical"
    elif state == "new":
        assert contents(live) == expected_new(old_tree), "after the swap the tree is the complete new one"
    else:
        assert not live.exists() and (old_tree / f"{output.PREVIOUS}generated").is_dir()
    assert leftovers(old_tree), "the killed run leaves its staging (or previous) directory behind"

    # Any later command recovers first: check (diff) rolls back or cleans up, and never mixes trees.
    output.diff(old_tree, dict(NEW))
    assert leftovers(old_tree) == []
    if state in ("old", "missing"):
        assert snapshot(live) == before, "recovery restores the previous tree byte-identically"
    else:
        assert contents(live) == expected_new(old_tree)
    output.write(old_tree, dict(NEW))
    assert contents(live) == expected_new(old_tree)
    assert leftovers(old_tree) == []


# --------------------------------------------------------------------------------------------
# The real command


SLOW_RENDER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from driftgate.render import output
from driftgate.cli import main

marker = Path(sys.argv[3])
real = output.atomic_write

def slow(path, text):
    real(path, text)
    marker.write_text(str(path))  # staging has started: the parent may kill us now
    time.sleep(0.5)

output.atomic_write = slow
main(["render", "--root", sys.argv[2]])
"""


def change_authority(root: Path) -> None:
    spec = root / "specs/demo.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("name: Demo on-call lead", "name: Demo night lead"),
                    encoding="utf-8")


def test_render_killed_by_a_signal_leaves_the_tree_byte_identical(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    reference = tmp_path / "reference"
    shutil.copytree(pristine, reference, symlinks=True)
    change_authority(root)
    change_authority(reference)
    assert run_cli(["render", "--root", str(reference)])[0] == 0
    before = snapshot(root / "generated")
    marker = tmp_path / "staging-started"

    child = subprocess.Popen([sys.executable, "-c", SLOW_RENDER, str(REPO), str(root), str(marker)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "staging never started"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert snapshot(root / "generated") == before
    assert leftovers(root) == [f"{output.STAGING}generated"]

    code, _, err = run_cli(["render", "--root", str(root)])
    assert code == 0, err
    assert leftovers(root) == []
    assert contents(root / "generated") == contents(reference / "generated")
    assert run_cli(["check", "--root", str(root)])[0] == 0


def test_a_hand_edited_file_is_never_overwritten(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    argo = root / "generated/argo/demo.yaml"
    argo.write_text(argo.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")  # header removed
    change_authority(root)  # the render would now change that file
    before = snapshot(root)

    code, _, err = run_cli(["render", "--root", str(root)])
    assert code == 1
    assert "refusing to overwrite files that driftgate did not generate" in err
    assert "generated/argo/demo.yaml" in err
    assert snapshot(root) == before


def test_gen_never_changes_a_pinned_threshold(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    spec = root / "specs/demo.yaml"
    text = spec.read_text(encoding="utf-8").replace(
        "    denominator: demo_requests_total\n",
        "    denominator: demo_requests_total\n    threshold: {auto: 0.05, manual: 0.04}   # pinned by hand\n")
    spec.write_text(text, encoding="utf-8")
    os.utime(spec, (1_600_000_000, 1_600_000_000))
    for args in (["gen"], ["gen", "--force"]):
        code, _, err = run_cli([*args, "--root", str(root)])
        assert code == 0, err
        assert spec.read_text(encoding="utf-8") == text, "a pinned threshold was changed"
        assert spec.stat().st_mtime == 1_600_000_000, "the spec was rewritten"
    # The pinned values are what the alerts compare (Argo reads the alerts' state).
    rules = yaml.safe_load((root / "generated/prometheus/rules/demo.rules.yaml").read_text(encoding="utf-8"))
    alerts = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") and r["labels"].get("signal") ==
              "error_ratio" and r["labels"].get("window") == "fast" and r["labels"]["rollback"] != "none"]
    by_tier = {r["labels"]["rollback"]: r["expr"] for r in alerts}
    assert "> 0.05)" in by_tier["auto"] and "> 0.05)" in by_tier["drift"]
    assert "> 0.04)" in by_tier["manual"]
