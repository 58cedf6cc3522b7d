"""The generated tree is replaced as a whole or not at all, even when the process is killed.

:func:`driftgate.render.output.write` stages only the changed files, commits a write-ahead journal and
renames them in; :func:`~driftgate.render.output.recover` rolls a committed journal forward and discards
an uncommitted one (see its module docstring). These tests kill a writer at every step, with ``SIGKILL``
in a child process (nothing runs after it: no ``finally``, no cleanup), and check that the live tree
is then byte-identical to the previous one (same bytes, modification times and inodes) before the
commit point and, once the next command has recovered, exactly what an uninterrupted write leaves
after it; that unchanged files are never touched; and that the next run cleans up. They also check
that hand-edited files are never overwritten and that pinned thresholds in specs are never changed
by ``driftgate gen``.
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
    return sorted(p.name for p in root.iterdir()
                  if p.name == output.JOURNAL_DIR or p.name.startswith((output.LEGACY_STAGING, output.LEGACY_PREVIOUS)))


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


def shape(root: Path) -> dict[str, tuple[str, bytes]]:
    """What :func:`snapshot` sees without times and inodes: kinds, bytes, link targets."""
    return {rel: e[:2] for rel, e in snapshot(root).items()}


@pytest.fixture
def reference(old_tree: Path, tmp_path: Path) -> dict[str, tuple[str, bytes]]:
    """The tree an uninterrupted write of NEW over a copy of ``old_tree`` leaves."""
    copy = tmp_path / "reference"
    shutil.copytree(old_tree, copy, symlinks=True)
    output.write(copy, dict(NEW))
    return shape(copy / "generated")


# --------------------------------------------------------------------------------------------
# In process


def test_write_puts_in_the_complete_tree(old_tree: Path) -> None:
    before = snapshot(old_tree / "generated")
    changes = output.write(old_tree, dict(NEW))

    assert changes.missing == ("generated/terraform/new/a.tf",)
    assert set(changes.stale) == {"generated/argo/a.yaml", "generated/plans/a.md", "generated/plans/a/pic.png"}
    assert changes.orphaned == ("generated/prometheus/gone.yaml",)
    after = snapshot(old_tree / "generated")
    assert contents(old_tree / "generated") == expected_new(old_tree)
    # Unchanged and hand-made files are the very same files (same inode and time), not copies.
    for rel in ("argo/b.yaml", "plans/a/same.png", "argo/NOTES.md", "argo/link.yaml", "keep"):
        assert after[rel] == before[rel], rel
    assert after["keep"][0] == "dir", "an empty directory someone made is kept"
    assert "prometheus" not in after, "a directory that only held pruned files goes with them"
    assert (old_tree / "generated/terraform/new/a.tf").stat().st_mode & 0o777 == 0o644
    assert leftovers(old_tree) == []
    assert output.write(old_tree, dict(NEW)).clean


def test_a_one_file_change_touches_only_that_file(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output.write(old_tree, dict(NEW))
    before = snapshot(old_tree)
    changed = dict(NEW)
    changed["generated/argo/b.yaml"] = (HDR + "kind: AnalysisTemplate\nsame: false\n").encode()
    staged: list[str] = []
    renamed: list[tuple[str, str]] = []
    real_write, real_replace = output.atomic_write, os.replace

    def spy_write(path: Path, text: Any) -> None:
        staged.append(Path(path).relative_to(old_tree).as_posix())
        real_write(path, text)

    def spy_replace(src: Any, dst: Any) -> None:
        renamed.append((Path(src).relative_to(old_tree).as_posix(), Path(dst).relative_to(old_tree).as_posix()))
        real_replace(src, dst)

    monkeypatch.setattr(output, "atomic_write", spy_write)
    monkeypatch.setattr(output.os, "replace", spy_replace)
    changes = output.write(old_tree, changed)

    assert changes == output.Diff((), ("generated/argo/b.yaml",), ())
    journal = f"{output.JOURNAL_DIR}/{output.JOURNAL}"
    assert staged == [f"{output.JOURNAL_DIR}/000000", journal], "one staged file, then the journal"
    live = [dst for _, dst in renamed if dst.startswith("generated/")]
    assert live == ["generated/argo/b.yaml"], "one rename into the live tree: the changed file"
    after = snapshot(old_tree)
    assert after.pop("generated/argo/b.yaml")[1] == changed["generated/argo/b.yaml"]
    del before["generated/argo/b.yaml"]
    # Every other file keeps its inode and modification time (directories: their inode).
    assert {rel: e for rel, e in after.items() if e[0] != "dir"} == \
        {rel: e for rel, e in before.items() if e[0] != "dir"}
    assert {rel: (e[0], e[3]) for rel, e in after.items()} == {rel: (e[0], e[3]) for rel, e in before.items()}
    assert leftovers(old_tree) == []


@pytest.mark.parametrize("point", ["atomic_write", "_fsync_dir", "_check_unchanged", "_commit"])
def test_a_failure_before_the_commit_changes_nothing(old_tree: Path, monkeypatch: pytest.MonkeyPatch,
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


def failing_apply(monkeypatch: pytest.MonkeyPatch, root: Path, nth: int, error: BaseException) -> None:
    """``os.replace`` raises ``error`` at its ``nth`` rename into the live tree (the apply phase)."""
    real, calls = os.replace, []

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).is_relative_to(root / "generated"):
            calls.append(dst)
            if len(calls) == nth:
                raise error
        real(src, dst)

    monkeypatch.setattr(output.os, "replace", replace)


def test_a_failure_after_the_commit_is_completed_by_the_next_run(old_tree: Path, reference: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    failing_apply(monkeypatch, old_tree, 2, OSError(errno.EIO, "simulated failure", "generated/plans/a.md"))
    with pytest.raises(OutputError, match=r"cannot write generated/plans/a.md: simulated failure; the new files "
                                          r"are committed .* the next driftgate command completes the write") as info:
        output.write(old_tree, dict(NEW))
    assert "nothing was changed" not in str(info.value)
    assert (old_tree / output.JOURNAL_DIR / output.JOURNAL).is_file(), "the committed journal stays"
    monkeypatch.undo()

    assert output.diff(old_tree, dict(NEW)).clean  # recovered first: the write is complete
    assert shape(old_tree / "generated") == reference
    assert leftovers(old_tree) == []


def test_an_interrupt_after_the_commit_is_rolled_forward(old_tree: Path, reference: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    failing_apply(monkeypatch, old_tree, 2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        output.write(old_tree, dict(NEW))
    monkeypatch.undo()
    assert (old_tree / output.JOURNAL_DIR / output.JOURNAL).is_file()
    output.recover(old_tree)
    assert shape(old_tree / "generated") == reference
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
    assert leftovers(old_tree) == []


def save(path: Path, text: str) -> None:
    """How editors save: a new file renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.mark.parametrize("rel", ["generated/argo/a.yaml",  # about to be replaced
                                 "generated/prometheus/gone.yaml",  # about to be pruned
                                 "generated/terraform/new/a.tf"])  # about to be created
