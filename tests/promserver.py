"""A real Prometheus for tests: backfilled history, a bounded start, a guaranteed stop.

Why: the export client, the fitter's ``increase()`` and the generated rules all claim to agree with
Prometheus; the only convincing check is a Prometheus. This helper

* turns ``query_range`` documents (from :mod:`driftgate.synth`) into OpenMetrics text and backfills them
  with ``promtool tsdb create-blocks-from openmetrics`` into a fresh data directory (blocks are
  loaded when the server starts, so the backfill happens first);
* starts ``prometheus`` on 127.0.0.1 with a free port, waits for ``/-/ready`` (at most 30 s), and
  always stops it (terminate, then kill);
* records the series a chain reads over a range (evaluated at past instants, backfilled) and inlines
  the rest of the chain into one PromQL expression, so that a statistic can be
  evaluated at *past* instants of the backfilled range (a loaded rule file only ever evaluates at
  wall-clock time).

OpenMetrics notes for promtool 2.42: samples of a ``counter`` family must be named ``<family>_total``
and histograms expect ``_count``/``_sum``, so every family is declared ``unknown``, which the
parser accepts for any sample name; timestamps are in seconds; the file ends with ``# EOF``.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(docs: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Lines of an OpenMetrics exposition holding every sample of every series in ``docs``."""
    for name, doc in docs.items():
        yield f"# TYPE {name} unknown\n"
        for item in doc["data"]["result"]:
            labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            head = f"{name}{{{inner}}}"
            for t, v in item["values"]:
                yield f"{head} {v} {t}\n"
    yield "# EOF\n"


def backfill(promtool: str, docs: dict[str, dict[str, Any]], data_dir: Path, work: Path) -> None:
    """Write ``docs`` as TSDB blocks into ``data_dir`` (which the server then opens)."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / "history.om"
    with source.open("w", encoding="utf-8") as fh:
        fh.writelines(openmetrics(docs))
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data_dir)],
                   check=True, capture_output=True, text=True, timeout=120)


@dataclass
class PrometheusServer:
    """One ``prometheus`` process; use as a context manager."""

    binary: str
    data_dir: Path
    config: Path
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.port = self.port or free_port()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_text()}")
                try:
                    with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                        if resp.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"prometheus not ready after {READY_TIMEOUT:g}s:\n{self.log_text()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)

    def reload(self) -> None:
        """Re-read the configuration and rule files (SIGHUP)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]


# --------------------------------------------------------------------------------------------
# Recording-rule chains as one expression

# name, matchers, an optional range, an optional offset (``x{...}[15m] offset 24h``)
_SELECTOR = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}(\[[0-9a-z]+\])?'
                       r'(\s+offset\s+[0-9a-z]+)?')
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _quote(value: str) -> str:
    return '"' + _escape(value) + '"'


def _matchers(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if m is None:
            raise ValueError(f"only equality matchers can be inlined, got {{{text}}}")
        out.append((m.group(1), _unquote(m.group(2))))
        pos = m.end()
    return out


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: tuple[tuple[str, str], ...]


def recording_rules(rule_file: dict[str, Any]) -> list[RecordingRule]:
    return [RecordingRule(r["record"], r["expr"], tuple(sorted((r.get("labels") or {}).items())))
            for g in rule_file["groups"] for r in g["rules"] if "record" in r]


def inline(expr: str, rules: list[RecordingRule], depth: int = 0, step: str = "1m",
           materialised: frozenset[str] = frozenset()) -> str:
    """``expr`` with every selector of a recorded series replaced by the rules that record it.

    A rule's static labels are applied with ``label_replace`` (rule labels override, as in a rule
    evaluation); matchers on static labels pick the rules, matchers on other labels filter the
    result with ``and on (label) <one series carrying the value>``. Several rules recording the same
    name (one per ``le`` bin) are joined with ``or``. A recorded series read over a range
    (``sum_over_time(r[15m])``) becomes a subquery at the rules' evaluation interval ``step``
    (``(...)[15m:1m]``): its points are the instants a rule group ``step`` apart would have recorded,
    unless its name is in ``materialised`` (its recorded samples are in the TSDB: see
    :func:`materialise`), when the range reads them as a rule does. An instant read is always inlined:
    backfilled samples carry no staleness markers, so an instant read of them would see a series that
    a rule group had marked stale.
    """
    if depth > 20:
        raise ValueError("recording rules nest too deep (a cycle?)")
    recorded = {r.record for r in rules}

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in recorded or ((m.group(3) or m.group(4)) and name in materialised):
            return m.group(0)
        if m.group(4):  # (an expression cannot be offset: the name must have been recorded, see materialise)
            raise ValueError(f"{m.group(0)}: a recorded series read with an offset must be materialised")
        wanted = _matchers(m.group(2))
        parts = []
        for rule in (r for r in rules if r.record == name):
            static = dict(rule.labels)
            if any(k in static and static[k] != v for k, v in wanted):
                continue
            out = f"({inline(rule.expr, rules, depth + 1, step, materialised)})"
            for k, v in rule.labels:
                out = f'label_replace({out}, "{k}", {_quote(v)}, "", "")'
            for k, v in wanted:
                if k not in static:
                    out = f'({out} and on ({k}) label_replace(vector(1), "{k}", {_quote(v)}, "", ""))'
            parts.append(out)
        if not parts:
            raise ValueError(f"no recording rule matches {m.group(0)}")
        joined = "(" + " or ".join(parts) + ")"
        if m.group(3):  # a range over a recorded series: a subquery at the evaluation interval
            return f"{joined}[{m.group(3)[1:-1]}:{step}]"
        return joined

    return _SELECTOR.sub(replace, expr)


def ranged(rules: list[RecordingRule]) -> list[str]:
    """The recorded names some rule reads over a range or with an offset (``x offset 24h``: the release
    horizon), each after every such name its rules read."""
    recorded = {r.record for r in rules}
    reads: dict[str, set[str]] = {r.record: set() for r in rules}
    for r in rules:
        reads[r.record] |= {m.group(1) for m in _SELECTOR.finditer(r.expr) if m.group(1) in recorded}
    wanted = {m.group(1) for r in rules for m in _SELECTOR.finditer(r.expr)
              if (m.group(3) or m.group(4)) and m.group(1) in recorded}
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"recording rules read each other in a cycle: {' -> '.join((*path, name))}")
        for dep in sorted(reads[name]):
            visit(dep, (*path, name))
        if name in wanted and name not in order:
            order.append(name)

    for name in sorted(wanted):
        visit(name, ())
    return order


