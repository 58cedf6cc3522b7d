"""``driftgate export`` against a fake Prometheus (``http.server`` in a thread).

Chunking maths, byte-identical and deterministic output, retries (503, timeouts, refused
connections) with their backoff, final 4xx errors naming the query and the server's message,
resuming an interrupted export, credentials sent but never written or shown, and the
``prometheus.auth`` spec section. The real-server counterpart is ``test_prometheus_server.py``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as hs

from driftgate import export as ex
from driftgate import synth
from driftgate.cli import main
from driftgate.errors import SpecError
from driftgate.exports.load import load_store
from driftgate.exports.promhttp import Client, CredentialError, PrometheusError
from driftgate.spec.load import load_specs
from tests.promserver import free_port

START = int(datetime(2026, 10, 20, tzinfo=UTC).timestamp())
STEP = 60
TOKEN = "tok-9f8e7d6c5b4a-never-write-me"
PASSWORD = "pw-0a1b2c3d-never-write-me"

SERVICE = synth.ServiceModel(
    job="toy", namespace="toy", metric_prefix="toy", pods=2, pod_template_hash="5f7c9b8d6", peak_rps=5.0,
    score=synth.ScoreModel(bounds=(0.25, 0.5, 0.75), components=(synth.BetaComponent(1.0, 2.0, 3.0),)),
    latency=synth.LatencyModel(bounds=(0.05, 0.1), mu=-3.0, sigma=0.5), restarts=1)
DOCS = synth.generate(SERVICE, START, 1, STEP, 11)  # 1441 minutes
END = START + 86400
NEEDED = ["toy_score_bucket", "toy_request_errors_total", "toy_requests_total"]


def spec_text(auth: str = "", exports: list[str] | None = None) -> str:
    files = exports if exports is not None else [f"exports/toy/{m}.json" for m in NEEDED]
    return f"""\
model: toy
namespace: toy
rollout: toy
team: {{name: toy, slack_channel: "#toy", slack_webhook: {{secret: toy-alerting, key: slack}}}}
rollback_authority: {{name: Toy lead, contact: pager, pagerduty_routing_key: {{secret: toy-alerting, key: pd}}}}
prometheus:
  address: http://prometheus.invalid:9090
  selector: {{job: toy, namespace: toy}}
{auth}budget: {{auto: 1/quarter}}
history:
  exports: [{", ".join(files)}]
freeze: {{window: 24h, webhook: {{url: "http://gate:8080/f", token: {{secret: toy-alerting, key: gate}}}}}}
signals:
  - {{name: score_drift, kind: distribution_drift, metric: toy_score}}
  - {{name: errors, kind: error_ratio, numerator: toy_request_errors_total, denominator: toy_requests_total}}
