"""The bad-input corpus: every case must fail cleanly, with its exact message, and change nothing.

``tests/corpus/`` holds a small valid repository (``base/``) and, per category, one file per bad
input next to a ``.expected`` file naming the command, where the input goes and the exact message
(see ``tests/corpus/README.md``). For every case the real command line runs on a fresh copy of the
base repository with the case applied, and must:

* exit with status 1 (a user error), never 3 (a bug) or 0;
* print exactly the expected message on stderr, one paragraph (no blank line), no traceback, and
  nothing on stdout;
* leave every file and directory of the copy byte-identical, with the same modification times.

The counts (cases tried, tracebacks seen, files changed by a failing run) are printed by
:func:`test_corpus_summary`. ``DRIFTGATE_CORPUS_UPDATE=1`` rewrites the messages of the
``.expected`` files from what the commands print (review the diff!); every other check still runs.

The second half covers outcomes that are *not* errors but must stay well defined: degenerate
statistics (no NaN or Inf ever reaches a baseline or a rule), secrets (a sentinel credential never
reaches a file or the output), and the loader rules (``yaml.safe_load`` semantics only, a strict
Jinja environment, bounded inputs).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from driftgate import baseline as bl
from driftgate.cli import main
from tests.conftest import REPO

CORPUS = REPO / "tests/corpus"
BASE = CORPUS / "base"
UPDATE = os.environ.get("DRIFTGATE_CORPUS_UPDATE") == "1"
COMMANDS = {"validate", "render", "fit", "gen", "check"}
HEADER_KEYS = {"command", "put", "spec", "also", "remove", "symlink", "size", "pad", "fifo", "mkdir"}
# A file outside the repository copy that a case can point a symlink at (``<outside>/secret.yaml``): its
# contents must never reach a message, and it must not be written to.
OUTSIDE_SENTINEL = "OUTSIDE-SENTINEL-7f3a: this file lies outside the repository\n"
MIN_CASES = 200


# --------------------------------------------------------------------------------------------
# Cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: ``source`` (the input file) and its ``.expected`` file."""

    id: str  # <category>/<name>
    source: Path
    expected_path: Path
    command: tuple[str, ...]
    put: str  # repository-relative destination of ``source`` ("" for an edit case)
    spec: str  # a spec variant (relative to tests/corpus/) that replaces specs/demo.yaml, or ""
    also: tuple[tuple[str, str], ...]  # (corpus-relative source, repository-relative destination)
    remove: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]  # (repository-relative link, target; <outside> for a folder beside)
    fifos: tuple[str, ...]  # repository paths made named pipes (after remove)
    dirs: tuple[str, ...]  # repository paths made empty directories (after remove)
    size: int  # make the placed file sparse, this many bytes long
    pad: int  # pad the placed file with YAML comment lines to this many bytes
    header: str  # the .expected file up to and including its '---' line
    message: str  # the expected stderr


def _parse_expected(path: Path) -> tuple[dict[str, list[str]], str, str]:
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.partition("\n---\n")
    if not sep:
        raise ValueError(f"{path}: no '---' line between the header and the message")
    keys: dict[str, list[str]] = {}
    for line in head.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon or key.strip() not in HEADER_KEYS:
            raise ValueError(f"{path}: bad header line {line!r}; keys are {', '.join(sorted(HEADER_KEYS))}")
        keys.setdefault(key.strip(), []).append(value.strip())
    return keys, head + sep, body


def _pair(text: str, path: Path) -> tuple[str, str]:
    left, arrow, right = text.partition(" -> ")
    if not arrow:
        raise ValueError(f"{path}: expected '<from> -> <to>', got {text!r}")
    return left.strip(), right.strip()