def test_a_file_saved_between_diff_and_commit_aborts_the_write(old_tree: Path, monkeypatch: pytest.MonkeyPatch,
                                                               rel: str) -> None:
    real = output._check_unchanged
    edited = old_tree / rel
    text = HDR + "kind: AnalysisTemplate\nsaved: by someone\n"

    def edit_then_check(*args: Any) -> None:
        save(edited, text)  # after the comparison and the staging, before the commit
        real(*args)

    monkeypatch.setattr(output, "_check_unchanged", edit_then_check)
    before = snapshot(old_tree / "generated")
    with pytest.raises(OutputError, match=f"{rel} changed while driftgate was writing it .*; nothing was changed"):
        output.write(old_tree, dict(NEW))
    assert edited.read_text() == text
    after = snapshot(old_tree / "generated")
    # Every other file as it was (bytes, time, inode); folders the same folders (the save touched one).
    mine = rel.removeprefix("generated/")
    for path in {*before, *after} - {mine, "terraform", "terraform/new"}:
        was, now = before.get(path), after.get(path)
        assert (was and was[0], was and was[3]) == (now and now[0], now and now[3]), path
        if was and was[0] != "dir":
            assert now == was, path
    assert leftovers(old_tree) == []


def test_a_file_not_written_may_be_saved_meanwhile(old_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the paths the write replaces or deletes are checked: an edit of a hand-written file during the
    write is kept, and the write goes on (the old whole-tree swap had to abort)."""
    real = output._check_unchanged
    notes = old_tree / "generated/argo/NOTES.md"

    def edit_then_check(*args: Any) -> None:
        save(notes, "Edited while driftgate was running.\n")
        real(*args)

    monkeypatch.setattr(output, "_check_unchanged", edit_then_check)
    output.write(old_tree, dict(NEW))
    assert notes.read_text() == "Edited while driftgate was running.\n"
    assert {rel: d for rel, d in contents(old_tree / "generated").items() if rel != "argo/NOTES.md"} == \
        {rel: d for rel, d in expected_new(old_tree).items() if rel != "argo/NOTES.md"}


def test_pruning_removes_emptied_folders_only(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    files = {"generated/a/b/x.yaml": HDR + "x: 1\n", "generated/a/c/y.yaml": HDR + "y: 1\n",
             "generated/d/z.yaml": HDR + "z: 1\n", "generated/keep.yaml": HDR + "k: 1\n"}
    output.write(root, files)
    (root / "generated/a/c/mine.md").write_text("no header: never touched\n")
    (root / "generated/d/empty").mkdir()  # an empty folder someone made: it stays, and so does d/
    (root / "generated/e").mkdir()
    mine = snapshot(root / "generated")["a/c/mine.md"]

    changes = output.write(root, {"generated/keep.yaml": files["generated/keep.yaml"]})

    assert changes.orphaned == ("generated/a/b/x.yaml", "generated/a/c/y.yaml", "generated/d/z.yaml")
    after = snapshot(root / "generated")
    assert sorted(after) == ["a", "a/c", "a/c/mine.md", "d", "d/empty", "e", "keep.yaml"]
    assert after["a/c/mine.md"] == mine
    # prune=False: orphans stay and are not reported.
    output.write(root, files)
    assert output.write(root, {"generated/keep.yaml": HDR + "k: 2\n"}, prune=False).orphaned == ()
    assert sorted(contents(root / "generated")) == ["a/b/x.yaml", "a/c/mine.md", "a/c/y.yaml", "d/z.yaml", "keep.yaml"]


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


def test_a_file_directly_under_the_root_goes_through_the_journal(tmp_path: Path) -> None:
    output.write(tmp_path, {"top.yaml": HDR + "a: 1\n", **NEW})
    assert (tmp_path / "top.yaml").read_text() == HDR + "a: 1\n"
    changes = output.write(tmp_path, {"top.yaml": HDR + "a: 2\n", **NEW})
    assert changes.stale == ("top.yaml",)
    assert (tmp_path / "top.yaml").read_text() == HDR + "a: 2\n"
    assert leftovers(tmp_path) == []


def test_a_top_level_directory_turned_into_a_symlink_is_written_file_by_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """preflight refuses a symlinked ``generated/``; one made after it (a race) is written through with
    atomic_write, outside the journal, as before."""
    root, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    real = output.preflight

    def then_link(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if not (root / "generated").exists():
            (root / "generated").symlink_to(elsewhere)
        return found

    monkeypatch.setattr(output, "preflight", then_link)
    output.write(root, dict(NEW))
    assert contents(elsewhere) == {rel.removeprefix("generated/"): d for rel, d in NEW.items()}
    assert leftovers(root) == []


def test_something_in_the_way_of_the_journal_is_refused(old_tree: Path) -> None:
    (old_tree / output.JOURNAL_DIR).write_text("someone's file\n")
    before = snapshot(old_tree)
    with pytest.raises(OutputError, match=f"cannot write {output.JOURNAL_DIR}: .*; nothing was changed"):
        output.write(old_tree, dict(NEW))
    assert snapshot(old_tree) == before


def test_an_unreadable_journal_is_refused_not_guessed(old_tree: Path) -> None:
    (old_tree / output.JOURNAL_DIR).mkdir()
    (old_tree / output.JOURNAL_DIR / output.JOURNAL).write_text('{"driftgate-journal": 1, "put": [["0", "../x"]]}')
    before = snapshot(old_tree)
    for run in (lambda: output.write(old_tree, dict(NEW)), lambda: output.diff(old_tree, dict(NEW))):
        with pytest.raises(OutputError, match="the journal of an interrupted write cannot be read"):
            run()
        assert snapshot(old_tree) == before


def test_recovery_keeps_a_file_a_person_wrote_after_the_kill(old_tree: Path, reference: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(root: Path, journal: Any, recovering: bool = False) -> None:
        raise KeyboardInterrupt  # committed, nothing applied

    monkeypatch.setattr(output, "_apply", killed)
    with pytest.raises(KeyboardInterrupt):
        output.write(old_tree, dict(NEW))
    monkeypatch.undo()
    save(old_tree / "generated/argo/a.yaml", "my own version, no header\n")
    save(old_tree / "generated/prometheus/gone.yaml", "mine now\n")
    output.recover(old_tree)
    got = shape(old_tree / "generated")
    assert got.pop("argo/a.yaml") == ("file", b"my own version, no header\n")
    assert got.pop("prometheus/gone.yaml") == ("file", b"mine now\n")
    assert got.pop("prometheus") == ("dir", b"")
    want = dict(reference)
    del want["argo/a.yaml"]
    assert got == want
    assert leftovers(old_tree) == []


# --------------------------------------------------------------------------------------------
# Left behind by a killed older driftgate (the whole-tree swap): still recovered


def test_a_legacy_partial_staging_directory_is_deleted(old_tree: Path) -> None:
    before = snapshot(old_tree / "generated")
    stage = old_tree / f"{output.LEGACY_STAGING}generated"
    (stage / "argo").mkdir(parents=True)
    os.link(old_tree / "generated/argo/b.yaml", stage / "argo/b.yaml")
    (stage / "argo/a.yaml").write_bytes(NEW["generated/argo/a.yaml"])
    output.diff(old_tree, dict(NEW))
    assert leftovers(old_tree) == []
    assert snapshot(old_tree / "generated") == before


def test_a_legacy_previous_tree_without_a_live_one_is_moved_back(old_tree: Path) -> None:
    before = snapshot(old_tree / "generated")
    os.rename(old_tree / "generated", old_tree / f"{output.LEGACY_PREVIOUS}generated")  # killed between renames
    output.diff(old_tree, dict(NEW))
    assert leftovers(old_tree) == []
    assert snapshot(old_tree / "generated") == before, "the previous tree comes back byte-identical"
    output.write(old_tree, dict(NEW))
    assert contents(old_tree / "generated") == expected_new(old_tree)


def test_a_legacy_previous_tree_beside_a_live_one_is_deleted(old_tree: Path) -> None:
    shutil.copytree(old_tree / "generated", old_tree / f"{output.LEGACY_PREVIOUS}generated", symlinks=True)
    output.write(old_tree, dict(NEW))
    assert leftovers(old_tree) == []
    assert contents(old_tree / "generated") == expected_new(old_tree)


# --------------------------------------------------------------------------------------------
# Killed: SIGKILL in a child process at each step of a write

CHILD = r"""
import base64, json, os, signal, sys
sys.path.insert(0, sys.argv[1])
from driftgate.render import output

root, files_json, point, when, nth = sys.argv[2:7]
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

if point.startswith("os."):
    setattr(os, point[3:], kill(point, getattr(os, point[3:])))
else:
    setattr(output, point, kill(point, getattr(output, point)))
output.write(__import__("pathlib").Path(root), files)
print("finished without being killed")
"""

# NEW changes four files (staged with atomic_write: os.replace calls 1-4), then the journal is committed
# (os.replace 5: the commit point), then the four are renamed into the live tree (os.replace 6-9), the
# orphan is deleted and its emptied folder removed (os.rmdir), and the journal is discarded.
KILL_POINTS = [
    # (function, before/after its n-th call, n, what the journal then is: uncommitted or committed)
    ("atomic_write", "before", 1, "uncommitted"),  # staging starts
    ("atomic_write", "after", 2, "uncommitted"),  # during staging
    ("_check_unchanged", "before", 1, "uncommitted"),  # staged, not committed
    ("os.replace", "before", 5, "uncommitted"),  # mid-commit: the journal's temporary file written, not renamed
    ("os.replace", "after", 5, "committed"),  # right after the commit point
    ("_commit", "after", 1, "committed"),  # committed and fsynced, nothing applied
    ("os.replace", "after", 6, "committed"),  # one file applied
    ("os.replace", "after", 8, "committed"),  # three applied
    ("os.rmdir", "before", 1, "committed"),  # every put and delete applied, the emptied folder not removed
    ("_discard", "before", 1, "committed"),  # all applied, before the cleanup
]


@pytest.mark.parametrize(("point", "when", "nth", "state"), KILL_POINTS,
                         ids=[f"{p}-{w}-{n}" for p, w, n, _ in KILL_POINTS])
def test_killed_mid_write(old_tree: Path, tmp_path: Path, reference: dict[str, Any], point: str, when: str,
                          nth: int, state: str) -> None:
    before = snapshot(old_tree / "generated")
    files_json = tmp_path / "files.json"
    files_json.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in NEW.items()}))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(old_tree), str(files_json), point, when,
                           str(nth)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed: {proc.returncode}\n{proc.stderr}"

    live = old_tree / "generated"
    journal = old_tree / output.JOURNAL_DIR
    assert leftovers(old_tree) == [output.JOURNAL_DIR], "the killed run leaves its journal directory behind"
    assert (journal / output.JOURNAL).is_file() == (state == "committed")
    if state == "uncommitted":
        assert snapshot(live) == before, "a kill before the commit point must leave the previous tree byte-identical"

    # Any later command recovers first: check (diff) discards or rolls forward, and never mixes trees.
    output.diff(old_tree, dict(NEW))
    assert leftovers(old_tree) == []
    if state == "uncommitted":
        assert snapshot(live) == before, "an uncommitted write is discarded: the previous tree, byte-identical"
    else:
        assert shape(live) == reference, "a committed write is rolled forward: the complete new tree"
        assert output.diff(old_tree, dict(NEW)).clean
    output.write(old_tree, dict(NEW))
    assert shape(live) == reference
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
    if Path(path).parent.name == output.JOURNAL_DIR:
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
    assert leftovers(root) == [output.JOURNAL_DIR]
    assert not (root / output.JOURNAL_DIR / output.JOURNAL).exists(), "killed before the commit point"

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
