"""Bad input by class (issue 14): sweeps over every key, every digit, every keyword, and the outputs.

The corpus (tests/test_corpus.py) pins one exact message per case; these tests state the rule of a
whole class and try every instance the spec or the tool has, so that an input the corpus does not
have still meets it:

* present but null: every key path of the base spec, set to null, is an error naming that key path;
* look-alike digits: every non-free-text value with an ASCII digit, its digits replaced by
  full-width or Arabic-Indic ones, is an error naming that key path (Python's ``int`` and ``\\d``
  accept them; Prometheus, Go and Terraform do not);
* PromQL keywords: the metric names driftgate refuses are exactly the words promtool rejects in the
  rules' selector form, on Prometheus 2.x and 3.x;
* the command line: usage errors exit 1 in one line; ``review`` with ``--specs`` outside ``--root``
  and spec file names with a space;
* output formats: a file name with a newline, a comma or a colon cannot inject a GitHub workflow
  command or break a SARIF URI;
* secrets: a server echoing (a cut of) the Authorization header never gets any 4-character piece of
  the token printed;
* the machine: a full disk or a read-only mount is exit 1 with the reason, the previous tree intact.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from driftgate.cli import main
from driftgate.errors import SpecError
from driftgate.exports.promhttp import Credentials
from driftgate.spec.load import NULL_ALLOWED, load_specs
from driftgate.spec.names import PROMQL_RESERVED
from driftgate.spec.yamlload import format_path
from tests.test_corpus import BASE, changed, make_pristine, run_cli, snapshot

# Free text: digits of any script are fine there (a description, a contact line, a display name).
FREE_TEXT = {"description", "contact", "name"}


def _paths(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*path, k))
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*path, i))
            out.extend(_paths(v, (*path, i)))
    return out


def _set(doc: Any, path: tuple[str | int, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _problems(tmp_path: Path, doc: Any) -> list[str] | None:
    root = tmp_path / "r"
    shutil.rmtree(root, ignore_errors=True)
    (root / "specs").mkdir(parents=True)
    (root / "specs/demo.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        load_specs(root, root / "specs", check_exports=False)
    except SpecError as exc:
        return [p.path for p in exc.problems if p.level == "error"]
    return None


BASE_DOC = yaml.safe_load((BASE / "specs/demo.yaml").read_text(encoding="utf-8"))


def test_every_key_set_to_null_is_an_error_naming_it(tmp_path: Path) -> None:
    assert _problems(tmp_path, BASE_DOC) is None  # the base is valid
    tried = 0
    for path in _paths(BASE_DOC):
        if path in NULL_ALLOWED:
            continue
        found = _problems(tmp_path, _set(BASE_DOC, path, None))
        assert found is not None, f"{format_path(path)}: null was accepted"
        assert format_path(path) in found, f"{format_path(path)}: null reported as {found}"
        tried += 1
    assert tried > 60


@pytest.mark.parametrize("digits", ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९"],
                         ids=["full-width", "arabic-indic", "devanagari"])
def test_look_alike_digits_are_refused_outside_free_text(tmp_path: Path, digits: str) -> None:
    table = str.maketrans("0123456789", digits)
    tried = 0
    for path in _paths(BASE_DOC):
        value = _get(BASE_DOC, path)
        if not isinstance(value, str | int) or isinstance(value, bool) or path[-1] in FREE_TEXT:
            continue
        text = str(value)
        if not any(ch.isascii() and ch.isdigit() for ch in text):
            continue
        found = _problems(tmp_path, _set(BASE_DOC, path, text.translate(table)))
        assert found is not None and format_path(path) in found, \
            f"{format_path(path)} = {text.translate(table)!r} accepted ({found})"
        tried += 1
    assert tried >= 10


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


# Every PromQL keyword, aggregator, number literal and a few function names, in several cases.
CANDIDATES = ["and", "or", "unless", "atan2", "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
              "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio", "offset", "by", "without",
              "on", "ignoring", "group_left", "group_right", "bool", "start", "end", "step", "nan", "NaN", "inf",
              "Inf", "INF", "Bool", "ON", "rate", "time", "vector", "scalar", "info", "smoothed", "anchored"]


def test_refused_metric_names_are_exactly_what_promtool_rejects(prom: Any, tmp_path: Path) -> None:
    rejected = set()
    for word in CANDIDATES:
        rules = tmp_path / f"{word}.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{
            "record": "model_version:x:increase1h",
            "expr": f'max_over_time({word}{{job="x"}}[1h]) - min_over_time({word}{{job="x"}}[1h])'}]}]}),
            encoding="utf-8")
        proc = subprocess.run([prom.promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            rejected.add(word.lower())
    refused = {w.lower() for w in CANDIDATES if w.lower() in PROMQL_RESERVED}
    assert rejected == refused, (f"promtool ({prom.flavour}) rejects {sorted(rejected)}, driftgate refuses "
                                 f"{sorted(refused)}")


# --------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize("args", [["render", "--root", "FILE"], ["validate", "--root", "FILE"],
                                  ["check", "--root", "FILE"], ["fit", "--root", "FILE"],
                                  ["gen", "--root", "FILE"], ["render", "--bogus"], ["nonsense"],
                                  ["export", "--timeout", "0"], ["check", "--format", "xml"]])
def test_usage_errors_exit_1_in_one_line(tmp_path: Path, args: list[str]) -> None:
    file = tmp_path / "a-file"
    file.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, [str(file) if a == "FILE" else a for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("driftgate: error: ") and result.stderr.count("\n") == 1, result.stderr


def _git_repo(tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(make_pristine_copy(tmp_path), root, symlinks=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env, capture_output=True)
    return root


_COPY: list[Path] = []


def make_pristine_copy(tmp_path: Path) -> Path:
    class Factory:
        def mktemp(self, name: str) -> Path:
            path = tmp_path / f"pristine-{name}"
            path.mkdir()
            return path

    if not _COPY:
        _COPY.append(make_pristine(Factory()))  # type: ignore[arg-type]
    return _COPY[0]


def test_review_refuses_specs_outside_root(tmp_path: Path) -> None:
    root = _git_repo(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code, _, err = run_cli(["review", "--root", str(root), "--specs", str(outside), "HEAD"])
    assert code == 1 and "must be inside --root" in err and "Traceback" not in err, err


def test_review_reads_spec_files_with_a_space_in_their_name(tmp_path: Path) -> None:
    root = _git_repo(tmp_path)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "-C", str(root), "mv", "specs/demo.yaml", "specs/demo model.yaml"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "rename"], check=True, env=env)
    code, out, err = run_cli(["review", "--root", str(root), "HEAD"])
    assert code == 0, err
    # BASE's spec was read (a split pathspec made git archive fail; a lost spec shows the model as added)
    assert "No change to rollback enforcement" in out, out


# --------------------------------------------------------------------------------------------
# Output formats


@pytest.mark.parametrize("name", ["evil\n::error file=x::injected.yaml", "a,line=1:b.yaml", "50%25.yaml"])
def test_github_format_cannot_be_injected_through_a_file_name(tmp_path: Path, name: str) -> None:
    root = tmp_path / "r"
    shutil.copytree(BASE, root)
    (root / "specs" / name).write_text("model: [unclosed\n", encoding="utf-8")
    code, out, err = run_cli(["validate", "--root", str(root), "--format", "github"])
    assert code == 1
    commands = [line for line in out.splitlines() if line]
    assert commands and all(line.startswith("::error file=") for line in commands), out
    assert len(commands) == 1, out  # one problem, one command: the newline did not start a second one
    prop = commands[0].split("::")[1]
    assert "\n" not in prop and ("\n" not in name or "%0A" in prop), prop
    assert "," not in prop.split("file=")[1].split(",line=")[0], prop  # the name's own ',' is escaped
    assert "\n\n" not in err and "Traceback" not in err


def test_audit_outputs_escape_file_names(tmp_path: Path) -> None:
    from driftgate import audit as au

    finding = au.Finding("missing-rollout", "specs/a b,c:d\n::error::x.yaml", "no Rollout", 3)
    gh = au.github([finding])
    assert gh.count("\n") == 1 and gh.startswith("::error file=specs/a b%2Cc%3Ad%0A%3A%3Aerror%3A%3Ax.yaml,")
    sarif = json.loads(au.sarif([finding], "0"))
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "specs/a%20b%2Cc%3Ad%0A%3A%3Aerror%3A%3Ax.yaml"
    text = au.text([finding])
    assert text.splitlines()[0].startswith("specs/a b,c:d<U+000A>::error::x.yaml:3: error:")


# --------------------------------------------------------------------------------------------
# Secrets


TOKEN = "tok-9d1fA7cQ2xLm4ZpR8sVbN3wE6yHj0KuT5gWq1iOe"  # 47 characters, like the outside run's


@pytest.mark.parametrize("echo", ["full", "cut", "html", "middle"])
def test_no_piece_of_a_token_is_printed(echo: str) -> None:
    creds = Credentials(authorization=f"Bearer {TOKEN}", secrets=(TOKEN,))
    body = {"full": f"unauthorized: got 'Bearer {TOKEN}'" + " padding" * 100,
            "cut": "x" * 280 + f"Bearer {TOKEN}",  # a body cut by the server (or by us) mid-token
            "html": f"<html><body><pre>Authorization: Bearer {TOKEN[:43]}</pre></body></html>",
            "middle": f"seen ...{TOKEN[10:30]}..."}[echo]
    shown = creds.redact(f"http://prom: HTTP 401 {body}", limit=300)
    for i in range(len(TOKEN) - 3):
        assert TOKEN[i:i + 4] not in shown, (TOKEN[i:i + 4], shown)
    assert len(shown) <= 300


# --------------------------------------------------------------------------------------------
# The machine: a full disk, a read-only mount


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["full", "read-only", "denied"])
def test_a_write_the_machine_refuses_is_exit_1_and_changes_nothing(tmp_path: Path, code: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from driftgate.render import output

    root = tmp_path / "r"
    shutil.copytree(make_pristine_copy(tmp_path), root, symlinks=True)
    plan = root / "specs/demo.yaml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("Share of scores", "The share of scores"),
                    encoding="utf-8")
    before = snapshot(root)

    def refuse(path: Path, text: Any) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(output, "atomic_write", refuse)
    result = CliRunner().invoke(main, ["render", "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert os.strerror(code) in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert changed(before, snapshot(root)) == []


def test_merge_keys_override_and_editor_lock_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(BASE, root)
    spec = root / "specs/demo.yaml"
    text = spec.read_text(encoding="utf-8").replace(
        "analysis:\n  interval: 2m\n  failure_limit: 1\n",
        "analysis:\n  <<: {interval: 5m, failure_limit: 3}\n  interval: 2m\n")
    spec.write_text(text, encoding="utf-8")
    (root / "specs/.#demo.yaml").symlink_to("user@host.12345:1700000000")  # Emacs' lock file: dangling
    specs = load_specs(root, root / "specs", check_exports=False)
    assert specs[0].analysis.interval.text == "2m"  # the mapping's own key wins over the merged one
    assert specs[0].analysis.failure_limit == 3  # and the merged one fills what is not set


@pytest.mark.parametrize("slot", ["team.slack_webhook.secret", "team.slack_webhook.key",
                                  "rollback_authority.pagerduty_routing_key.key", "freeze.webhook.token.secret"])
@pytest.mark.parametrize("pasted", ["T0AB12CD/B0XY9Z/q9Wd2Lr7TfX3", "xoxb-1234567890-abcdefGHIJKL",
                                    "R0ut1ngK3y+/=S3cr3tZ", "q9wd2lr7tfx3kq0z"])
def test_a_secret_pasted_into_a_name_slot_is_never_echoed(tmp_path: Path, slot: str, pasted: str) -> None:
    path = tuple(slot.split("."))
    found = _problems(tmp_path, _set(BASE_DOC, path, pasted))
    if found is None:  # it is a valid name there (nothing to tell a name from a secret): nothing is printed
        return
    assert found == [slot], found
    root = tmp_path / "r"
    code, out, err = run_cli(["validate", "--spec-only", "--root", str(root)])
    assert code == 1
    for i in range(len(pasted) - 3):  # no 4 characters of it in a row (the message's own words aside)
        piece = pasted[i:i + 4]
        assert piece not in out + err, (piece, err)


@pytest.mark.parametrize("answer", ["401-echo-long", "200-html-cut"])
def test_driftgate_export_prints_no_piece_of_a_token_a_server_echoes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    answer: str) -> None:
    """End to end: ``driftgate export`` against a server that echoes the Authorization header (a 401 with a
    long body, and an HTML login page answering 200 with the header cut at 43 characters)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            if answer == "401-echo-long":
                status, kind = 401, "application/json"
                body = json.dumps({"status": "error", "errorType": "unauthorized",
                                   "error": "x" * 250 + f" rejected {auth} " + "y" * 400})
            else:
                status, kind = 200, "text/html"
                body = f"<html><body>Sign in. Your header: {auth[:50]}</body></html>"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    root = tmp_path / "r"
    shutil.copytree(make_pristine_copy(tmp_path), root, symlinks=True)
    spec = root / "specs/demo.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "  selector: {job: demo, namespace: demo}\n",
        "  selector: {job: demo, namespace: demo}\n  auth:\n    bearer_token: {env: DG_TOKEN}\n"), encoding="utf-8")
    monkeypatch.setenv("DG_TOKEN", TOKEN)
    before = snapshot(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        code, out, err = run_cli(["export", "--root", str(root), "--url", f"http://127.0.0.1:{server.server_address[1]}",
                                  "--start", "2026-10-29T00:00:00Z", "--end", "2026-10-30T00:00:00Z", "--step", "10m"])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and "<redacted>" in err and "Traceback" not in err, err
    for i in range(len(TOKEN) - 3):
        assert TOKEN[i:i + 4] not in out + err, (TOKEN[i:i + 4], err)
    assert changed(before, snapshot(root)) == []