def load_cases() -> list[Case]:
    cases = []
    for expected in sorted(CORPUS.glob("*/*.expected")):
        if expected.parent.name in ("base", "_files", "_specs"):
            continue
        stem = expected.name.removesuffix(".expected")  # stems have no dots: <stem>.<extensions>
        sources = [p for p in expected.parent.iterdir()
                   if p.name.split(".")[0] == stem and p.name != expected.name]
        if "." in stem or len(sources) != 1:
            raise ValueError(f"{expected}: expected exactly one input file named {stem}.<ext>, found "
                             f"{[p.name for p in sources]}")
        keys, header, message = _parse_expected(expected)
        command = tuple(keys.get("command", [""])[0].split())
        if not command or command[0] not in COMMANDS:
            raise ValueError(f"{expected}: command must be one of {', '.join(sorted(COMMANDS))}")
        source = sources[0]
        put = keys.get("put", [""])[0]
        if not put and not source.name.endswith(".edit.yaml"):
            raise ValueError(f"{expected}: 'put:' is required (where the input goes in the repository)")
        cases.append(Case(
            id=f"{expected.parent.name}/{stem}", source=source, expected_path=expected, command=command, put=put,
            spec=keys.get("spec", [""])[0],
            also=tuple(_pair(v, expected) for v in keys.get("also", [])),
            remove=tuple(keys.get("remove", [])),
            symlinks=tuple(_pair(v, expected) for v in keys.get("symlink", [])),
            fifos=tuple(keys.get("fifo", [])), dirs=tuple(keys.get("mkdir", [])),
            size=int(keys.get("size", ["0"])[0]), pad=int(keys.get("pad", ["0"])[0]),
            header=header, message=message))
    return cases


CASES = load_cases()


# --------------------------------------------------------------------------------------------
# Repository copies and snapshots


Entry = tuple[str, bytes, int, int]  # kind, content (bytes or link target), mtime_ns, mode


def snapshot(root: Path) -> dict[str, Entry]:
    """Every file, directory and symlink under ``root``: kind, bytes, modification time and mode.

    Sparse (huge) files are compared by size and mtime only, so that a 2 GB case is cheap.
    """
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path).encode(), st.st_mtime_ns, st.st_mode)
            elif not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):  # a FIFO: never read it
                out[rel] = ("special", b"", st.st_mtime_ns, st.st_mode)
            elif path.is_dir():
                out[rel] = ("dir", b"", st.st_mtime_ns, st.st_mode)
            elif st.st_size > 50_000_000:
                out[rel] = ("big", str(st.st_size).encode(), st.st_mtime_ns, st.st_mode)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mtime_ns, st.st_mode)
    return out


def changed(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    return sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))


def run_cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


_PRISTINE: list[Path] = []  # one fitted base per session, also for the modules that import the fixture


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base repository, fitted and rendered once: every case starts from a copy of it."""
    return make_pristine(tmp_path_factory)


def make_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if _PRISTINE:
        return _PRISTINE[0]
    root = tmp_path_factory.mktemp("corpus") / "base"
    shutil.copytree(BASE, root)
    for command in ("fit", "render", "validate"):
        code, out, err = run_cli([command, "--root", str(root)])
        assert code == 0, f"the corpus base must be valid ({command}):\n{out}{err}"
    _PRISTINE.append(root)
    return root


def outside(root: Path) -> Path:
    """A folder beside the repository copy holding one sentinel file (and room for a stray write)."""
    folder = root.parent / "outside"
    if not folder.is_dir():
        folder.mkdir()
        (folder / "secret.yaml").write_text(OUTSIDE_SENTINEL, encoding="utf-8")
    return folder


def apply(case: Case, root: Path) -> None:
    """Put the case's input (and its companions) into the repository copy ``root``."""
    if case.spec:
        shutil.copyfile(CORPUS / case.spec, root / "specs/demo.yaml")
    for src, dest in case.also:
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / src, root / dest)
    for rel in case.remove:
        path = root / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for link, target in case.symlinks:
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target.replace("<outside>", str(outside(root))))
    for rel in case.fifos:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / rel)
    for rel in case.dirs:
        (root / rel).mkdir(parents=True)
    if case.source.name.endswith(".edit.yaml"):
        edit_file(root, yaml.safe_load(case.source.read_text(encoding="utf-8")))
        return
    dest = root / case.put
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case.source, dest)
    if case.pad:
        with dest.open("ab") as fh:
            line = b"# " + b"padding " * 15 + b"\n"
            while fh.tell() <= case.pad:
                fh.write(line)
    if case.size:
        with dest.open("r+b") as fh:
            fh.truncate(case.size)  # sparse: no disk space is used


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def edit_file(root: Path, edit: dict[str, Any]) -> None:
    """Apply ``set`` / ``delete`` (key paths like ``signals[0].fast.auto.value``) to a YAML or JSON file,
    keeping a YAML file's first comment line (the generated header) and writing it the way driftgate does."""
    path = root / edit["file"]
    text = path.read_text(encoding="utf-8")
    header = text.split("\n", 1)[0] + "\n" if text.startswith("#") else ""
    doc = yaml.safe_load(text)
    for key_path in edit.get("delete", []):
        *parents, last = _steps(key_path)
        node = doc
        for step in parents:
            node = node[step]
        del node[last]
    for key_path, value in (edit.get("set") or {}).items():
        *parents, last = _steps(key_path)
        node = doc
        for step in parents:
            node = node[step]
        node[last] = value
    if path.suffix == ".json":  # the evidence file, written as driftgate.fit.evidence.dumps does
        path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
        return
    path.write_text(header + yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=1000,
                                            allow_unicode=True), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The corpus