def materialise(query_range: Callable[[str, float, float, float], list[dict[str, Any]]],
                record: Callable[[dict[str, dict[str, Any]]], None], rules: list[RecordingRule],
                start: float, end: float, step: float) -> list[str]:
    """Record, from ``start`` to ``end`` every ``step`` seconds, every recorded name read over a range.

    What a rule group evaluating every ``step`` would have written: each rule's expression
    (everything it reads inlined, except ranges over names already recorded) evaluated by the server
    with ``query_range`` at the group's instants, its static labels applied, handed to ``record``
    (which backfills them, the server restarted) one name at a time, dependencies first. A chain is
    then one cheap expression over raw and recorded series (:func:`inline` with the names returned)
    instead of nested subqueries re-evaluating every step of every window at every instant.
    """
    done: frozenset[str] = frozenset()
    for name in ranged(rules):
        doc: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": []}}
        for rule in (r for r in rules if r.record == name):
            expr = inline(rule.expr, rules, step=f"{step:g}s", materialised=done)
            for item in query_range(expr, start, end, step):
                labels = {**item["metric"], **dict(rule.labels), "__name__": name}
                doc["data"]["result"].append({"metric": labels, "values": item["values"]})
        record({name: doc})
        done |= {name}
    return sorted(done)


@contextlib.contextmanager
def alertmanager_server(binary: str, config: Path, work: Path) -> Iterator[str]:
    """A real Alertmanager on ``config`` (state in ``work``), ready; yields its URL, stopped afterwards."""
    port, cluster = free_port(), free_port()
    log = (work / "am.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster}",
                             "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def toy_service(model: str, restarts: int) -> Any:
    """The small synthetic service the real-server tests backfill: 2 pods, ~20 requests/s at peak, a
    5-bucket score and latency histogram, 0.4% errors, ``restarts`` pod restarts."""
    from driftgate import synth

    return synth.ServiceModel(
        job=model, namespace="toy", metric_prefix="toy", pods=2, pod_template_hash="5f7c9b8d6", peak_rps=20.0,
        score=synth.ScoreModel(bounds=(0.2, 0.4, 0.6, 0.8, 1.0),
                               components=(synth.BetaComponent(0.6, 2.0, 5.0, swing=-0.1),
                                           synth.BetaComponent(0.4, 5.0, 2.0, swing=0.1))),
        latency=synth.LatencyModel(bounds=(0.01, 0.025, 0.05, 0.1, 0.5), mu=-3.2, sigma=0.6),
        error_prob=0.004, restarts=restarts)


@contextlib.contextmanager
def backfilled_server(binary: str, promtool: str, docs: dict[str, dict[str, Any]],
                      base: Path) -> Iterator[tuple[PrometheusServer, Path]]:
    """``docs`` backfilled into a fresh TSDB under ``base``, a server on it whose rule files are
    ``<rules dir>/*.yaml`` (evaluated every second); yields the server and the rules folder."""
    backfill(promtool, docs, base / "data", base / "work")
    rules_dir = base / "rules"
    rules_dir.mkdir()
    config = base / "prometheus.yml"
    config.write_text(json.dumps({"global": {"evaluation_interval": "1s"},
                                  "rule_files": [str(rules_dir / "*.yaml")]}))
    with PrometheusServer(binary, base / "data", config, base / "prometheus.log") as server:
        yield server, rules_dir


def materialise_on(server: PrometheusServer, promtool: str, work: Path, rules: list[RecordingRule],
                   start: float, end: float, step: float, timeout: float = 300) -> frozenset[str]:
    """:func:`materialise` against ``server``: each recorded name backfilled into its TSDB (the server
    restarted around it), as a rule group evaluating every ``step`` would have written it."""
    from driftgate.exports.promhttp import Client

    parts = iter(range(1_000_000))

    def record(docs: dict[str, dict[str, Any]]) -> None:
        server.stop()
        backfill(promtool, docs, server.data_dir, work / f"rec{next(parts)}")
        server.start()

    client = Client(server.url, timeout=timeout)
    return frozenset(materialise(client.query_range, record, rules, start, end, step))