"""


# --------------------------------------------------------------------------------------------
# The fake server

_SELECTOR = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$')
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Reply = tuple[int, dict[str, Any] | bytes]


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Fake:
    """Serves ``DOCS`` like ``/api/v1/query_range`` would; ``hook`` may answer a request instead."""

    docs: dict[str, dict[str, Any]]
    hook: Callable[[int, Request], Reply | None] | None = None
    delay: Callable[[int], float] = lambda n: 0.0
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def answer(self, req: Request) -> Reply:
        n = len(self.requests)
        self.requests.append(req)
        time.sleep(self.delay(n))
        if self.hook is not None:
            reply = self.hook(n, req)
            if reply is not None:
                return reply
        start, end, step = (int(float(req.params[k])) for k in ("start", "end", "step"))
        if (end - start) / step > 11000:
            return 400, {"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution of "
                         "11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}
        m = _SELECTOR.match(req.params["query"])
        assert m, req.params["query"]
        matchers = dict(_MATCHER.findall(m.group(2)))
        result = []
        for item in self.docs.get(m.group(1), {"data": {"result": []}})["data"]["result"]:
            if all(item["metric"].get(k) == v for k, v in matchers.items()):
                values = [s for s in item["values"] if start <= s[0] <= end and (s[0] - start) % step == 0]
                if values:
                    result.append({"metric": item["metric"], "values": values})
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake(DOCS)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, body: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(body or url.query))
            headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
            status, reply = state.answer(Request(url.path, params, headers))
            data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def repo(write_tree: Callable[[dict[str, str]], Path]) -> Path:
    return write_tree({"specs/toy.yaml": spec_text()})


def run(root: Path, fake: Fake, points: int = 500, **kw: Any) -> list[ex.ExportResult]:
    kw.setdefault("sleep", lambda s: None)
    return ex.export(root, root / "specs", None, "2026-10-20T00:00:00Z", "2026-10-21T00:00:00Z", "1m",
                     url=fake.url, points_per_chunk=points, **kw)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# Range and chunks


@given(start=hs.integers(0, 10**6), length=hs.integers(1, 10**5), step=hs.integers(1, 300),
       points=hs.integers(2, 12000))
def test_chunks_cover_the_range_once_within_the_limit(start: int, length: int, step: int, points: int) -> None:
    rng = ex.TimeRange(start * step, (start + length) * step, step)
    parts = ex.chunks(rng, points)
    assert parts[0].start == rng.start and parts[-1].end == rng.end
    for a, b in itertools.pairwise(parts):
        assert b.start == a.end + step  # contiguous, no overlap
        assert (b.start // step) % points == 0  # aligned to the epoch: resumable under a moving --end
    assert all(0 <= (c.end - c.start) // step < points for c in parts)
    assert sum((c.end - c.start) // step + 1 for c in parts) == rng.points


def test_chunks_of_a_28_day_export_at_1m() -> None:
    rng = ex.parse_range("-28d", "2026-11-01T00:00:00Z", "1m", now=0)
    parts = ex.chunks(rng)
    assert rng.points == 28 * 1440 + 1
    assert len(parts) == 5 and all((c.end - c.start) // 60 + 1 <= 11000 for c in parts)


def test_parse_range() -> None:
    now = START + 3600 + 59.9
    assert ex.parse_range("-1h", "now", "1m", now) == ex.TimeRange(START + 60, START + 3600, 60)
    assert ex.parse_range("2026-10-20T00:00:30Z", "2026-10-20T01:00:00+00:00", "1m", 0) == \
        ex.TimeRange(START + 60, START + 3600, 60)
    for args, message in [
        (("-1h", "now", "1.5m"), "--step: expected a duration like 1m"),
        (("-1h", "now", "500ms"), "--step: expected a whole number of seconds"),
        (("yesterday", "now", "1m"), "--start: expected an RFC 3339 time"),
        (("-1h", "2026-10-20T00:00:00", "1m"), "--end: the time needs a time zone"),
        (("-30s", "now", "1m"), "fewer than two 1m steps"),
    ]:
        with pytest.raises(ex.ExportCommandError, match=re.escape(message)):
            ex.parse_range(*args, now=now)


# --------------------------------------------------------------------------------------------
# Output


def test_export_writes_what_the_fitter_reads(repo: Path, fake: Fake) -> None:
    (result,) = run(repo, fake)
    for metric in NEEDED:
        assert (repo / f"exports/toy/{metric}.json").read_bytes() == synth.render_export(DOCS[metric])
    # 3 metrics x 4 chunks: 1441 minutes cut at multiples of 500 minutes since the epoch (260+500+500+181)
    assert len(fake.requests) == 3 * 4
    assert {r.params["query"] for r in fake.requests} == {f'{m}{{job="toy",namespace="toy"}}' for m in NEEDED}
    assert (result.fetched, result.cached) == (12, 0)
    (spec,) = load_specs(repo, repo / "specs")
    assert load_store(repo, spec).names == sorted(NEEDED)
    manifest = json.loads((repo / "exports/toy/manifest.json").read_text())
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256((repo / entry["path"]).read_bytes()).hexdigest()
    assert manifest["start"] == "2026-10-20T00:00:00Z" and manifest["end"] == "2026-10-21T00:00:00Z"
    assert manifest["step"] == "1m" and manifest["server"] == fake.url and manifest["auth"] == "none"
    assert not (repo / "exports/toy/.partial").exists()


def test_output_is_deterministic(repo: Path, fake: Fake, tmp_path_factory: pytest.TempPathFactory) -> None:
    run(repo, fake, points=500)
    first = tree(repo)
    run(repo, fake, points=700)  # other chunk boundaries, same bytes (but the manifest records them)
    second = tree(repo)
    assert {k: v for k, v in first.items() if "manifest" not in k} == \
        {k: v for k, v in second.items() if "manifest" not in k}
    run(repo, fake, points=500)
    assert tree(repo) == first


def test_duplicate_boundary_samples_are_merged_once() -> None:
    a = [{"metric": {"__name__": "x", "pod": "a"}, "values": [[1, "1"], [2, "2"]]}]
    b = [{"metric": {"__name__": "x", "pod": "a"}, "values": [[2, "2"], [3, "3"]]},
         {"metric": {"__name__": "x", "pod": "0"}, "values": [[3, "9"]]}]
    merged = ex.merge([[a, b]], "test")
    assert merged == [{"metric": {"__name__": "x", "pod": "0"}, "values": [[3, "9"]]},
                      {"metric": {"__name__": "x", "pod": "a"}, "values": [[1, "1"], [2, "2"], [3, "3"]]}]


def test_a_needed_metric_without_an_export_file_is_an_error(write_tree: Callable[[dict[str, str]], Path],
                                                             fake: Fake) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(exports=["exports/toy/toy_score_bucket.json",
                                                            "exports/toy/toy_requests_total.json",
                                                            "exports/toy/extra.json"])})
    with pytest.raises(ex.ExportCommandError) as info:
        run(root, fake)
    assert str(info.value) == ("specs/toy.yaml: history.exports does not list the file(s) driftgate export writes: "
                               "exports/toy/toy_request_errors_total.json (for toy_request_errors_total, needed by "
                               "signal errors)")
    assert "exports/toy/" in info.value.hint
    assert not fake.requests


def test_signals_with_their_own_labels_share_one_file(write_tree: Callable[[dict[str, str]], Path],
                                                       fake: Fake) -> None:
    pods = [synth.pod_name("toy", "5f7c9b8d6", i) for i in range(2)]
    text = spec_text(exports=[f"exports/toy/{m}.json" for m in [*NEEDED, "extra"]])
    text = text.replace("  - {name: score_drift, kind: distribution_drift, metric: toy_score}\n",
                        "".join(f"  - {{name: drift_{i}, kind: distribution_drift, metric: toy_score, "
                                f"labels: {{pod: {pod}}}}}\n" for i, pod in enumerate(pods)))
    root = write_tree({"specs/toy.yaml": text})
    (spec,) = load_specs(root, root / "specs", check_exports=False)
    targets, unused = ex.plan(spec)
    assert targets[0].queries == tuple(
        f'toy_score_bucket{{job="toy",namespace="toy",pod="{pod}"}}' for pod in pods)
    assert unused == ["exports/toy/extra.json"]
    (result,) = run(root, fake)
    assert result.unused == ("exports/toy/extra.json",)
    assert (root / "exports/toy/toy_score_bucket.json").read_bytes() == synth.render_export(DOCS["toy_score_bucket"])
    assert not (root / "exports/toy/extra.json").exists()


def test_a_query_that_selects_a_subset_is_not_sent(write_tree: Callable[[dict[str, str]], Path]) -> None:
    text = spec_text().replace("  - {name: score_drift, kind: distribution_drift, metric: toy_score}\n",
                               "  - {name: score_drift, kind: distribution_drift, metric: toy_score}\n"
                               "  - {name: route_drift, kind: distribution_drift, metric: toy_score, "
                               "labels: {route: a}}\n")
    root = write_tree({"specs/toy.yaml": text})
    (spec,) = load_specs(root, root / "specs", check_exports=False)
    targets, _ = ex.plan(spec)
    assert targets[0].queries == ('toy_score_bucket{job="toy",namespace="toy"}',)
    assert targets[0].signals == ("score_drift", "route_drift")


def test_a_query_matching_nothing_is_an_error(repo: Path, fake: Fake) -> None:
    fake.docs = {k: v for k, v in DOCS.items() if k != "toy_requests_total"}
    with pytest.raises(ex.ExportCommandError, match=re.escape(
            'toy_requests_total{job="toy",namespace="toy"} matched no series on ' + fake.url)):
        run(repo, fake)
    assert not (repo / "exports/toy/toy_score_bucket.json").exists()  # nothing written


# --------------------------------------------------------------------------------------------
# Failures, retries, resume


def test_retries_503_with_backoff_then_succeeds(repo: Path, fake: Fake) -> None:
    fake.hook = lambda n, req: (503, {"status": "error", "errorType": "unavailable", "error": "busy"}) \
        if n < 2 else None
    sleeps: list[float] = []
    notes: list[str] = []
    run(repo, fake, sleep=sleeps.append, on_retry=notes.append)
    assert sleeps == [1.0, 2.0]
    assert "HTTP 503 unavailable: busy; retry 2/5 in 1s" in notes[0]
    assert (repo / "exports/toy/toy_requests_total.json").read_bytes() == synth.render_export(
        DOCS["toy_requests_total"])


def test_gives_up_after_five_tries(repo: Path, fake: Fake) -> None:
    fake.hook = lambda n, req: (502, b"<html>Bad Gateway</html>")
    sleeps: list[float] = []
    with pytest.raises(PrometheusError) as info:
        run(repo, fake, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert len(fake.requests) == 5
    assert str(info.value) == (f"{fake.url}: query_range 'toy_score_bucket{{job=\"toy\",namespace=\"toy\"}}' from "
                               f"2026-10-20T00:00:00Z to 2026-10-20T04:19:00Z step 60s failed after 5 attempts: "
                               f"HTTP 502 <html>Bad Gateway</html>")


def test_4xx_is_final_and_names_the_query_and_the_server_message(repo: Path, fake: Fake) -> None:
    fake.hook = lambda n, req: (400, {"status": "error", "errorType": "bad_data",
                                      "error": 'invalid parameter "query": 1:5: parse error: unexpected "}"'})
    with pytest.raises(PrometheusError) as info:
        run(repo, fake)
    assert len(fake.requests) == 1
    assert str(info.value) == (
        f"{fake.url}: query_range 'toy_score_bucket{{job=\"toy\",namespace=\"toy\"}}' from 2026-10-20T00:00:00Z to "
        f"2026-10-20T04:19:00Z step 60s: HTTP 400 bad_data: invalid parameter \"query\": 1:5: parse error: "
        f"unexpected \"}}\"")


def test_a_timeout_is_retried(repo: Path, fake: Fake) -> None:
    fake.delay = lambda n: 1.0 if n == 0 else 0.0
    notes: list[str] = []
    run(repo, fake, timeout=0.2, on_retry=notes.append)
    assert len(notes) == 1 and "timed out after 0.2s" in notes[0]


def test_a_refused_connection_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sleeps: list[float] = []
    client = Client(url, tries=3, sleep=sleeps.append)
    with pytest.raises(PrometheusError, match=r"failed after 3 attempts: cannot connect: .*refused") as info:
        client.query_range('x{job="a"}', START, START + 60, 60)
    assert sleeps == [1.0, 2.0]
    assert "--url" in info.value.hint


def test_an_interrupted_export_resumes_with_the_missing_chunks(repo: Path, fake: Fake) -> None:
    fake.hook = lambda n, req: (500, {"status": "error", "errorType": "internal", "error": "boom"}) if n == 5 \
        else None
    with pytest.raises(PrometheusError):
        run(repo, fake, tries=1)
    partial = repo / "exports/toy/.partial"
    assert len(list((partial / "toy").glob("*.json"))) == 5 and (partial / ".gitignore").is_file()
    assert not (repo / "exports/toy/toy_score_bucket.json").exists()
    first = len(fake.requests)
    (result,) = run(repo, fake)
    again = fake.requests[first:]
    assert (result.fetched, result.cached) == (7, 5) and len(again) == 7
    done = {(r.params["query"], r.params["start"]) for r in fake.requests[:5]}
    assert not done & {(r.params["query"], r.params["start"]) for r in again}
    assert not partial.exists()
    for metric in NEEDED:
        assert (repo / f"exports/toy/{metric}.json").read_bytes() == synth.render_export(DOCS[metric])


def test_long_queries_are_posted() -> None:
    client = Client("http://127.0.0.1:1")
    short = client._request("http://x/api/v1/query", "query=up")
    long = client._request("http://x/api/v1/query", "query=" + "a" * 5000)
    assert short.get_method() == "GET" and long.get_method() == "POST"


# --------------------------------------------------------------------------------------------
# Credentials


BEARER = "  auth:\n    bearer_token: {env: TOY_PROM_TOKEN}\n    headers: {X-Scope-OrgID: tenant-a}\n"


def test_bearer_token_and_headers_are_sent_never_written(write_tree: Callable[[dict[str, str]], Path],
                                                         fake: Fake) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(BEARER)})
    notes: list[str] = []
    fake.hook = lambda n, req: (503, {"status": "error", "errorType": "unavailable", "error": "echo " +
                                      req.headers.get("authorization", "")}) if n == 0 else None
    progress: list[str] = []
    run(root, fake, environ={"TOY_PROM_TOKEN": TOKEN + "\n"}, on_retry=notes.append,
        progress=lambda p: progress.append(repr(p)))
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert all(r.headers["x-scope-orgid"] == "tenant-a" for r in fake.requests)
    assert "echo Bearer <redacted>" in notes[0] and TOKEN not in " ".join(notes + progress)
    files = tree(root)
    assert not [k for k, v in files.items() if TOKEN.encode() in v]
    manifest = json.loads(files["exports/toy/manifest.json"])
    assert manifest["auth"] == "bearer" and manifest["headers"] == ["X-Scope-OrgID"]


def test_basic_auth_from_a_file_and_a_refusal_that_echoes_it(write_tree: Callable[[dict[str, str]], Path],
                                                            fake: Fake) -> None:
    auth = "  auth:\n    basic: {username: exporter, password: {file: secrets/prom-password}}\n"
    root = write_tree({"specs/toy.yaml": spec_text(auth), "secrets/prom-password": PASSWORD + "\n"})
    pair = base64.b64encode(f"exporter:{PASSWORD}".encode()).decode()
    fake.hook = lambda n, req: (401, {"status": "error", "errorType": "unauthorized",
                                      "error": f"bad credentials {req.headers.get('authorization')} {PASSWORD}"})
    with pytest.raises(PrometheusError) as info:
        run(root, fake)
    assert fake.requests[0].headers["authorization"] == f"Basic {pair}"
    message = info.value.render()
    assert "HTTP 401 unauthorized: bad credentials Basic <redacted> <redacted>" in message
    assert "prometheus.auth" in message and PASSWORD not in message and pair not in message
    assert not [k for k, v in tree(root).items() if PASSWORD.encode() in v and k != "secrets/prom-password"]


def test_credentials_are_not_forwarded_on_a_redirect(write_tree: Callable[[dict[str, str]], Path],
                                                     fake: Fake) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(BEARER)})
    seen: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(302)
            self.send_header("Location", fake.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        ex.export(root, root / "specs", None, "-1h", "2026-10-20T12:00:00Z", "1m",
                  url=f"http://127.0.0.1:{server.server_address[1]}", environ={"TOY_PROM_TOKEN": TOKEN})
    finally:
        server.shutdown()
        server.server_close()
    assert seen and all(h["authorization"] == f"Bearer {TOKEN}" for h in seen)
    assert fake.requests and all("authorization" not in r.headers for r in fake.requests)
    assert all(r.headers["x-scope-orgid"] == "tenant-a" for r in fake.requests)


def test_a_missing_credential_names_the_variable(write_tree: Callable[[dict[str, str]], Path], fake: Fake) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(BEARER)})
    with pytest.raises(CredentialError, match=re.escape(
            "specs/toy.yaml: prometheus.auth.bearer_token: environment variable TOY_PROM_TOKEN is not set")):
        run(root, fake, environ={})
    assert not fake.requests


def test_a_url_with_credentials_is_refused(repo: Path) -> None:
    with pytest.raises(ex.ExportCommandError, match=r"--url: expected an http\(s\) URL .* without credentials.*"
                       r"got 'http://<credentials redacted>@prometheus:9090'"):
        ex.export(repo, repo / "specs", None, "-1h", "now", "1m", url="http://user:pw@prometheus:9090")


@pytest.mark.parametrize(("auth", "expected"), [
    ("  auth:\n    bearer_token: abc123\n",
     "specs/toy.yaml:10:5: error: prometheus.auth.bearer_token: expected a credential reference {env: NAME} or "
     "{file: path}, got a literal string; secrets are referenced, never inlined"),
    ("  auth:\n    basic: {username: u, password: hunter2}\n",
     "specs/toy.yaml:10:26: error: prometheus.auth.basic.password: expected a credential reference {env: NAME} or "
     "{file: path}, got a literal string; secrets are referenced, never inlined"),
    ("  auth:\n    bearer_token: {env: T}\n    basic: {username: u, password: {env: P}}\n",
     "specs/toy.yaml:9:3: error: prometheus.auth: expected exactly one of bearer_token or basic, got both"),
    ("  auth:\n    bearer_token: {env: T, file: /t}\n",
     "specs/toy.yaml:10:5: error: prometheus.auth.bearer_token: expected exactly one of env or file, got both"),
    ("  auth:\n    bearer_token: {env: 1T}\n",
     "specs/toy.yaml:10:20: error: prometheus.auth.bearer_token.env: expected an environment variable name "
     "matching [A-Za-z_][A-Za-z0-9_]*, got a string of 2 characters (the value is not shown: a secret pasted here "
     "must not be printed)"),
    ("  auth:\n    headers: {Authorization: Bearer abc}\n",
     "specs/toy.yaml:10:15: error: prometheus.auth.headers.Authorization: header 'Authorization' is not allowed "
     "here: use prometheus.auth.bearer_token or prometheus.auth.basic"),
    ("  auth:\n    headers: {'X Tenant': a}\n",
     "specs/toy.yaml:10:15: error: prometheus.auth.headers.X Tenant: expected an HTTP header name (letters, digits "
     "and !#$%&'*+-.^_`|~), got 'X Tenant'"),
    ("  auth:\n    headers: {X-Scope-OrgID: 7}\n",
     "specs/toy.yaml:10:15: error: prometheus.auth.headers.X-Scope-OrgID: expected a non-empty string header value "
     "(header values are not secret), got integer 7"),
    ("  auth:\n    token: {env: T}\n",
     "specs/toy.yaml:10:5: error: prometheus.auth.token: unknown key 'token'; expected one of basic, bearer_token, "
     "headers"),
])
def test_auth_spec_errors(write_tree: Callable[[dict[str, str]], Path], auth: str, expected: str) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(auth)})
    with pytest.raises(SpecError) as info:
        load_specs(root, root / "specs", check_exports=False)
    assert expected in [p.format() for p in info.value.problems]


def test_auth_spec_loads(write_tree: Callable[[dict[str, str]], Path]) -> None:
    root = write_tree({"specs/toy.yaml": spec_text(
        "  auth:\n    basic: {username: exporter, password: {file: /run/secrets/prom}}\n"
        "    headers: {X-Scope-OrgID: tenant-a}\n")})
    (spec,) = load_specs(root, root / "specs", check_exports=False)
    auth = spec.prometheus.auth
    assert auth.kind == "basic" and auth.basic is not None
    assert (auth.basic.username, auth.basic.password.file) == ("exporter", "/run/secrets/prom")
    assert auth.headers == (("X-Scope-OrgID", "tenant-a"),)


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_export_reports_progress_and_files(repo: Path, fake: Fake) -> None:
    result = CliRunner().invoke(main, ["export", "--root", str(repo), "--url", fake.url, "--start",
                                       "2026-10-20T00:00:00Z", "--end", "2026-10-21T00:00:00Z",
                                       "--points-per-chunk", "1000"])
    assert result.exit_code == 0, result.output
    assert "toy: chunk 1/6 toy_score_bucket 2026-10-20T00:00:00Z..2026-10-20T12:39:00Z\n" in result.stderr
    assert "toy: chunk 6/6 toy_requests_total 2026-10-20T12:40:00Z..2026-10-21T00:00:00Z\n" in result.stderr
    assert "exports/toy/toy_score_bucket.json: 8 series, 11528 samples" in result.stdout
    assert "exports/toy/manifest.json: 6 chunk(s) fetched, 0 resumed" in result.stdout


def test_cli_export_error_exits_1(repo: Path, fake: Fake) -> None:
    fake.hook = lambda n, req: (400, {"status": "error", "errorType": "bad_data", "error": "nope"})
    result = CliRunner().invoke(main, ["export", "--root", str(repo), "--url", fake.url, "--start", "-1h"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"driftgate: error: {fake.url}: query_range 'toy_score_bucket")
    assert "HTTP 400 bad_data: nope" in result.stderr