@dataclasses.dataclass
class Tally:
    tried: set[str] = dataclasses.field(default_factory=set)
    tracebacks: set[str] = dataclasses.field(default_factory=set)
    files_changed: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    wrong: set[str] = dataclasses.field(default_factory=set)


TALLY = Tally()


class Hang(BaseException):
    """Raised by the alarm: a case blocked (e.g. reading a named pipe)."""


@contextlib.contextmanager
def no_hang(what: str, seconds: int = 90) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"{what}: still running after {seconds} s (a read that blocks?)")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_case(case: Case, pristine: Path, work: Path) -> tuple[int, str, str, list[str]]:
    root = work / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    apply(case, root)
    before = snapshot(root.parent)  # the copy and the folder beside it: nothing outside is written either
    with no_hang(case.id):
        code, out, err = run_cli([*case.command, "--root", str(root)])
    after = snapshot(root.parent)
    assert "OUTSIDE-SENTINEL" not in out + err, f"{case.id}: a file outside the repository was printed"
    out, err = out.replace(str(root), "<root>"), err.replace(str(root), "<root>")
    # The current fit version moves with every change of the fit: written <fit_version> in the corpus.
    err = err.replace(f"this one reads {bl.FIT_VERSION})", "this one reads <fit_version>)")
    diff = changed(before, after)
    TALLY.tried.add(case.id)
    if "Traceback" in out + err or code == 3:
        TALLY.tracebacks.add(case.id)
    if diff:
        TALLY.files_changed[case.id] = diff
    return code, out, err, diff


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, pristine: Path, tmp_path: Path) -> None:
    code, out, err, diff = run_case(case, pristine, tmp_path)
    assert "Traceback" not in out + err, f"{case.id}: a traceback (a bug):\n{err}"
    assert code == 1, f"{case.id}: exit code {code}, expected 1\nstdout:\n{out}\nstderr:\n{err}"
    assert not diff, f"{case.id}: a failing run changed {diff}"
    assert out == "", f"{case.id}: a failing run printed on stdout:\n{out}"
    assert err.startswith("driftgate: error: ") or case.command[-1] == "--strict", err
    assert "\n\n" not in err.strip(), f"{case.id}: the message is not one paragraph:\n{err}"
    if UPDATE:
        if err != case.message:
            case.expected_path.write_text(case.header + err, encoding="utf-8")
        return
    if err != case.message:
        TALLY.wrong.add(case.id)
    assert err == case.message, f"{case.id}: the message differs from {case.expected_path.name}"


