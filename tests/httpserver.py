"""A real HTTP/1.1 server for tests, on 127.0.0.1 (or another loopback address) port 0,
serving a directory plus programmable routes, in a background thread.

Routes set status, headers, body (bytes or a callable of the request), ETag /
Last-Modified with real conditional GET (304), a delay, 'dribble' (one byte every N
seconds), 'hang' (read the request, never answer), gzip / deflate / br when the client
accepts it, chunked transfer, redirects and raw bytes for malformed responses. The
server logs every request and counts requests in flight, overall and per Host header,
so tests can prove concurrency limits (use host aliases such as 'localhost' and
'127.0.0.1', or a second server on 127.0.0.2). It also acts as a plain HTTP forward
proxy: a request in absolute form is served from its path and marked ``proxied``.

    with LocalServer() as server:
        url = server.route("/feed.xml", body=b"<rss/>", etag='"v1"')
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import mimetypes
import selectors
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli

HOLD_LIMIT = 10.0  # seconds a `hold_until` route waits for its crowd at most

Body = bytes | Callable[["Request"], bytes]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    host: str  # from the Host header, without port
    headers: dict[str, str]
    time: float  # time.monotonic() when the request line was read
    proxied: bool = False


@dataclass
class Route:
    status: int = 200
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = "application/xml"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before answering
    # Answer only once this many requests are in flight at once (or after HOLD_LIMIT s),
    # then wait `delay`: a concurrency peak that does not depend on how fast a loaded
    # machine opens connections.
    hold_until: int | None = None
    dribble: float | None = None  # send the body one byte per this many seconds
    # with dribble: once this is set, the rest of the body at once (a fetch kept going,
    # as slow as it likes, until the test has done what it does mid-fetch)
    dribble_until: threading.Event | None = None
    hang: bool = False  # never answer (with raw: send it, then never close)
    encoding: str | None = None  # "gzip" | "deflate" | "br", if Accept-Encoding allows
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    raw: bytes | None = None  # write these bytes as the whole response, then close


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # fetch tests open 64+ connections at once
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (timeouts, body caps) are expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 30  # idle keep-alive connections give up eventually
    # The head and the body go out in two writes: with Nagle's algorithm the body waited
    # for the client's delayed ACK of the head, ~40 ms on Linux, at every answer with a
    # body (a poll of one feed took ~70 ms, ~30 of them its own work). Time spent on the
    # test server's way of writing, not on the code under test.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        with self.server.owner._lock:
            self.server.owner._connections.add(self.connection)
            self.server.owner.connections_opened += 1

    def finish(self) -> None:
        with self.server.owner._lock:
            self.server.owner._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        path, proxied = self.path, False
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            proxied = True
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        request = Request(
            method=self.command,
            path=path,
            host=host,
            headers={k.lower(): v for k, v in self.headers.items()},
            time=time.monotonic(),
            proxied=proxied,
        )
        owner._enter(request)
        try:
            route = owner._routes.get(path) or owner._routes.get(path.split("?")[0])
            if route is None:
                route = owner._file_route(path.split("?")[0])
            self._answer(route, request)
        finally:
            owner._leave(request)

    def _answer(self, route: Route, request: Request) -> None:
        owner = self.server.owner
        stop = owner._stop
        if route.hold_until is not None:
            owner._hold(route.hold_until)
        if route.delay and stop.wait(route.delay):
            return
        if route.raw is not None:
            self.wfile.write(route.raw)
            self.wfile.flush()
            if route.hang:  # then keep the connection open, as a keep-alive server does
                stop.wait()
            self.close_connection = True
            return
        if route.hang:
            stop.wait()
            self.close_connection = True
            return
        headers = dict(route.headers)
        if route.content_type and "Content-Type" not in headers:
            headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if _not_modified(request.headers, route.etag, route.last_modified):
            self.send_response(304)
            for name in ("ETag", "Last-Modified", "Cache-Control", "Expires"):
                if name in headers:
                    self.send_header(name, headers[name])
            self.end_headers()
            return
        body = route.body(request) if callable(route.body) else route.body
        accepted = request.headers.get("accept-encoding", "")
        if route.encoding and route.encoding in [
            a.split(";")[0].strip() for a in accepted.split(",")
        ]:
            body = _encode(body, route.encoding)
            headers["Content-Encoding"] = route.encoding
            headers["Vary"] = "Accept-Encoding"
        self.send_response(route.status)
        for name, value in headers.items():
            self.send_header(name, value)
        no_body = self.command == "HEAD" or route.status in (204, 304) or route.status < 200
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if no_body:
            return
        if route.dribble is not None:
            for i in range(len(body)):
                if route.dribble_until is not None and route.dribble_until.is_set():
                    self.wfile.write(body[i:])
                    break
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if stop.wait(route.dribble):
                    return
        elif route.chunked:
            for i in range(0, len(body), 64 * 1024):
                piece = body[i : i + 64 * 1024]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)
        self.wfile.flush()


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=9)
    if encoding == "deflate":
        return zlib.compress(body, 9)
    if encoding == "br":
        return bytes(brotli.compress(body))
    raise ValueError(f"unknown encoding {encoding}")


def _not_modified(headers: Mapping[str, str], etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 13.1: If-None-Match (weak comparison) wins over If-Modified-Since."""
    if "if-none-match" in headers:
        if not etag:
            return False
        tags = {t.strip().removeprefix("W/") for t in headers["if-none-match"].split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    since = headers.get("if-modified-since")
    if since and last_modified:
        try:
            return email.utils.parsedate_to_datetime(
                last_modified
            ) <= email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


class LocalServer:
    """The server; use as a context manager or call start() / stop()."""

    def __init__(
        self, root: Path | None = None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.root = root
        self.host = host
        self.tls = tls  # serve HTTPS with this server-side context
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified on every request
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self.connections_opened = 0  # accepted since start (keep-alive reuse shows here)
        self._log: list[Request] = []
        self._in_flight = 0
        self._host_in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.max_in_flight_by_host: dict[str, int] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> LocalServer:
        self._httpd = _HTTPServer((self.host, 0), _Handler)
        self._httpd.owner = self
        if self.tls is not None:
            # Handshakes happen in the handler threads, not in the accept loop.
            self._httpd.socket = self.tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        """serve_forever's loop, but stop() wakes it at once: serve_forever looks for a
        shutdown every poll_interval (0.05 s), which was ~25 ms of every test's teardown."""
        httpd = self._httpd
        assert httpd is not None
        with selectors.DefaultSelector() as selector:
            selector.register(httpd, selectors.EVENT_READ)
            selector.register(self._wake, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.fileobj is httpd and not self._stop.is_set():
                        httpd._handle_request_noblock()  # accept, then a handler thread

    def stop(self) -> None:
        self._stop.set()  # releases hanging and dribbling handlers, and the accept loop
        with self._arrived:
            self._arrived.notify_all()  # and held ones
        if self._thread is not None:
            with contextlib.suppress(OSError):  # stopped before
                self._waker.send(b"x")
            self._thread.join(timeout=5)
            self._wake.close()
            self._waker.close()
        if self._httpd is not None:
            self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/", host: str | None = None) -> str:
        """URL of ``path`` on this server, optionally through a host alias."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    # routes

    def route(self, path: str, **options: Any) -> str:
        """Add or replace a route (see :class:`Route` for options); returns its URL."""
        self._routes[path] = Route(**options)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        return self.route(path, status=status, headers={"Location": to}, content_type=None)

    def _file_route(self, path: str) -> Route:
        if self.root is not None:
            target = (self.root / path.lstrip("/")).resolve()
            if target.is_file() and target.is_relative_to(self.root.resolve()):
                stat = target.stat()
                kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return Route(
                    body=target.read_bytes(),
                    content_type=kind,
                    etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
                    last_modified=email.utils.formatdate(stat.st_mtime, usegmt=True),
                )
        return Route(status=404, body=b"not found", content_type="text/plain")

    # observations

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def reset(self) -> None:
        """Forget the log and the in-flight maxima (routes stay)."""
        with self._lock:
            self._log.clear()
            self.max_in_flight = 0
            self.max_in_flight_by_host = {}

    def _hold(self, count: int) -> None:
        with self._arrived:
            self._arrived.wait_for(
                lambda: self.max_in_flight >= count or self._stop.is_set(), HOLD_LIMIT
            )

    def _enter(self, request: Request) -> None:
        with self._arrived:
            self._log.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            now = self._host_in_flight.get(request.host, 0) + 1
            self._host_in_flight[request.host] = now
            peak = max(self.max_in_flight_by_host.get(request.host, 0), now)
            self.max_in_flight_by_host[request.host] = peak
            self._arrived.notify_all()

    def _leave(self, request: Request) -> None:
        with self._lock:
            self._in_flight -= 1
            self._host_in_flight[request.host] -= 1


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
