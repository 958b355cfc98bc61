"""A tiny loopback HTTP server for connector tests and demos, with faults injected on demand.

Routes map `(method, path)` to a handler `(request) -> (status, headers, body)`; a path may
hold `{name}` segments (`/v1/deals/{id}/flow`), bound into `request.path_params`. The body may
be bytes, text, or any JSON-serialisable object. Faults queued on a path replace or spoil the
next N matching responses (see Fault). Every request is recorded, with credentials redacted,
in `server.requests`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

Body = bytes | str | dict | list | None
Response = tuple[int, Mapping[str, str], Body]
Handler = Callable[["Request"], Response]

REDACTED = "***"
_SECRET_PARAM = re.compile(r"token|secret|passw|key|signature|credential|auth|session", re.I)

# Bounds that keep every request's handling finite whatever a test or client does.
MAX_FAULT_DELAY = 30.0
MAX_REQUEST_BYTES = 10 * 1024 * 1024
IDLE_CONNECTION_TIMEOUT = 10.0


@dataclass(frozen=True)
class Request:
    """One request as the handler sees it; the recorded copy has credentials redacted."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter (the common single-valued case)."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def redacted(self) -> Request:
        """A copy safe to keep and print: auth header and secret-looking params hidden."""
        headers = {
            k: _redact_auth_header(v)
            if k.lower() in ("authorization", "proxy-authorization")
            else REDACTED
            if _SECRET_PARAM.search(k)  # e.g. Pipedrive's `x-api-token`
            else v
            for k, v in self.headers.items()
        }
        query = {
            k: [REDACTED] * len(v) if _SECRET_PARAM.search(k) else list(v)
            for k, v in self.query.items()
        }
        return Request(self.method, self.path, query, headers, self.body, dict(self.path_params))


def _redact_auth_header(value: str) -> str:
    # Keep the scheme so a test can still assert "Bearer auth was used".
    scheme, _, credential = value.partition(" ")
    return f"{scheme} {REDACTED}" if credential else REDACTED


@dataclass(frozen=True)
class Fault:
    """What to do to the next `times` requests matching a path.

    - `status`: answer with this status, `body` and `headers` (plus `Retry-After` when
      `retry_after` is set) instead of calling the route's handler.
    - `delay`: sleep this many seconds before answering (to outlast a client's read timeout).
    - `truncate`: spoil the body: "close" declares the full Content-Length but closes the
      connection after half of it; "half_json" sends a complete response whose body is the
      first half of the JSON document.
    Combine them freely: a delay before a 503, a truncated fault body, and so on.
    """

    status: int | None = None
    body: Body = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | float | None = None
    delay: float = 0.0
    truncate: Literal["close", "half_json"] | None = None
    times: int = 1
    method: str | None = None  # None: any method

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("a fault applies to at least one request")
        if not 0 <= self.delay <= MAX_FAULT_DELAY:
            raise ValueError(f"fault delay must be within [0, {MAX_FAULT_DELAY}] seconds")
        if self.truncate not in (None, "close", "half_json"):
            raise ValueError(f"unknown truncate mode {self.truncate!r}")
        if self.status is None and not self.delay and self.truncate is None:
            raise ValueError("a fault needs a status, a delay or a truncate mode")


class FaultQueue:
    """Faults per path, applied first-in first-out, each to its next `times` matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[str, Fault, list[int]]] = []

    def add(self, path: str, fault: Fault) -> None:
        """Queue `fault` for `path` (a route path, a `{name}` template, or "*" for any path)."""
        with self._lock:
            self._queue.append((path, fault, [fault.times]))

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        """How many requests queued faults will still spoil."""
        with self._lock:
            return sum(left[0] for _, _, left in self._queue)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if one is queued; consumes one of its `times`."""
        with self._lock:
            for i, (pattern, fault, left) in enumerate(self._queue):
                if fault.method not in (None, method):
                    continue
                if pattern != "*" and _match(pattern, path) is None:
                    continue
                left[0] -= 1
                if left[0] == 0:
                    del self._queue[i]
                return fault
        return None