def test_corpus_summary(pristine: Path, tmp_path_factory: pytest.TempPathFactory,
                        request: pytest.FixtureRequest) -> None:
    """Counts over the whole corpus (cases deselected from this run are run here)."""
    for case in CASES:
        if case.id not in TALLY.tried:
            code, _, err, _ = run_case(case, pristine, tmp_path_factory.mktemp("summary"))
            if code != 1 or (err != case.message and not UPDATE):
                TALLY.wrong.add(case.id)
    by_category: dict[str, int] = {}
    for case in CASES:
        by_category[case.id.split("/")[0]] = by_category.get(case.id.split("/")[0], 0) + 1
    summary = (f"driftgate corpus: {len(TALLY.tried)} cases tried "
               f"({', '.join(f'{k} {v}' for k, v in sorted(by_category.items()))}); "
               f"tracebacks seen: {len(TALLY.tracebacks)}; files changed by a failing run: "
               f"{len(TALLY.files_changed)}; wrong messages: {len(TALLY.wrong)}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line(summary)
    print(summary)
    assert len(TALLY.tried) >= MIN_CASES, summary
    assert not TALLY.tracebacks, f"{summary}: {sorted(TALLY.tracebacks)}"
    assert not TALLY.files_changed, f"{summary}: {TALLY.files_changed}"
    assert not TALLY.wrong, f"{summary}: {sorted(TALLY.wrong)}"


def test_corpus_through_the_real_command(pristine: Path, tmp_path: Path) -> None:
    """One case per category through ``python -m gen`` in a subprocess: the same bytes as in-process."""
    firsts: dict[str, Case] = {}
    for case in CASES:
        firsts.setdefault(case.id.split("/")[0], case)
    for i, case in enumerate(firsts.values()):
        root = tmp_path / str(i)
        shutil.copytree(pristine, root, symlinks=True)
        apply(case, root)
        before = snapshot(root)
        proc = subprocess.run([sys.executable, "-m", "driftgate", *case.command, "--root", str(root)],
                              capture_output=True, text=True, cwd=REPO, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 1, f"{case.id}: {proc.stderr}"
        assert proc.stdout == ""
        assert proc.stderr.replace(str(root), "<root>") == case.message, case.id
        assert not changed(before, snapshot(root)), case.id


def test_the_corpus_is_well_formed() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases"
    messages: dict[str, str] = {}
    for case in CASES:
        assert case.message.endswith("\n"), case.id
        assert case.message.strip(), f"{case.id}: no expected message"
        # Two cases with the same message and the same command test the same thing.
        key = case.command[0] + case.message
        assert key not in messages, f"{case.id} duplicates {messages[key]}"
        messages[key] = case.id
    for path in CORPUS.rglob("*"):
        if path.is_file() and path.parent.name not in ("base", "_files", "_specs") and BASE not in path.parents:
            stem = path.name.split(".")[0]
            assert (path.parent / f"{stem}.expected").is_file() or path.name == "README.md", \
                f"{path} has no {stem}.expected"


# --------------------------------------------------------------------------------------------
# Degenerate statistics: defined outcomes, and never NaN or Inf in a baseline or a rule

_WORD = re.compile(r"(?<![A-Za-z_])[+-]?(nan|inf|infinity)(?![A-Za-z_])", re.IGNORECASE)


def assert_finite_outputs(root: Path) -> int:
    """No NaN or Inf in any baseline value, evidence value, rule, Argo condition or Terraform value.

    ``+Inf`` is legitimate only as a quoted ``le`` label value (the histogram's last bucket), and
    ``isNaN(`` only as the Argo guard; everything else that reads as NaN or Inf is a failure.
    """
    checked = 0
    for path in sorted((root / "baselines").glob("*.yaml")):
        def walk(value: Any, where: str, path: Path = path) -> None:
            if isinstance(value, float):
                assert math.isfinite(value), f"{path.name}: {where} = {value}"
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{where}.{k}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{where}[{i}]")
        walk(yaml.safe_load(path.read_text(encoding="utf-8")), "")
        checked += 1
    for path in sorted((root / "baselines").glob("*.evidence.json")):
        def refuse(name: str, path: Path = path) -> Any:
            raise AssertionError(f"{path.name}: {name} in the evidence file")
        json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
        checked += 1
    for path in sorted((root / "generated").rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".tf"):
            continue
        text = path.read_text(encoding="utf-8")
        for allowed in ('le=\\"+Inf\\"', 'le="+Inf"', '"+Inf"', "isNaN("):
            text = text.replace(allowed, "")
        found = _WORD.search(text)
        assert found is None, f"{path.relative_to(root)}: {text[max(0, found.start() - 80):found.end() + 20]!r}"
        checked += 1
    return checked


def _scores_with_all_mass_in_one_bin() -> str:
    """The base score histogram with every observation in the first bucket."""
    doc = json.loads((BASE / "exports/demo/demo_score_bucket.json").read_text(encoding="utf-8"))
    total = {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "le")): s["values"]
             for s in doc["data"]["result"] if s["metric"]["le"] == "+Inf"}
    for s in doc["data"]["result"]:
        s["values"] = total[tuple(sorted((k, v) for k, v in s["metric"].items() if k != "le"))]
    return json.dumps(doc, separators=(",", ":"))


