"""``driftgate export``: a model's metric history from Prometheus into the files ``driftgate fit`` reads.

Why a separate step: fitting must stay offline and reproducible (the same files give the same
baseline), but users have a Prometheus, not export files. So the export fetches exactly the raw
series the signals need and writes them in the format the fitter reads; the fit never talks to a
server.

* **What is fetched.** For every signal, the raw selector (no ``rate()``, no aggregation)
  ``<metric>_bucket{<prometheus.selector>,<signal labels>}`` of a histogram, or the numerator and the
  denominator counters of a ratio, with ``/api/v1/query_range`` at ``--step`` (use the scrape
  interval: each returned point is the latest sample at or before it). Metric ``m`` goes to
  ``<dir>/m.json``, ``<dir>`` being the directory of the first ``history.exports`` entry; that file
  must be listed in ``history.exports``, otherwise the fit would not read it.
* **Chunks.** Prometheus refuses more than 11,000 points per series in one request, so the range
  is cut into chunks of at most ``points_per_chunk`` steps, aligned to multiples of that span since
  the epoch: an export re-run with a later ``--end now`` reuses every chunk but the first and the last.
* **Resumable.** Each chunk's result is kept under ``<dir>/.partial/<model>/`` until the whole model
  is exported; a re-run after a failure fetches only the missing chunks. On success the partial
  directory is removed.
* **Deterministic output.** Chunks are merged per series (values concatenated, duplicate boundary
  timestamps dropped), series are sorted by label set, and files are written as compact JSON with
  sorted keys (:func:`driftgate.synth.render_export`), checked with the fitter's own reader first. A
  ``manifest.json`` records the server, queries, range, step and each file's sha256 (never a
  secret, and no wall-clock time), so two exports of the same range are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from driftgate.errors import DriftgateError, quote
from driftgate.exports.promhttp import Client, Notify, Sleep, resolve_credentials, rfc3339
from driftgate.exports.promjson import parse_query_range
from driftgate.exports.series import MAX_EXPORT_BYTES
from driftgate.fsio import FileRefused, read_bytes
from driftgate.model import ModelSpec, Signal
from driftgate.render.promql import selector
from driftgate.spec import names
from driftgate.spec.load import load_specs
from driftgate.synth import render_export, write_atomic
from driftgate.validate.durations import parse_prom_duration, prom_duration

MAX_POINTS = 11_000  # Prometheus' limit of points per series in one query_range request
PARTIAL = ".partial"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
MAX_CHUNK_BYTES = MAX_EXPORT_BYTES  # a cached chunk is part of one export file


class ExportCommandError(DriftgateError):
    """``driftgate export`` cannot run as asked (range, exports list, or what the server returned)."""


@dataclass(frozen=True)
class TimeRange:
    """Inclusive ``[start, end]`` in unix seconds, both multiples of ``step``."""

    start: int
    end: int
    step: int

    @property
    def points(self) -> int:
        return (self.end - self.start) // self.step + 1


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int


@dataclass(frozen=True)
class Target:
    """One export file: the metric it holds and the queries that fill it."""

    metric: str
    path: str  # repository-relative
    queries: tuple[str, ...]
    signals: tuple[str, ...]  # names of the signals that need it


@dataclass(frozen=True)
class Progress:
    model: str
    done: int  # requests handled so far, this one included
    total: int
    metric: str
    chunk: Chunk
    cached: bool


@dataclass(frozen=True)
class FileResult:
    path: str
    metric: str
    series: int
    samples: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    model: str
    files: tuple[FileResult, ...]
    manifest: str
    unused: tuple[str, ...]  # history.exports entries no signal needs (left untouched)
    fetched: int  # chunks requested from the server
    cached: int  # chunks taken from an interrupted earlier run
    range: TimeRange


# --------------------------------------------------------------------------------------------
# Range and chunks


def parse_time(text: str, what: str) -> int:
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ExportCommandError(f"{what}: expected an RFC 3339 time like 2026-11-01T00:00:00Z, got {text!r}") \
            from None
    if stamp.tzinfo is None:
        raise ExportCommandError(f"{what}: the time needs a time zone (end it with Z), got {text!r}")
    return math.floor(stamp.timestamp())


def parse_range(start: str, end: str, step: str, now: float) -> TimeRange:
    """``--start RFC3339|-<duration>`` (before ``--end``), ``--end RFC3339|now``, ``--step <duration>``.

    The range is shrunk to the step grid (start rounded up, end rounded down), so that it does not
    depend on the sub-step instant a command ran at.
    """
    try:
        step_s = parse_prom_duration(step)
    except ValueError as exc:
        raise ExportCommandError(f"--step: expected a duration like 1m, got {step!r} ({exc})") from None
    if step_s < 1 or step_s != int(step_s):
        raise ExportCommandError(f"--step: expected a whole number of seconds of at least 1s, got {step!r}")
    st = int(step_s)
    end_t = math.floor(now) if end.strip() == "now" else parse_time(end, "--end")
    if start.strip().startswith("-"):
        try:
            back = parse_prom_duration(start.strip()[1:])
        except ValueError as exc:
            raise ExportCommandError(f"--start: expected -<duration> (e.g. -28d) or an RFC 3339 time, got "
                                     f"{start!r} ({exc})") from None
        start_t = math.floor(end_t - back)
    else:
        start_t = parse_time(start, "--start")
    lo, hi = -(-start_t // st) * st, end_t // st * st
    if hi <= lo:
        raise ExportCommandError(f"the range {rfc3339(start_t)} .. {rfc3339(end_t)} holds fewer than two "
                                 f"{step} steps; --start must be before --end")
    return TimeRange(lo, hi, st)


def chunks(r: TimeRange, points_per_chunk: int = MAX_POINTS) -> list[Chunk]:
    """Cut ``r`` into requests of at most ``points_per_chunk`` points, aligned to the epoch."""
    if points_per_chunk < 2:
        raise ExportCommandError(f"--points-per-chunk: expected at least 2, got {points_per_chunk}")
    first, last = r.start // r.step, r.end // r.step
    out = []
    for k in range(first // points_per_chunk, last // points_per_chunk + 1):
        lo = max(first, k * points_per_chunk)
        hi = min(last, (k + 1) * points_per_chunk - 1)
        out.append(Chunk(lo * r.step, hi * r.step))
    return out


# --------------------------------------------------------------------------------------------
# What to fetch


def _needs(signal: Signal) -> list[str]:
    if signal.is_histogram:
        return [f"{signal.metric}_bucket"]
    return [signal.metric, signal.denominator]


def _provided_elsewhere(root: Path | None, spec: ModelSpec) -> set[str]:
    """Metrics that non-JSON exports already provide: a prediction log's sidecar names its histogram.

    Long-format CSV/Parquet files may hold any metric; their metrics are not exported again when no
    ``<metric>.json`` is listed (the fit reads them from the CSV/Parquet file).
    """
    out: set[str] = set()
    for rel in spec.exports:
        low = rel.lower()
        if low.endswith((".predictions.csv", ".predictions.parquet")) and root is not None:
            from driftgate.exports.predictions import read_sidecar

            # (read_sidecar takes the log's path and finds the sidecar next to it)
            out.add(f"{read_sidecar(root / rel, rel, root).metric}_bucket")
        elif low.endswith((".csv", ".parquet")):
            out.add("*")
    return out


def plan(spec: ModelSpec, root: Path | None = None) -> tuple[list[Target], list[str]]:
    """The export files to write and their queries; plus the listed exports no signal needs."""
    json_exports = [rel for rel in spec.exports if rel.lower().endswith(".json")]
    directory = PurePosixPath((json_exports or spec.exports)[0]).parent
    elsewhere = _provided_elsewhere(root, spec)
    wanted: dict[str, list[tuple[frozenset[tuple[str, str]], str]]] = {}
    for signal in spec.signals:
        matchers = frozenset((*spec.prometheus.selector, *signal.matchers))
        for metric in _needs(signal):
            wanted.setdefault(metric, []).append((matchers, signal.name))
    listed = {PurePosixPath(rel).as_posix(): rel for rel in spec.exports}  # "./x.json" is "x.json"
    targets, missing = [], []
    for metric, uses in wanted.items():
        want = (directory / f"{metric}.json").as_posix()
        users = tuple(dict.fromkeys(name for _, name in uses))
        if want not in listed:
            if metric in elsewhere or "*" in elsewhere:
                continue  # read from a prediction log or a long-format file instead
            missing.append(f"{want} (for {metric}, needed by signal {', '.join(users)})")
            continue
        rel = listed[want]
        # A query whose matchers include another query's matchers selects a subset of it: drop it.
        sets = list(dict.fromkeys(m for m, _ in uses))
        kept = [m for m in sets if not any(o < m for o in sets)]
        queries = tuple(selector(metric, sorted(m)) for m in kept)
        targets.append(Target(metric, rel, queries, users))
    if missing:
        raise ExportCommandError(
            f"{spec.spec_path}: history.exports does not list the file(s) driftgate export writes: "
            + "; ".join(missing),
            hint=f"each metric is exported to <metric>.json in {directory}/ (the directory of the first "
                 f"history.exports entry); add the files to history.exports so that the fit reads them")
    used = {t.path for t in targets}
    return targets, [rel for rel in spec.exports if rel not in used and rel.lower().endswith(".json")]


# --------------------------------------------------------------------------------------------
# Partial results of an interrupted export


class ChunkCache:
    """One JSON file per fetched chunk, keyed by server, query, range and step."""

    def __init__(self, directory: Path, server: str) -> None:
        self.directory = directory
        self.server = server

    def _path(self, query: str, chunk: Chunk, step: int) -> Path:
        key = json.dumps([self.server, query, chunk.start, chunk.end, step])
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def get(self, query: str, chunk: Chunk, step: int) -> list[dict[str, Any]] | None:
        path = self._path(query, chunk, step)
        try:  # a regular file only (a FIFO left in .partial/ must not block the export)
            doc = json.loads(read_bytes(path, path.name, MAX_CHUNK_BYTES))
        except (FileRefused, ValueError, RecursionError):  # unreadable: fetch the chunk again
            return None
        if not isinstance(doc, dict) or [doc.get("server"), doc.get("query"), doc.get("start"), doc.get("end"),
                                         doc.get("step")] != [self.server, query, chunk.start, chunk.end, step]:
            return None
        result = doc.get("result")
        return result if isinstance(result, list) else None

    def put(self, query: str, chunk: Chunk, step: int, result: list[dict[str, Any]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ignore = self.directory.parent / ".gitignore"
        if not ignore.exists():
            write_atomic(ignore, b"# driftgate export: partial results of an interrupted export\n*\n")
        doc = {"server": self.server, "query": query, "start": chunk.start, "end": chunk.end, "step": step,
               "result": result}
        write_atomic(self._path(query, chunk, step), json.dumps(doc, separators=(",", ":")).encode())

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        parent = self.directory.parent
        leftovers = [p for p in parent.iterdir() if p.name != ".gitignore"] if parent.is_dir() else []
        if parent.is_dir() and not leftovers:
            shutil.rmtree(parent, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Merging and writing


def merge(results: list[list[list[dict[str, Any]]]], what: str) -> list[dict[str, Any]]:
    """Merge chunk results: ``results[query][chunk]`` -> one matrix sorted by label set.

    A series' values are concatenated in chunk order; a timestamp not after the previous one (a
    duplicated chunk boundary) is dropped. A series matched by several queries comes from the first.
    """
    series: dict[tuple[tuple[str, str], ...], tuple[int, dict[str, str], list[Any]]] = {}
    for qi, per_chunk in enumerate(results):
        for result in per_chunk:
            for item in result:
                metric, values = _item(item, what)
                key = tuple(sorted(metric.items()))
                owner, _, out = series.setdefault(key, (qi, metric, []))
                if owner != qi:
                    continue
                for sample in values:
                    if out and not sample[0] > out[-1][0]:
                        continue
                    out.append(sample)
    return [{"metric": metric, "values": values}
            for _, metric, values in sorted(series.values(), key=lambda e: sorted(e[1].items())) if values]


def _item(item: Any, what: str) -> tuple[dict[str, str], list[Any]]:
    ok = isinstance(item, dict) and isinstance(item.get("metric"), dict) and isinstance(item.get("values"), list)
    if ok and all(isinstance(s, list) and len(s) == 2 and isinstance(s[0], int | float) and not isinstance(s[0], bool)
                  and isinstance(s[1], str) for s in item["values"]):
        return item["metric"], item["values"]
    raise ExportCommandError(f"{what}: the server returned a malformed series (expected "
                             f'{{"metric": {{...}}, "values": [[time, "value"], ...]}}): {json.dumps(item)[:200]}')


def _export_target(spec: ModelSpec, target: Target, rng: TimeRange, parts: list[Chunk], client: Client,
                   cache: ChunkCache, tick: Callable[[str, Chunk, bool], None]) -> tuple[bytes, int, int]:
    results: list[list[list[dict[str, Any]]]] = []
    for query in target.queries:
        per_chunk = []
        for chunk in parts:
            result = cache.get(query, chunk, rng.step)
            cached = result is not None
            if result is None:
                result = client.query_range(query, chunk.start, chunk.end, rng.step)
                cache.put(query, chunk, rng.step, result)
            per_chunk.append(result)
            tick(target.metric, chunk, cached)
        results.append(per_chunk)
    where = f"{client.address}: {' and '.join(target.queries)}"
    merged = merge(results, where)
    if not merged:
        raise ExportCommandError(
            f"{spec.spec_path}: {' and '.join(target.queries)} matched no series on {client.address} "
            f"from {rfc3339(rng.start)} to {rfc3339(rng.end)}",
            hint="check prometheus.selector and the signal's labels, and that --start/--end cover the history")
    doc = {"status": "success", "data": {"resultType": "matrix", "result": merged}}
    parse_query_range(doc, target.path)  # the fitter's own checks, before anything is written
    return render_export(doc), len(merged), sum(len(s["values"]) for s in merged)


def export_model(root: Path, spec: ModelSpec, rng: TimeRange, client: Client,
                 points_per_chunk: int = MAX_POINTS, progress: Callable[[Progress], None] | None = None
                 ) -> ExportResult:
    """Fetch, merge, check and write every export file of ``spec``, then its manifest."""
    targets, unused = plan(spec, root)
    if not targets:
        raise ExportCommandError(f"{spec.spec_path}: every metric comes from non-JSON exports; nothing to export")
    directory = PurePosixPath(targets[0].path).parent
    parts = chunks(rng, points_per_chunk)
    cache = ChunkCache(root / directory / PARTIAL / spec.name, client.address)
    total = sum(len(t.queries) for t in targets) * len(parts)
    counts = {"done": 0, "cached": 0}

    def tick(metric: str, chunk: Chunk, cached: bool) -> None:
        counts["done"] += 1
        counts["cached"] += cached
        if progress is not None:
            progress(Progress(spec.name, counts["done"], total, metric, chunk, cached))

    rendered: dict[str, tuple[Target, bytes, int, int]] = {}
    for target in targets:
        data, n_series, n_samples = _export_target(spec, target, rng, parts, client, cache, tick)
        rendered[target.path] = (target, data, n_series, n_samples)
    files = []
    for rel, (target, data, n_series, n_samples) in rendered.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        files.append(FileResult(rel, target.metric, n_series, n_samples, hashlib.sha256(data).hexdigest()))
    manifest_rel = (directory / MANIFEST).as_posix()
    write_atomic(root / manifest_rel, manifest(spec, client.address, rng, points_per_chunk, len(parts), targets,
                                               files, unused))
    cache.clear()
    return ExportResult(spec.name, tuple(files), manifest_rel, tuple(unused), counts["done"] - counts["cached"],
                        counts["cached"], rng)


def manifest(spec: ModelSpec, server: str, rng: TimeRange, points_per_chunk: int, n_chunks: int,
             targets: list[Target], files: list[FileResult], unused: list[str]) -> bytes:
    """What was exported, from where and how; header *names* only, and never a credential."""
    by_path = {f.path: f for f in files}
    doc = {
        "driftgate_export": MANIFEST_VERSION,
        "model": spec.name,
        "spec": spec.spec_path,
        "server": server,
        "auth": spec.prometheus.auth.kind,
        "headers": [name for name, _ in spec.prometheus.auth.headers],
        "start": rfc3339(rng.start),
        "end": rfc3339(rng.end),
        "step": prom_duration(rng.step),
        "step_seconds": rng.step,
        "points_per_chunk": points_per_chunk,
        "chunks_per_query": n_chunks,
        "files": [{"path": t.path, "metric": t.metric, "queries": list(t.queries), "signals": list(t.signals),
                   "series": by_path[t.path].series, "samples": by_path[t.path].samples,
                   "sha256": by_path[t.path].sha256} for t in targets],
        "unused_exports": unused,
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


# --------------------------------------------------------------------------------------------
# The command


def export(root: Path, spec_dir: Path, only: str | None, start: str, end: str, step: str,
           url: str | None = None, timeout: float = 120.0, points_per_chunk: int = MAX_POINTS,
           progress: Callable[[Progress], None] | None = None, on_retry: Notify | None = None,
           now: float | None = None, environ: Mapping[str, str] | None = None, sleep: Sleep = time.sleep,
           tries: int = 5, backoff: float = 1.0) -> list[ExportResult]:
    """Export every selected model. Specs, range, exports lists and credentials are checked first."""
    specs = load_specs(root, spec_dir, only, check_exports=False)
    rng = parse_range(start, end, step, time.time() if now is None else now)
    if url is not None and not names.URL.fullmatch(url):
        raise ExportCommandError(f"--url: expected {names.describe_grammar(names.URL)}, got "
                                 f"{quote(names.without_userinfo(url))}",
                                 hint="credentials never go in a URL: use prometheus.auth in the spec")
    chunks(rng, points_per_chunk)  # validates points_per_chunk
    clients = []
    for spec in specs:
        plan(spec, root)
        creds = resolve_credentials(spec.prometheus.auth, root, spec.spec_path, environ)
        clients.append(Client(url or spec.prometheus.address, creds, timeout=timeout, tries=tries,
                              backoff=backoff, sleep=sleep, on_retry=on_retry))
    return [export_model(root, spec, rng, client, points_per_chunk, progress)
            for spec, client in zip(specs, clients, strict=True)]