def _match(pattern: str, path: str) -> dict[str, str] | None:
    """Path params when `path` fits the `{name}` template `pattern`, else None."""
    want = pattern.strip("/").split("/")
    got = path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params = {}
    for w, g in zip(want, got, strict=True):
        if w.startswith("{") and w.endswith("}"):
            if not g:
                return None
            params[w[1:-1]] = g
        elif w != g:
            return None
    return params


def _encode(body: Body, headers: dict[str, str]) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode()
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: connectors reuse connections, so the fake server must allow it.
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT  # an idle or silent client cannot hold a thread forever
    # Headers and body go out in separate writes: with Nagle's algorithm and delayed ACKs
    # every response on a kept-alive connection would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines (with query tokens) to stderr; stay quiet instead.
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            self._send(413, {}, {"error": "request body too large"})
            return
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
        )
        handler, params = app.resolve(request.method, request.path)
        request = replace(request, path_params=params)
        app.record(request.redacted())

        fault = app.faults.take(request.method, request.path)
        if fault is not None and fault.delay and app.stopping.wait(fault.delay):
            self.close_connection = True  # server shutting down: abandon the slow response
            return
        if fault is not None and fault.status is not None:
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            status, payload = fault.status, fault.body
        elif handler is None:
            status, headers, payload = (
                404,
                {},
                {"error": f"no route for {request.method} {request.path}"},
            )
        else:
            try:
                status, handler_headers, payload = handler(request)
                headers = dict(handler_headers)
            except Exception as exc:  # a broken handler must answer, not hang the client
                log.exception("fake server handler failed")
                status, headers, payload = (
                    500,
                    {},
                    {"error": f"handler raised {type(exc).__name__}"},
                )
        self._send(status, headers, payload, truncate=fault.truncate if fault else None)

    def _send(
        self, status: int, headers: dict[str, str], payload: Body, *, truncate: str | None = None
    ) -> None:
        data = _encode(payload, headers)
        declared = len(data)
        if truncate == "half_json":
            data = data[: len(data) // 2]
            declared = len(data)
        elif truncate == "close":
            data = data[: len(data) // 2]
            self.close_connection = True  # the rest never comes: the client sees a short read
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(declared))
            if truncate == "close":
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. read timeout during a delay fault): nothing to answer.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still sleeping in a delay fault never blocks shutdown
    app: FakeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections mid-response is expected here; no tracebacks on stderr.
        log.debug("fake server: connection from %s ended abruptly", client_address, exc_info=True)


class FakeApiServer:
    """A loopback HTTP API in a daemon thread: `with FakeApiServer(routes) as s: s.url`."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback or ":" in host:
            raise ValueError(f"FakeApiServer binds to an IPv4 loopback address only, not {host!r}")
        self.host = host
        self.port = port  # 0: a free port picked by the OS
        self.routes: dict[tuple[str, str], Handler] = {
            (method.upper(), path): handler for (method, path), handler in (routes or {}).items()
        }
        self.faults = FaultQueue()
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (the port is picked free by the OS)."""
        if self._httpd is None:
            raise RuntimeError("FakeApiServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add or replace a route while the server runs."""
        with self._lock:
            self.routes[(method.upper(), path)] = handler

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
        """The handler for a request and its path params; exact paths win over templates."""
        with self._lock:
            routes = dict(self.routes)
        if (method, path) in routes:
            return routes[(method, path)], {}
        for (route_method, pattern), handler in routes.items():
            if route_method == method and "{" in pattern:
                params = _match(pattern, path)
                if params is not None:
                    return handler, params
        return None, {}

    def record(self, request: Request) -> None:
        """Keep a (redacted) request for assertions."""
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        """Recorded requests for one path (and method)."""
        with self._lock:
            return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def start(self) -> FakeApiServer:
        """Bind the port (a free one by default) and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self.stopping.clear()
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeApiServer:{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any delayed handler and free the port."""
        if self._httpd is None:
            return
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