def _fit_and_render(pristine: Path, tmp_path: Path, spec_edits: list[tuple[str, str]],
                    files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    spec = root / "specs/demo.yaml"
    text = spec.read_text(encoding="utf-8")
    for old, new in spec_edits:
        assert old in text
        text = text.replace(old, new)
    spec.write_text(text, encoding="utf-8")
    for rel, content in (files or {}).items():
        (root / rel).write_text(content, encoding="utf-8")
    for command in ("fit", "render"):
        code, out, err = run_cli([command, "--root", str(root)])
        assert code == 0, f"{command}:\n{out}{err}"
    return root


def test_the_base_outputs_are_finite(pristine: Path) -> None:
    assert assert_finite_outputs(pristine) >= 10


def test_all_mass_in_one_bin_fits_finite_thresholds(pristine: Path, tmp_path: Path) -> None:
    root = _fit_and_render(pristine, tmp_path, [],
                           {"exports/demo/demo_score_bucket.json": _scores_with_all_mass_in_one_bin()})
    base = yaml.safe_load((root / "baselines/demo.yaml").read_text(encoding="utf-8"))
    drift = base["signals"][0]
    assert drift["probabilities"][0] > 0.99 and all(q > 0 for q in drift["probabilities"])
    assert assert_finite_outputs(root) >= 10


def test_sparse_windows_are_no_decision_windows(pristine: Path, tmp_path: Path) -> None:
    """Windows with fewer events than min_events (the quiet hours) are left out of the fit, and the
    rules guard every decision with the same minimum."""
    base = yaml.safe_load((pristine / "baselines/demo.yaml").read_text(encoding="utf-8"))
    quiet, busy = base["signals"][1]["fast"]["events_p05"], int(base["signals"][1]["fast"]["events_p50"])
    assert quiet < busy  # the latency signal's hourly traffic: min_events = its median leaves nights out
    root = _fit_and_render(pristine, tmp_path, [("    quantile: 0.99\n    windows: {fast: 1h, slow: 2h}\n",
                                                 f"    quantile: 0.99\n    windows: {{fast: 1h, slow: 2h}}\n"
                                                 f"    min_events: {busy}\n")])
    fitted = yaml.safe_load((root / "baselines/demo.yaml").read_text(encoding="utf-8"))["signals"]
    latency = fitted[1]["fast"]
    assert 0 < latency["windows_decided"] < latency["windows_total"], latency
    rules = (root / "generated/prometheus/rules/demo.rules.yaml").read_text(encoding="utf-8")
    assert f">= {busy})" in rules and "DriftgateNoDecision" in rules
    assert assert_finite_outputs(root) >= 10


def test_too_little_history_gives_a_provisional_baseline(pristine: Path, tmp_path: Path) -> None:
    root = _fit_and_render(pristine, tmp_path, [("minimum: 2d", "minimum: 7d")])
    assert yaml.safe_load((root / "baselines/demo.yaml").read_text(encoding="utf-8"))["provisional"] is True
    templates = [d for d in yaml.safe_load_all((root / "generated/argo/demo.yaml").read_text(encoding="utf-8")) if d]
    criteria = next(t for t in templates if t["metadata"]["name"] == "demo-rollback-criteria")
    assert {m["failureCondition"] for m in criteria["spec"]["metrics"] if m["name"] != "enforcement-live"} == {"false"}
    assert "alert: \"DriftgateAutoRollback\"" not in (root / "generated/prometheus/rules/demo.rules.yaml").read_text()
    code, _, err = run_cli(["validate", "--strict", "--root", str(root)])
    assert code == 1 and "provisional" in err
    assert assert_finite_outputs(root) >= 10


@pytest.mark.parametrize("case_id", ["fit/zero-traffic", "fit/ratio-constant", "fit/all-nan-windows",
                                     "fit/fewer-events-than-minimum", "fit/history-shorter-than-window",
                                     "fit/single-sample", "export/only-inf", "export/all-nan-series"])
def test_degenerate_histories_have_a_corpus_case(case_id: str) -> None:
    """The error outcomes of docs/spec.md's "Degenerate history" table are corpus cases (run above)."""
    (case,) = [c for c in CASES if c.id == case_id]
    assert case.command[0] == "fit" and case.message.startswith("driftgate: error: ")


# --------------------------------------------------------------------------------------------
# Secrets: references only; a sentinel never reaches a file or the output

SENTINEL = "sentinel-7f3a9c1e-NEVER-WRITE-ME"
_EXPORTS = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (BASE / "exports/demo").glob("*.json")}


