"""A small HTTP server for merged feeds, so a feed reader can subscribe to "DNS, all
sources, deduplicated".

Routes: ``/feed.atom``, ``/feed.rss``, ``/feed.json`` with optional query parameters
``topic`` (repeatable), ``feed``, ``q``, ``since`` (7d, 24h, ISO date) and ``limit`` (100;
0 or more than 1000 gives 1000);
``/topics/<Topic>.atom`` (or .rss / .json) as a shorthand; ``/`` lists the topic feeds.
Conditional GET with a strong ETag over the body (RFC 9110 §13.1.2); the body is gzipped
for clients that accept it (every feed reader does; merged feeds with full text compress
~5x), with its own ETag (``"…-gzip"``: a strong validator names one representation) and
``Vary: Accept-Encoding``. Rendering goes through ``App.export``; this module only speaks
HTTP.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .app import App
from .config import parse_when
from .errors import AggregatorError, ConfigError, StoreUnavailableError
from .types import StoryQuery

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
_FEED_PATH = re.compile(r"^/(?:feed|topics/(?P<topic>[^/]+))\.(?P<fmt>atom|rss|json)$")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
GZIP_MIN_BYTES = 1024  # smaller bodies gain less than the header costs


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding value admits gzip (RFC 9110 §12.5.3): listed, or
    covered by ``*``, with a q-value above zero."""
    if not header:
        return False
    quality: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[name.strip().lower()] = q
    for name in ("gzip", "x-gzip", "*"):
        if name in quality:
            return quality[name] > 0
    return False


def _limit(value: str) -> int:
    """The ``limit`` parameter: 0 is "no limit" as for the CLI's ``--limit``; either way
    at most MAX_LIMIT stories, so one request cannot make the server render them all."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ConfigError("limit must be a whole number, 0 for no limit")
    return MAX_LIMIT if n == 0 else min(n, MAX_LIMIT)


def _matches(if_none_match: str | None, tags: set[str]) -> bool:
    """Whether an If-None-Match value names one of ``tags`` or is ``*``. The comparison is
    weak (RFC 9110 §13.1.2, §13.1.3): ``W/"x"`` matches ``"x"``, as a cache or proxy may
    have weakened our strong tag."""
    for tag in (if_none_match or "").split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") in tags:
            return True
    return False


def make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "aggregator"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(
            self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(
            self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
        ) -> None:
            self._send(status, (message + "\n").encode(), "text/plain; charset=utf-8", headers)

        def _unavailable(self, e: StoreUnavailableError) -> None:
            # The database, not the request: locked, or PostgreSQL restarting. A 400 told
            # readers their URL was wrong (and the index page got no answer at all);
            # 503 with Retry-After says come back, and the server keeps serving.
            log.warning("cannot read the stories: %s", e)
            self._error(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "the database is unavailable; try again shortly",
                {"Retry-After": "30"},
            )

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html"):
                self._index()
                return
            m = _FEED_PATH.match(url.path)
            if not m:
                self._error(HTTPStatus.NOT_FOUND, "not found; try /feed.atom?topic=DNS")
                return
            params = parse_qs(url.query)
            topics = list(params.get("topic", []))
            if m.group("topic"):
                topics.append(unquote(m.group("topic")))
            fmt = m.group("fmt")
            try:
                limit = _limit(params.get("limit", [str(DEFAULT_LIMIT)])[0])
                query = StoryQuery(
                    topics=tuple(topics),
                    feed=params.get("feed", [None])[0],
                    text=params.get("q", [None])[0],
                    since=parse_when(params.get("since", [None])[0], option="since"),
                    limit=limit,
                )
                body = app.export(query, fmt, self_url=self._self_url()).encode("utf-8")  # type: ignore[arg-type]
            except StoreUnavailableError as e:
                self._unavailable(e)
                return
            except (AggregatorError, ValueError) as e:
                self._error(HTTPStatus.BAD_REQUEST, str(e))
                return
            digest = hashlib.sha256(body).hexdigest()[:32]
            zipped = len(body) >= GZIP_MIN_BYTES and accepts_gzip(
                self.headers.get("Accept-Encoding")
            )
            etag = f'"{digest}-gzip"' if zipped else f'"{digest}"'
            headers = {"ETag": etag, "Cache-Control": "max-age=300", "Vary": "Accept-Encoding"}
            # Either coding of the same body satisfies the client's cached copy; "*" any.
            if _matches(self.headers.get("If-None-Match"), {f'"{digest}"', f'"{digest}-gzip"'}):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if zipped:
                body = gzip.compress(body, compresslevel=6, mtime=0)
                headers["Content-Encoding"] = "gzip"
            self._send(HTTPStatus.OK, body, CONTENT_TYPES[fmt], headers)

        def _self_url(self) -> str:
            host = self.headers.get("Host")
            if not host:
                addr = self.server.server_address
                host = _hostport(addr[0], addr[1]) if isinstance(addr, tuple) else str(addr)
            return f"http://{host}{self.path}"

        def _index(self) -> None:
            rows = []
            try:
                topics = app.topics()
            except StoreUnavailableError as e:
                self._unavailable(e)
                return
            for t in topics:
                q = quote(t.name, safe="")
                rows.append(
                    f"<li>{html.escape(t.name)} ({t.stories}): "
                    f'<a href="/topics/{q}.atom">Atom</a> · <a href="/topics/{q}.rss">RSS</a> · '
                    f'<a href="/topics/{q}.json">JSON</a></li>'
                )
            page = (
                "<!doctype html><meta charset=utf-8><title>aggregator feeds</title>"
                "<h1>aggregator</h1><p>All stories: <a href=/feed.atom>Atom</a> · "
                "<a href=/feed.rss>RSS</a> · <a href=/feed.json>JSON Feed</a></p>"
                "<h2>By topic</h2><ul>" + "".join(rows) + "</ul>"
            )
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def _hostport(host: object, port: object) -> str:
    return f"[{host!s}]:{port!s}" if ":" in str(host) else f"{host!s}:{port!s}"


def listen(app: App, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to ``host``:``port`` (an IPv6 address such as ``::1`` too). An address
    that cannot be used (the port taken, a name that does not resolve, a port past 65535)
    is one ConfigError naming it, not a traceback from socketserver."""
    server = _Server6 if ":" in host else _Server
    try:
        return server((host, port), make_handler(app))
    except (OSError, OverflowError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"cannot listen on {_hostport(host, port)}: {why}") from e


def _url(httpd: ThreadingHTTPServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{_hostport(host, port)}"


class FeedServer:
    """``with FeedServer(app, port=0) as s: s.url``: serves on a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.httpd = listen(app, host, port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return _url(self.httpd)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_forever(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    announce: Callable[[str], None] | None = None,
) -> None:
    httpd = listen(app, host, port)
    if announce:
        announce(_url(httpd) + "/")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
