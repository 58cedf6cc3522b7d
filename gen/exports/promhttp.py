"""A small client for the Prometheus HTTP API, for ``driftgate export`` (standard library only).

Why its own module: fetching history is the one place driftgate talks to a live system, so the
failure handling lives here, in one place, and is tested against a fake server:

* **Retries** with exponential backoff (``backoff * 2**n`` seconds, ``Retry-After`` honoured up to a
  minute) on 5xx, 429, timeouts and connection errors, at most ``tries`` attempts in all;
* **4xx is final**: the error names the server, the request (query, range, step) and the server's
  own ``errorType: error`` text, with a hint for 401/403 (credentials) and 422 (too many samples);
* **Secrets** (bearer token, basic-auth password) are read from the environment or a file when the
  client is built, sent as an ``Authorization`` header that is not forwarded on redirects, and
  scrubbed from every message this module produces. They are never part of a URL.

Prometheus-compatible stores (Thanos, Mimir, VictoriaMetrics) answer the same API.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftgate.errors import DriftgateError
from driftgate.exports.promjson import partial_response
from driftgate.fsio import FileRefused, read_bytes
from driftgate.model import CredentialRef, PrometheusAuth

USER_AGENT = "driftgate-export"
MAX_RETRY_AFTER = 60.0
MAX_GET_URL = 4000  # longer requests are sent as a form POST (both are part of the API)
MAX_SECRET_BYTES = 64 * 1024


MAX_MESSAGE = 600  # characters of a server's answer shown in an error, cut after redaction
# Characters of bearer tokens, base64 (standard and URL-safe), JWTs and passwords made of "safe" characters.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_.~-]+")


class PrometheusError(DriftgateError):
    """A request to Prometheus failed for good (4xx, or still failing after every retry)."""


class CredentialError(DriftgateError):
    """A credential named in ``prometheus.auth`` cannot be read."""


@dataclass(frozen=True)
class Credentials:
    """Resolved request headers. ``authorization`` is secret and never shown (see ``__repr__``)."""

    headers: tuple[tuple[str, str], ...] = ()  # plain, not secret (e.g. X-Scope-OrgID)
    authorization: str = field(default="", repr=False)  # "" or "Bearer ..." / "Basic ..."
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to scrub from messages

    def redact(self, text: str, limit: int = MAX_MESSAGE) -> str:
        """``text`` without any byte of a secret, *then* cut to ``limit`` characters.

        Whole secrets go first (longest first); then every run of token characters that shares 4
        consecutive characters with a secret: a server that echoes a cut Authorization header, or a
        body cut before it reached us, must not leak a prefix (or any piece) either. Cutting comes
        last, so that the cut can never leave a prefix that no longer matches the whole secret."""
        secrets = sorted({s for s in self.secrets if s}, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "<redacted>")
        if secrets:
            grams = {s[i:i + 4] for s in secrets for i in range(len(s) - 3)}
            text = _TOKEN_RUN.sub(lambda m: "<redacted>" if any(
                m.group(0)[i:i + 4] in grams for i in range(len(m.group(0)) - 3)) else m.group(0), text)
        return text if len(text) <= limit else text[:limit - 3] + "..."


def read_credential(ref: CredentialRef, root: Path, environ: Mapping[str, str], where: str) -> str:
    """The secret behind ``ref``; a clear error naming the variable or file (never the value)."""
    if ref.env:
        value = environ.get(ref.env)
        if not value:
            raise CredentialError(f"{where}: environment variable {ref.env} is not set or empty")
        return value.strip()
    path = Path(ref.file).expanduser()
    if not path.is_absolute():
        path = root / path
    try:  # a FIFO or a folder named as the credential file is refused, not read (it would block)
        raw = read_bytes(path, ref.file, MAX_SECRET_BYTES)
    except FileRefused as exc:
        raise CredentialError(f"{where}: cannot read {exc}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise CredentialError(f"{where}: {ref.file} is larger than {MAX_SECRET_BYTES} bytes; expected a credential")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"{where}: {ref.file} is not UTF-8 text") from None
    if not value:
        raise CredentialError(f"{where}: {ref.file} is empty")
    return value


def resolve_credentials(auth: PrometheusAuth, root: Path, where: str,
                        environ: Mapping[str, str] | None = None) -> Credentials:
    """Read the secrets ``auth`` refers to; ``where`` (the spec path) prefixes errors."""
    env = os.environ if environ is None else environ
    authorization = ""
    secrets: list[str] = []
    if auth.bearer_token is not None:
        token = read_credential(auth.bearer_token, root, env, f"{where}: prometheus.auth.bearer_token")
        _check_header_value(token, f"{where}: prometheus.auth.bearer_token ({auth.bearer_token.describe()})")
        authorization = f"Bearer {token}"
        secrets.append(token)
    elif auth.basic is not None:
        password = read_credential(auth.basic.password, root, env, f"{where}: prometheus.auth.basic.password")
        pair = base64.b64encode(f"{auth.basic.username}:{password}".encode()).decode("ascii")
        authorization = f"Basic {pair}"
        secrets.extend([password, pair])
    return Credentials(auth.headers, authorization, tuple(secrets))


def _check_header_value(value: str, where: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value) or not value.isascii():
        raise CredentialError(f"{where}: the credential contains control or non-ASCII characters")


Sleep = Callable[[float], None]
Notify = Callable[[str], None]


class Client:
    """``GET/POST <address>/api/v1/...`` with retries; returns the ``data`` member of the response."""

    def __init__(self, address: str, credentials: Credentials | None = None, timeout: float = 120.0,
                 tries: int = 5, backoff: float = 1.0, sleep: Sleep = time.sleep,
                 on_retry: Notify | None = None) -> None:
        if tries < 1:
            raise ValueError("tries must be at least 1")
        self.address = address.rstrip("/")
        self.credentials = credentials or Credentials()
        self.timeout = timeout
        self.tries = tries
        self.backoff = backoff
        self.sleep = sleep
        self.on_retry = on_retry
        self._opener = urllib.request.build_opener()

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The matrix of a ``query_range`` request: ``[{"metric": {...}, "values": [[t, "v"], ...]}]``."""
        what = f"query_range {query!r} from {_stamp(start)} to {_stamp(end)} step {step:g}s"
        data = self.api("query_range", {"query": query, "start": _num(start), "end": _num(end),
                                        "step": _num(step)}, what)
        if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(
                data.get("result"), list):
            raise PrometheusError(self.credentials.redact(f"{self.address}: {what}: expected a matrix result, got "
                                                          f"{_short(json.dumps(data)[:65536])}"))
        result: list[dict[str, Any]] = data["result"]
        return result

    def query(self, query: str, at: float) -> Any:
        """The ``data`` of an instant query at unix time ``at``."""
        return self.api("query", {"query": query, "time": _num(at)}, f"query {query!r} at {_stamp(at)}")

    def api(self, endpoint: str, params: dict[str, str], what: str) -> Any:
        url = f"{self.address}/api/v1/{endpoint}"
        body = urllib.parse.urlencode(params)
        last = ""
        for attempt in range(self.tries):
            try:
                return self._once(url, body, what)
            except _Retryable as exc:
                last = exc.reason
                if attempt + 1 == self.tries:
                    break
                delay = self.backoff * 2 ** attempt
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER))
                if self.on_retry is not None:
                    self.on_retry(self.credentials.redact(
                        f"{what}: {last}; retry {attempt + 2}/{self.tries} in {delay:g}s"))
                self.sleep(delay)
        raise PrometheusError(self.credentials.redact(
            f"{self.address}: {what} failed after {self.tries} attempts: {last}"),
            hint="check that the server is reachable (--url overrides prometheus.address, e.g. for a "
                 "port-forward); an interrupted export resumes where it stopped when run again")

    def _request(self, url: str, body: str) -> urllib.request.Request:
        if len(url) + 1 + len(body) <= MAX_GET_URL:
            req = urllib.request.Request(f"{url}?{body}", method="GET")
        else:
            req = urllib.request.Request(url, data=body.encode("ascii"), method="POST")
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", USER_AGENT)
        for name, value in self.credentials.headers:
            req.add_header(name, value)
        if self.credentials.authorization:
            # Unredirected: urllib does not forward it when a redirect points elsewhere.
            req.add_unredirected_header("Authorization", self.credentials.authorization)
        return req

    def _once(self, url: str, body: str, what: str) -> Any:
        try:
            with self._opener.open(self._request(url, body), timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _server_error(_read_body(exc))
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status >= 500 or status == 429:
                raise _Retryable(f"HTTP {status} {detail}", retry_after) from None
            raise PrometheusError(self.credentials.redact(f"{self.address}: {what}: HTTP {status} {detail}"),
                                  hint=_hint(status)) from None
        except TimeoutError as exc:
            raise _Retryable(f"timed out after {self.timeout:g}s ({exc})", None) from None
        except urllib.error.URLError as exc:
            raise _Retryable(f"cannot connect: {exc.reason}", None) from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__} {exc}", None) from None
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # (deep nesting recurses)
            raise PrometheusError(self.credentials.redact(
                f"{self.address}: {what}: the response is not JSON: {_short(raw[:65536].decode('utf-8', 'replace'))}"),
                hint="is the address a Prometheus server (not its UI behind a login page)?") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            detail = _server_error(raw)
            raise PrometheusError(self.credentials.redact(f"{self.address}: {what}: {detail}"))
        # A partial answer (a Thanos store, a Mimir ingester or a shard did not reply) is a "success" with
        # warnings: written as an export it would be fitted as if the traffic had dropped.
        partial = partial_response(doc, self.credentials.redact)
        if partial:
            raise PrometheusError(self.credentials.redact(f"{self.address}: {what}: {partial}; nothing was "
                                                          f"written for it"),
                                  hint="run the export again once the server answers without warnings; "
                                       "chunks already fetched are kept and not asked for again")
        return doc.get("data")


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _read_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        return b""


def _server_error(raw: bytes) -> str:
    """``errorType: error`` from a Prometheus error body, else the start of the body."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        doc = None
    if isinstance(doc, dict) and (doc.get("error") or doc.get("errorType")):
        kind = doc.get("errorType") or "error"
        return _short(f"{kind}: {doc.get('error', '')}")
    text = raw[:65536].decode("utf-8", "replace").strip()
    return _short(text) if text else "(empty response)"


def _hint(status: int) -> str:
    if status in (401, 403):
        return ("the server refused the credentials: check prometheus.auth in the spec and the environment "
                "variable or file it names")
    if status == 422:
        return "the query loads too many samples at once: lower --points-per-chunk"
    if status == 404:
        return "check the address: it must be the server's base URL (the API is under /api/v1/)"
    return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(text: str) -> str:
    """One line. Not cut here: :meth:`Credentials.redact` cuts, after removing every secret."""
    return " ".join(text.split())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def rfc3339(t: float) -> str:
    """``2026-11-01T00:00:00Z`` (whole seconds; export ranges are aligned to the step)."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_stamp = rfc3339