@contextlib.contextmanager
def fake_prometheus(expect: str, echo_first: bool = True) -> Iterator[str]:
    """A query_range server over the base exports; it wants ``Authorization: <expect>`` and echoes the
    header back in error bodies (as some proxies do), so that redaction is exercised."""
    seen = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            import urllib.parse

            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            auth = self.headers.get("Authorization", "")
            seen["n"] += 1
            if echo_first and seen["n"] == 1:
                status, body = 503, {"status": "error", "errorType": "unavailable", "error": f"busy; got {auth}"}
            elif auth != expect:
                status, body = 401, {"status": "error", "errorType": "unauthorized", "error": f"bad {auth}"}
            else:
                name = params["query"].split("{", 1)[0]
                start, end, step = (int(float(params[k])) for k in ("start", "end", "step"))
                result = [{"metric": s["metric"], "values": [v for v in s["values"]
                                                             if start <= v[0] <= end and (v[0] - start) % step == 0]}
                          for s in _EXPORTS[name]["data"]["result"]]
                status, body = 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _leaks(root: Path, outputs: list[str], secrets: list[str], allowed: set[str]) -> list[str]:
    found = [f"output {i}" for i, text in enumerate(outputs) if any(s in text for s in secrets)]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in allowed and any(s.encode() in path.read_bytes() for s in secrets):
            found.append(rel)
    return found


EXPORT_ARGS = ["--start", "2026-10-29T00:00:00Z", "--end", "2026-11-01T00:00:00Z", "--step", "10m"]


def test_a_bearer_token_from_the_environment_never_leaks(pristine: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    spec = root / "specs/demo.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "  selector: {job: demo, namespace: demo}\n",
        "  selector: {job: demo, namespace: demo}\n  auth:\n    bearer_token: {env: DG_PROM_TOKEN}\n"
        "    headers: {X-Scope-OrgID: tenant-a}\n"), encoding="utf-8")
    monkeypatch.setenv("DG_PROM_TOKEN", SENTINEL)
    outputs = []
    with fake_prometheus(f"Bearer {SENTINEL}") as url:
        result = CliRunner().invoke(main, ["export", "--root", str(root), "--url", url, *EXPORT_ARGS],
                                    catch_exceptions=False)
        outputs += [result.stdout, result.stderr]
        assert result.exit_code == 0, result.output
        assert "retrying" in result.stderr and "<redacted>" in result.stderr  # the echoed header, scrubbed
    for command in (["fit", "--force"], ["render"], ["validate"], ["check"]):
        code, out, err = run_cli([*command, "--root", str(root)])
        assert code == 0, err
        outputs += [out, err]
    assert not _leaks(root, outputs, [SENTINEL], set())
    manifest = json.loads((root / "exports/demo/manifest.json").read_text(encoding="utf-8"))
    assert manifest["auth"] == "bearer" and manifest["headers"] == ["X-Scope-OrgID"]


def test_a_password_file_never_leaks_even_when_the_server_echoes_it(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, symlinks=True)
    (root / "secrets").mkdir()
    (root / "secrets/prom-password").write_text(SENTINEL + "\n", encoding="utf-8")
    spec = root / "specs/demo.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "  selector: {job: demo, namespace: demo}\n",
        "  selector: {job: demo, namespace: demo}\n  auth:\n"
        "    basic: {username: exporter, password: {file: secrets/prom-password}}\n"), encoding="utf-8")
    pair = base64.b64encode(f"exporter:{SENTINEL}".encode()).decode()
    before = snapshot(root)
    with fake_prometheus("Basic wrong", echo_first=False) as url:  # refuses, echoing what it got
        code, out, err = run_cli(["export", "--root", str(root), "--url", url, *EXPORT_ARGS])
    assert code == 1 and "HTTP 401 unauthorized: bad Basic <redacted>" in err, err
    assert "Traceback" not in err and not changed(before, snapshot(root))
    assert not _leaks(root, [out, err], [SENTINEL, pair], {"secrets/prom-password"})


def test_rendered_secrets_are_references(pristine: Path) -> None:
    """Alertmanager secrets are secretKeyRefs and file paths; no value of a secret is in the spec at all."""
    am = yaml.safe_load((pristine / "generated/alertmanager/demo.yaml").read_text(encoding="utf-8").split("\n", 1)[1])
    team = next(r for r in am["spec"]["receivers"] if r["name"] == "demo-team")["slackConfigs"][0]
    assert team["apiURL"] == {"name": "demo-alerting", "key": "slack-webhook-url"}
    plain = (pristine / "generated/alertmanager/alertmanager.yml").read_text(encoding="utf-8")
    assert "api_url_file: \"/etc/alertmanager/secrets/demo-alerting/slack-webhook-url\"" in plain
    assert "routing_key_file:" in plain and "credentials_file:" in plain
    assert "api_url:" not in plain and "routing_key:" not in plain and "credentials:" not in plain


# --------------------------------------------------------------------------------------------
# Loader rules


def test_yaml_is_only_ever_loaded_safely() -> None:
    unsafe = re.compile(r"yaml\.(load|load_all|unsafe_load|unsafe_load_all|full_load|full_load_all)\(|"
                        r"yaml\.(Loader|UnsafeLoader|FullLoader)\b|Loader\s*=")
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in sorted((REPO / "gen").rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if unsafe.search(line)]
    assert hits == []


def test_templates_are_strict() -> None:
    import jinja2

    from driftgate.render.env import environment

    env = environment()
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("[[ ctx.nothing ]]").render(ctx={})
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("[[ missing | yq ]]").render()


def test_the_size_limits_are_documented() -> None:
    from driftgate.exports import predictions, series
    from driftgate.fit import evidence
    from driftgate.spec import yamlload

    spec_md = (REPO / "docs/spec.md").read_text(encoding="utf-8")
    exports_md = (REPO / "docs/exports.md").read_text(encoding="utf-8")
    assert f"{yamlload.MAX_BYTES:,} bytes" in spec_md
    assert f"{yamlload.MAX_NODES:,} nodes" in spec_md
    assert f"{yamlload.MAX_DEPTH}\n  levels of nesting" in spec_md or f"{yamlload.MAX_DEPTH} levels" in spec_md
    assert f"{series.MAX_EXPORT_BYTES:,} bytes" in exports_md
    assert f"{predictions.MAX_SIDECAR_BYTES:,} bytes" in exports_md
    assert evidence.MAX_BYTES >= 10 * yamlload.MAX_BYTES
