"""A small HTTP server for merged feeds, so a feed reader can subscribe to "DNS, all
sources, deduplicated".

Routes: ``/feed.atom``, ``/feed.rss``, ``/feed.json`` with optional query parameters
``topic`` (repeatable: all of them), ``any_topic`` (repeatable: at least one),
``not_topic`` (repeatable: none of them), ``feed`` (repeatable: any of them, at most
MAX_FEEDS), ``q``, ``since`` (7d, 24h, ISO date), ``limit`` (100; 0 or more than 1000
gives 1000) and ``offset`` (pages linked as RFC 5005 §3 has it, :func:`page_links`);
``/topics/<Topic>.atom`` (or .rss / .json) as a shorthand; ``/`` lists the topic feeds
(and names the merged ones in ``<link rel="alternate">`` for feed autodiscovery);
``/topics.opml`` is every topic's feed as OPML, for a reader to import at once.
Conditional GET with a strong ETag over the body (RFC 9110 §13.1.2) and a Last-Modified
date (§8.8.2, for clients that keep only dates), and 412 to a false If-Match or
If-Unmodified-Since (§13.1.1, §13.1.4); the body is gzipped
for clients that accept it (every feed reader does; merged feeds with full text compress
~5x), with its own ETag (``"…-gzip"``: a strong validator names one representation) and
``Vary: Accept-Encoding``. Rendering goes through ``App.export``; this module only speaks
HTTP.

Behind a reverse proxy, ``base_url`` is the public URL (``https://news.example.org/feeds/``)
that self links and the index page's links start with; the proxy passes requests on with
that prefix removed (``/feeds/feed.atom`` arrives as ``/feed.atom``). X-Forwarded-* and
``Forwarded`` (RFC 7239) are not read: any client can send them, so trusting them would
let a client choose the links written into feeds that readers and caches keep, and the
public URL of a feed server is known when it is deployed.

A client holds a thread while it is connected, so each connection gets ``timeout`` seconds
to send a whole request head (an idle or dribbling client is dropped) and to take each
WRITE_BYTES of a response (a whole feed of some megabytes may take a slow reader
longer), and at most ``max_connections`` are served at once; one more waits a moment
for a slot, then is answered 503 with Retry-After rather than queued behind clients that
may be idle.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import html
import io
import logging
import math
import re
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit, urlunsplit

from .app import App
from .config import feed_refs, parse_base_url, parse_when
from .errors import (
    AggregatorError,
    ConfigError,
    NotFoundError,
    StoreUnavailableError,
    UnknownTopicError,
)
from .export import Pages
from .feedlist import to_opml
from .types import FeedSource, Story, StoryOrder, StoryQuery

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
OPML_TYPE = "text/x-opml; charset=utf-8"
_FEED_PATH = re.compile(r"^/(?:feed|topics/(?P<topic>[^/]+))\.(?P<fmt>atom|rss|json)$")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The furthest a page starts: paging deeper walks that many stories on every request.
MAX_OFFSET = 100_000
#: The most different ``feed`` values a request may give: each is matched against every
#: feed, and 6,000 in one URL cost seconds of CPU.
MAX_FEEDS = 100
GZIP_MIN_BYTES = 1024  # smaller bodies gain less than the header costs
TIMEOUT_S = 30.0  # for a request head, and for each write of a response
#: A response's body is written in parts of this size, each within the timeout.
WRITE_BYTES = 64 * 1024
MAX_CONNECTIONS = 64
BUSY_WAIT_S = 0.25  # for a slot, before a 503
_BUSY = b"too many connections; try again shortly\n"
#: The methods served (``Allow`` of a 405 and of OPTIONS).
_ALLOWED = "GET, HEAD, OPTIONS"
# A Host value (RFC 9110 §7.2: uri-host [":" port]): a bracketed IPv6 literal, or a name
# or IPv4 address of the characters a URI's reg-name may hold. Anything else (a space, a
# quote, "/" or "@") would make the self link, and so the Atom feed's id, no valid URL.
# A port, when given, is one a TCP connection can have (1 to 65535, leading zeros aside):
# ``Host: a:99999`` gave a self link nobody can fetch.
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)"
    r"(?::(?:0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
    r"|6553[0-5]))?)?"
)
# What a URI's path and query may hold as they are (RFC 3986 §3.3, §3.4; "%" when it
# starts an escape): the rest of a request target is percent-escaped in the self link.
_TARGET_SAFE = "/?:@!$&'()*+,;=%"
#: The versions whose requests may leave Host out (RFC 9112 §3.2 requires it of HTTP/1.1).
_NO_HOST = ("HTTP/0.9", "HTTP/1.0")
#: The schemes of an absolute-form request target served (any other is a 400).
_SCHEMES = ("http", "https")
#: A q-value (RFC 9110 §12.4.2): 0 to 1, with at most three decimals.
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A time's UTC offset whose "+" the query's form decoding read as a space.
_OFFSET_AS_SPACE = re.compile(r"(?<=\d) (?=\d\d(?::?\d\d)?$)")


def accepts_gzip(header: str | None) -> bool:
    """Whether to send gzip for an Accept-Encoding value (RFC 9110 §12.5.3): gzip is
    acceptable (listed, or covered by ``*``, with a q-value above zero) and the client
    does not prefer the body uncoded, ``identity`` (or ``*`` standing for it) weighing
    more than gzip; at a tie, and where identity is not named at all, gzip, the smaller
    body. A q-value not of RFC 9110 §12.4.2's form (0 to 1, at most three decimals)
    counts as 0. Only gzip's q-value was looked at: ``gzip;q=0.1, identity``, gzip only
    if nothing better, got gzip."""
    if not header:
        return False
    quality: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else 0.0
        quality[name.strip().lower()] = q
    gzip_q = next((quality[n] for n in ("gzip", "x-gzip", "*") if n in quality), 0.0)
    identity_q = next((quality[n] for n in ("identity", "*") if n in quality), 0.0)
    return gzip_q > 0 and gzip_q >= identity_q


def _when(value: str | None, now: datetime, name: str) -> datetime | None:
    """The ``since`` or ``until`` parameter, as ``parse_when`` reads it. A "+" in a query
    is a space (form encoding), so an ISO 8601 time typed into a URL as it is written,
    ``2026-11-27T10:00:00+01:00``, arrived as ``…10:00:00 01:00`` and was refused: a
    space where its offset's sign belongs is read as that "+"."""
    try:
        return parse_when(value, now=now, option=name)
    except ConfigError:
        if value is None or not _OFFSET_AS_SPACE.search(value.strip()):
            raise
        return parse_when(_OFFSET_AS_SPACE.sub("+", value.strip()), now=now, option=name)


def _order(value: str) -> StoryOrder:
    """The ``sort`` parameter, as ``stories --sort`` reads it: ``date`` (the default),
    ``sources`` or ``relevance`` (``App`` refuses it without ``q``)."""
    for order in get_args(StoryOrder):
        if value == order:
            return order  # type: ignore[no-any-return]
    raise ConfigError("sort is date, sources or relevance")


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


def _offset(value: str) -> int:
    """The ``offset`` parameter: how many stories the page skips (what the CLI's
    ``--offset`` does), from 0 to MAX_OFFSET."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_OFFSET:
        raise ConfigError(f"offset must be a whole number from 0 to {MAX_OFFSET:,}")
    return n


def _at_offset(url: str, offset: int) -> str:
    """``url`` with its ``offset`` parameter set to ``offset`` (none for 0), the other
    parameters kept as they were written: the first page's URL is the one a reader
    subscribed to, byte for byte."""
    parts = urlsplit(url)
    pairs = [
        p for p in parts.query.split("&") if p and unquote_plus(p.partition("=")[0]) != "offset"
    ]
    if offset:
        pairs.append(f"offset={offset}")
    return urlunsplit(parts._replace(query="&".join(pairs)))


def page_links(url: str, offset: int, limit: int) -> Callable[[Sequence[Story]], Pages]:
    """The links of a page of ``limit`` stories from ``offset`` to the feed's other pages
    (RFC 5005 §3): a next page when this one is full, a previous one after the first.
    Pages are by position, newest first: a story stored meanwhile moves the rest one
    place down, so a reader walking back meets one of them twice (readers drop repeated
    entry ids), never misses one; pruning can make it skip stories."""

    def pages(stories: Sequence[Story]) -> Pages:
        full = len(stories) >= limit and offset + limit <= MAX_OFFSET
        return Pages(
            first=_at_offset(url, 0),
            previous=_at_offset(url, max(0, offset - limit)) if offset else None,
            next=_at_offset(url, offset + limit) if full else None,
        )

    return pages


def _matches(if_none_match: str | None, tags: set[str]) -> bool:
    """Whether an If-None-Match value names one of ``tags`` or is ``*``. The comparison is
    weak (RFC 9110 §13.1.2, §13.1.3): ``W/"x"`` matches ``"x"``, as a cache or proxy may
    have weakened our strong tag."""
    for tag in (if_none_match or "").split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") in tags:
            return True
    return False


def last_modified(stories: Sequence[Story], now: datetime) -> datetime | None:
    """The Last-Modified date of a feed of ``stories`` (RFC 9110 §8.8.2): the latest time
    one of them was dated or first stored. The feed's own date (its newest story's) is not
    enough: a merged feed gains stories dated before it (a feed polled an hour after it
    posted), and a client sending only If-Modified-Since would get a 304 past them. Whole
    seconds, as an HTTP-date carries; never later than ``now`` (§8.8.2.1), which a story
    dated in the future would make it. None for no stories: no date can be given, and
    If-Modified-Since is then not evaluated (§13.1.3)."""
    newest = max((max(s.date, s.first_seen) for s in stories), default=None)
    if newest is None:
        return None
    return min(newest.astimezone(UTC), now).replace(microsecond=0)


def _http_date(values: list[str] | None) -> datetime | None:
    """An If-Modified-Since field as an aware UTC datetime: an IMF-fixdate or the obsolete
    RFC 850 and asctime forms (RFC 9110 §5.6.7), which are in GMT. None, so the field is
    ignored (§13.1.3), for a value that is not a date or for more than one field."""
    if not values or len(values) > 1:
        return None
    try:
        when = email.utils.parsedate_to_datetime(values[0])
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):  # past year 9999 too
        return None


class _Dates:
    """The Last-Modified each feed URL was last answered with, and the body then (its
    digest). A feed changes with no story in it newer than that date: a story re-tagged
    into a topic (a label; its topics recomputed over the full text ``extract`` fetched
    after it was stored), a story's text updated. Dated by its stories alone, such a
    change got a 304 from a client keeping only the date, request after request. So a
    body unlike the one answered last is dated when the server first answers it (no
    earlier than its stories); one not answered since the server started, no earlier
    than the start (the server cannot know what changed before). At most ``size`` URLs
    (by their hash) are kept, the least recently asked for dropped first: one asked for
    again is then dated no earlier than that moment."""

    def __init__(self, started: datetime, size: int = 4096) -> None:
        self._floor, self._size = started, size
        self._seen: OrderedDict[bytes, tuple[str, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def modified(self, url: str, digest: str, stories: datetime, now: datetime) -> datetime:
        key = hashlib.sha256(url.encode("utf-8", "surrogatepass")).digest()
        now = now.astimezone(UTC).replace(microsecond=0)
        with self._lock:
            seen = self._seen.pop(key, None)
            if seen is None:
                when = max(stories, min(self._floor, now))
            elif seen[0] == digest:
                when = seen[1]
            else:
                when = max(stories, now)
            self._seen[key] = (digest, when)
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
                self._floor = now
            return when


class _HeadReader(io.RawIOBase):
    """A handler's connection as read, each read ending by ``deadline``. The socket
    timeout alone bounds each wait, so a client sending a byte every 29 s would hold its
    thread through a 64 KiB request line and 100 header lines; the handler sets one
    deadline for the wait for a request and its whole head."""

    def __init__(self, conn: socket.socket, timeout: float) -> None:
        super().__init__()
        self._conn, self._timeout = conn, timeout
        self.deadline = time.monotonic() + timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no whole request in time")
        self._conn.settimeout(left)
        try:
            return self._conn.recv_into(buffer)
        finally:
            self._conn.settimeout(self._timeout)  # what the response's writes may take


def make_handler(
    app: App, *, base_url: str | None = None, timeout: float = TIMEOUT_S
) -> type[BaseHTTPRequestHandler]:
    public = parse_base_url(base_url) if base_url else None
    seconds = timeout
    # The date of a feed without stories (Atom's <updated>, RSS's lastBuildDate): the
    # request's time changed its body, and so its ETag, every second, and a reader polling
    # an empty topic never got a 304.
    started = app.now().replace(microsecond=0)
    dates = _Dates(started.astimezone(UTC))

    class Handler(BaseHTTPRequestHandler):
        server_version = "aggregator"
        protocol_version = "HTTP/1.1"
        timeout = seconds  # the socket's (StreamRequestHandler.setup), for the writes

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # the plain reader, replaced by one keeping a deadline
            self._head = _HeadReader(self.connection, timeout)
            self.rfile = io.BufferedReader(self._head)

        def handle_one_request(self) -> None:
            # Reset per request: a kept-alive connection gets as long for the next one.
            self._head.deadline = time.monotonic() + timeout
            super().handle_one_request()

        def parse_request(self) -> bool:
            # RFC 9112 §2.2: empty lines before a request line are ignored (a client
            # ending its last request with one CRLF too many); http.server closed the
            # connection unanswered, losing the request after them. Bounded by the
            # head's deadline, as any line.
            line: bytes = getattr(self, "raw_requestline", b"")  # typeshed does not declare it
            if line in (b"\r\n", b"\n"):
                while line in (b"\r\n", b"\n"):
                    line = self.rfile.readline(65537)
                self.raw_requestline = line
                if not line:
                    self.close_connection = True
                    return False
                if len(line) > 65536:  # as http.server checks the first
                    self.requestline = self.request_version = self.command = ""
                    self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                    return False
            return super().parse_request()

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # http.server refuses a request line's version (HTTP/2.0 from a client
            # speaking h2c, a garbled one) before it takes it as the request's, and so
            # answered as to HTTP/0.9: the page alone, without a status line or headers,
            # which a client reads as garbage. A line of three words names a version:
            # the answer is HTTP/1.1's (RFC 9112 §2.3).
            words = getattr(self, "requestline", "").split()
            if self.request_version == "HTTP/0.9" and len(words) >= 3:
                self.request_version = "HTTP/1.1"
            super().send_error(code, message, explain)

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
                # A part at a time: Python bounds one sendall's time as a whole, so a
                # body written at once had to reach the client within the timeout, and
                # a feed of some megabytes never reached a reader on a slow link. The
                # timeout is between two writes, as nginx's send_timeout.
                view = memoryview(body)
                for start in range(0, len(view), WRITE_BYTES):
                    self.wfile.write(view[start : start + WRITE_BYTES])

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

        def send_response(self, code: int, message: str | None = None) -> None:
            super().send_response(code, message)
            # A request body is never read (no route takes one): the connection ends
            # with this answer, or the body would be read as the next request (a GET
            # with a body made the request pipelined after it go unanswered).
            headers = getattr(self, "headers", None)  # None: the head did not parse
            if headers is not None and (
                "Transfer-Encoding" in headers
                or headers.get("Content-Length", "0").strip() not in ("", "0")
            ):
                self.send_header("Connection", "close")

        def _not_allowed(self) -> None:
            # A read-only server (RFC 9110 15.5.6: 405 names the methods that are).
            self._error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{self.command} is not allowed: feeds are read with GET",
                {"Allow": _ALLOWED},
            )

        # TRACE and CONNECT too: RFC 9110 defines them (§9.3.8, §9.3.6), and http.server
        # answered them 501, which says the method is not known at all.
        do_POST = do_PUT = do_PATCH = do_DELETE = do_TRACE = do_CONNECT = _not_allowed

        def do_OPTIONS(self) -> None:
            self._send(HTTPStatus.OK, b"", "text/plain", {"Allow": _ALLOWED})

        def do_GET(self) -> None:
            if not self._target_ok():
                self._error(HTTPStatus.BAD_REQUEST, "invalid request target")
                return
            if "Host" not in self.headers and self.request_version not in _NO_HOST:
                # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without
                # Host, behind a proxy too; it was served, its links naming the address
                # listened on.
                self._error(HTTPStatus.BAD_REQUEST, "no Host header: HTTP/1.1 requires one")
                return
            if public is None and not self._host_ok():
                self._error(HTTPStatus.BAD_REQUEST, "invalid Host header")
                return
            if public is None and not self._origin_ok():
                self._error(HTTPStatus.BAD_REQUEST, "invalid host in the request target")
                return
            # taxonomy.yaml edited while serving: a topic added is no longer "unknown"
            # (a store error here: the request's own read says so, and the next retries)
            with contextlib.suppress(AggregatorError):
                app.refresh_taxonomy()
            url = urlsplit(self._target())
            if url.path in ("/", "/index.html"):
                self._index()
                return
            if url.path == "/topics.opml":
                self._topics_opml(parse_qs(url.query))
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
                offset = _offset(params.get("offset", ["0"])[0])
                now = app.now()  # one "now" for both, as the CLI reads them
                since = _when(params.get("since", [None])[0], now, "since")
                until = _when(params.get("until", [None])[0], now, "until")
                if since is not None and until is not None and since >= until:
                    raise ConfigError("since is not before until: no story can match")
                search = params.get("q", [None])[0]
                feeds = feed_refs(params.get("feed", []))
                if len(feeds) > MAX_FEEDS:
                    raise ConfigError(
                        f"at most {MAX_FEEDS} different feed values, not {len(feeds)}"
                    )
                query = StoryQuery(
                    order=_order(params.get("sort", ["date"])[0]),
                    topics=tuple(topics),
                    any_topics=tuple(params.get("any_topic", [])),
                    not_topics=tuple(params.get("not_topic", [])),
                    feeds=feeds,
                    text=search,
                    since=since,
                    until=until,
                    limit=limit,
                    offset=offset,
                )
                self_url = self._self_url()
                text, shown = app.export_document(
                    query,
                    fmt,  # type: ignore[arg-type]
                    self_url=self_url,
                    home_url=self._self_url("/"),  # the index page: the feeds' website
                    pages=page_links(self_url, offset, limit),
                    updated=started,
                )
                body = text.encode("utf-8")
                # A date only where the page changes by a story being stored onto it: a
                # later page moves when a newer story is stored, one by sources when
                # another feed carries one of its stories, and one by relevance when
                # stories stored off it change how bm25 weighs its words (SQLite), none
                # dating the page; their If-Modified-Since got a 304 for other stories.
                # The ETag holds for them.
                dated = offset == 0 and query.order == "date"
                modified = last_modified(shown, app.now()) if dated else None
            except StoreUnavailableError as e:
                self._unavailable(e)
                return
            except (UnknownTopicError, NotFoundError) as e:
                # A topic the taxonomy lacks names no resource (RFC 9110 §15.5.5); 400 says
                # the request itself is malformed, which bad parameters still get.
                self._error(HTTPStatus.NOT_FOUND, str(e))
                return
            except (AggregatorError, ValueError) as e:
                self._error(HTTPStatus.BAD_REQUEST, str(e))
                return
            self._send_validated(body, CONTENT_TYPES[fmt], modified, self_url)

        def _send_validated(
            self, body: bytes, ctype: str, modified: datetime | None, url: str = ""
        ) -> None:
            """``body`` with its validators (a strong ETag over it, Last-Modified when
            ``modified``: no earlier than when this body of ``url`` was first answered,
            :class:`_Dates`), or 304 to a client whose copy is the same; gzipped when the
            client takes it and it is worth it."""
            digest = hashlib.sha256(body).hexdigest()[:32]
            if modified is not None:
                modified = dates.modified(url, digest, modified, app.now())
            zipped = len(body) >= GZIP_MIN_BYTES and accepts_gzip(self._list("Accept-Encoding"))
            etag = f'"{digest}-gzip"' if zipped else f'"{digest}"'
            headers = {"ETag": etag, "Cache-Control": "max-age=300", "Vary": "Accept-Encoding"}
            if modified is not None:
                headers["Last-Modified"] = email.utils.format_datetime(modified, usegmt=True)
            if not self._preconditions_hold({f'"{digest}"', f'"{digest}-gzip"'}, modified):
                # The validators, so the client knows what the feed is now; not
                # Cache-Control, which would let a cache keep the 412.
                current = {k: v for k, v in headers.items() if k in ("ETag", "Last-Modified")}
                self._error(
                    HTTPStatus.PRECONDITION_FAILED,
                    "the feed is not as the request's condition has it",
                    current,
                )
                return
            if_none_match = self._list("If-None-Match")
            if if_none_match is not None:
                # Either coding of the same body satisfies the client's cached copy; "*" any.
                fresh = _matches(if_none_match, {f'"{digest}"', f'"{digest}-gzip"'})
            else:
                # Only without If-None-Match, the more exact validator (RFC 9110 §13.2.2).
                since = _http_date(self.headers.get_all("If-Modified-Since"))
                fresh = modified is not None and since is not None and modified <= since
            if fresh:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                for k, v in headers.items():
                    self.send_header(k, v)
                # No Content-Length: a 304 has no content, and may give one only as the 200
                # would (RFC 9110 §8.6); a cache taking a 304's fields into its stored
                # response held a feed said to be 0 bytes long.
                self.end_headers()
                return
            if zipped:
                body = gzip.compress(body, compresslevel=6, mtime=0)
                headers["Content-Encoding"] = "gzip"
            self._send(HTTPStatus.OK, body, ctype, headers)

        def _preconditions_hold(self, tags: set[str], modified: datetime | None) -> bool:
            """Whether If-Match names one of ``tags`` (strong comparison, RFC 9110
            §13.1.1: a weak tag never matches) or is ``*``; without it, whether the
            feed is unmodified since If-Unmodified-Since (§13.1.4: ignored for a feed
            with no date, or a value that is no date). A server MUST evaluate both,
            before If-None-Match (§13.2.2); they were ignored."""
            if_match = self._list("If-Match")
            if if_match is not None:
                return any(t.strip() == "*" or t.strip() in tags for t in if_match.split(","))
            since = _http_date(self.headers.get_all("If-Unmodified-Since"))
            return modified is None or since is None or modified <= since

        def _list(self, name: str) -> str | None:
            """A list field's value, whole: a client or proxy may send one on several
            lines, which are one list joined by commas (RFC 9110 §5.3); the first alone
            missed an ETag or a coding named on a later line."""
            values = self.headers.get_all(name)
            return ", ".join(values) if values else None

        def _target(self) -> str:
            """The request's path and query as a URI. http.server decodes the request
            line as Latin-1: its bytes, escaped where a URI may not hold them as they are
            (quotes, braces, non-ASCII), so the self link and the Atom feed id built from
            it are valid IRIs. The route and the parameters are read from it too: UTF-8
            sent unescaped (curl given ``?q=Göran``) was read as Latin-1, a search for
            "GÃ¶ran" under a self link naming "Göran"."""
            url = urlsplit(self.path)
            target = url.path + (f"?{url.query}" if url.query else "")
            target = quote(target.encode("latin-1", "replace"), safe=_TARGET_SAFE)
            return _BARE_PERCENT.sub("%25", target)

        def _target_ok(self) -> bool:
            """Whether the request target is a URI ``urlsplit`` reads. An absolute-form
            one with an IPv6 literal left open (``http://[::1/feed.atom``) raised
            ValueError in the handler: the connection closed unanswered, and a
            traceback went to stderr for each such request."""
            try:
                urlsplit(self.path)
            except ValueError:
                return False
            return True

        def _host_ok(self) -> bool:
            """Whether Host can start the self link: one field, empty or a valid value
            (RFC 9112 §3.2 answers anything else with 400), or none from an HTTP/1.0
            client (do_GET refuses an HTTP/1.1 request without one). With a public URL
            the links do not come from Host, and a proxy's value is not checked."""
            hosts = [h.strip() for h in self.headers.get_all("Host") or []]
            return len(hosts) <= 1 and all(not h or _HOST.fullmatch(h) for h in hosts)

        def _origin_ok(self) -> bool:
            """Whether an absolute-form target, which names the host instead of Host
            (RFC 9112 §3.2.2), can start the self link: an http(s) URI with a valid
            host, without userinfo (RFC 9110 §4.2.4 makes that an error)."""
            origin = self._origin()
            return origin is None or (origin[0] in _SCHEMES and bool(_HOST.fullmatch(origin[1])))

        def _origin(self) -> tuple[str, str] | None:
            """The scheme and authority of an absolute-form request target (``GET
            http://feeds.example/feed.atom``, as a client speaking to a proxy sends it);
            None for an origin-form one (``GET /feed.atom``)."""
            url = urlsplit(self.path)  # do_GET checked it reads
            return (url.scheme.lower(), url.netloc) if url.scheme else None

        def _self_url(self, target: str | None = None) -> str:
            """The URL this request reached, for a feed's self link (or, with ``target``,
            that path on this server): the public base URL when there is one, else the
            Host the client named (right for a client connecting directly, not behind a
            proxy). An absolute-form request target names scheme and host itself, and
            RFC 9112 §3.2.2 has the server ignore Host then: the self link named Host's
            host, not the one the client asked for."""
            if target is None:
                target = self._target()
            if public is not None:
                return public + target
            if (origin := self._origin()) is not None:  # valid: do_GET checked it
                return f"{origin[0]}://{_authority(*origin)}{target}"
            host = (self.headers.get("Host") or "").strip()  # valid: do_GET checked it
            if not host:
                addr = self.server.server_address
                host = _hostport(addr[0], addr[1]) if isinstance(addr, tuple) else str(addr)
            return f"http://{_authority('http', host)}{target}"

        def _topics_opml(self, params: dict[str, list[str]]) -> None:
            """Every topic's feed (and the merged feed of all stories) as OPML 2.0, so a
            reader subscribes to all of them in one import: in a folder "aggregator",
            each ``xmlUrl`` absolute (a reader resolves no relative one), in the format
            ``?format=`` names (atom, rss or json; atom by default)."""
            fmt = params.get("format", ["atom"])[0]
            if fmt not in CONTENT_TYPES:
                self._error(HTTPStatus.BAD_REQUEST, f"format is atom, rss or json, not {fmt!r}")
                return
            try:
                topics = app.topics()
            except StoreUnavailableError as e:
                self._unavailable(e)
                return
            home = self._self_url("/")
            paths = [(f"/feed.{fmt}", "All stories")] + [
                (f"/topics/{quote(t.name, safe='')}.{fmt}", t.name) for t in topics
            ]
            sources = [
                FeedSource(url=self._self_url(path), name=name, topics=("aggregator",))
                for path, name in paths
            ]
            sites = {s.url: home for s in sources}
            text = to_opml(sources, "aggregator topics", sites=sites)
            self._send_validated(text.encode("utf-8"), OPML_TYPE, None)

        def _index(self) -> None:
            rows = []
            try:
                topics = app.topics()
            except StoreUnavailableError as e:
                self._unavailable(e)
                return
            # Root-relative links, unless there is a public URL: behind a proxy at
            # /feeds/ they must carry its prefix.
            home = html.escape(public or "")
            for t in topics:
                q = quote(t.name, safe="")
                rows.append(
                    f"<li>{html.escape(t.name)} ({t.stories}): "
                    f'<a href="{home}/topics/{q}.atom">Atom</a> · '
                    f'<a href="{home}/topics/{q}.rss">RSS</a> · '
                    f'<a href="{home}/topics/{q}.json">JSON</a></li>'
                )
            # <link rel="alternate">: a reader given this page's URL finds the feeds
            # (feed autodiscovery), `aggregator feeds add URL` too
            alternates = "".join(
                f'<link rel="alternate" type="{CONTENT_TYPES[fmt].partition(";")[0]}"'
                f' title="All stories ({name})" href="{home}/feed.{fmt}">'
                for fmt, name in (("atom", "Atom"), ("rss", "RSS"), ("json", "JSON Feed"))
            )
            page = (
                "<!doctype html><meta charset=utf-8><title>aggregator feeds</title>"
                + alternates
                + f'<h1>aggregator</h1><p>All stories: <a href="{home}/feed.atom">Atom</a> · '
                f'<a href="{home}/feed.rss">RSS</a> · <a href="{home}/feed.json">JSON Feed</a></p>'
                f"<p>Every topic's feed, for a reader to import at once: <a href=\"{home}"
                '/topics.opml">OPML</a></p>'
                "<h2>By topic</h2><ul>" + "".join(rows) + "</ul>"
            )
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")

    return Handler


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` at once. One more waits up to
    BUSY_WAIT_S for a slot (a handler finishing: a client that closed its connection
    frees its slot a moment later), then is answered 503 with Retry-After (nginx's
    ``limit_conn`` answer), and so is every next one at once until a slot is free again.
    Not a longer wait: a slot can be held by an idle client for the whole timeout, and an
    accept loop waiting for one leaves every later client, and shutdown, behind it."""

    daemon_threads = True
    # The listen backlog: socketserver's 5 refused the sixth of a burst of connections
    # (feed readers refreshing together) before the accept loop could take them up.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        retry_after: int,
    ) -> None:
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._busy = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            f"Retry-After: {retry_after}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(_BUSY)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + _BUSY
        self._refusing = False  # full at the last look: no waiting, one log line

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(timeout=0 if self._refusing else BUSY_WAIT_S):
            self._refuse(request)
            return
        self._refusing = False
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client gone (a reset, a closed pipe) or too slow to take its answer is not
        # the server's error: socketserver printed a traceback on stderr for each one, so
        # a server's log filled with them. Anything else is a bug and is printed whole.
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, TimeoutError)):
            log.debug("%s: connection ended: %s", client_address, e)
            return
        super().handle_error(request, client_address)

    def _refuse(self, request: socket.socket) -> None:
        if not self._refusing:
            self._refusing = True
            log.warning(
                "serving %d connections already: answering 503 until one ends",
                self.max_connections,
            )
        try:
            # Never blocks the accepting thread: a new connection's empty send buffer
            # takes the whole answer. The request already sent is read, as a close with
            # unread input is a reset, which may erase the answer before the client reads
            # it (RFC 9112 §9.6).
            request.setblocking(False)
            request.send(self._busy)
            request.recv(65536)
        except OSError:
            pass  # nothing more has arrived (BlockingIOError), or the client is gone
        self.shutdown_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


#: The port a scheme's URI leaves out (RFC 9110 §4.2).
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE_OR_TEXT = re.compile(r"%[0-9A-Fa-f]{2}|[^%]+")
#: What an escape in a host names as well as the character itself (RFC 3986 §2.3).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _host_part(m: re.Match[str]) -> str:
    """A run of a host's text in lowercase, or an escape: the character for one of an
    unreserved character (``%66`` is "f", RFC 3986 §6.2.2.2), else in uppercase."""
    text = m[0]
    if not text.startswith("%"):
        return text.lower()
    char = chr(int(text[1:], 16))
    return char.lower() if char in _UNRESERVED else text.upper()


def _authority(scheme: str, host: str) -> str:
    """A request's ``host[:port]`` as a self link, and so an Atom feed id, should name
    it (RFC 4287 §4.2.6.1, RFC 3986 §6.2.2-6.2.3): the name in lowercase, an escape of
    an unreserved character decoded (others in uppercase), no port when empty or the
    scheme's default. ``Host: Feeds.Example:80`` or ``Host: %66eeds.example`` gave the
    feed another id than ``Host: feeds.example``: a reader took it for another feed. A
    trailing dot stays: RFC 3986 makes ``feeds.example.`` another URI."""
    name, port = host, ""
    head, colon, tail = host.rpartition(":")
    if colon and "]" not in tail:  # a port, not the end of an IPv6 literal
        name, port = head, tail
    name = _ESCAPE_OR_TEXT.sub(_host_part, name)
    if not port or int(port) == _DEFAULT_PORTS.get(scheme):
        return name
    return f"{name}:{int(port)}"


def _hostport(host: object, port: object) -> str:
    return f"[{host!s}]:{port!s}" if ":" in str(host) else f"{host!s}:{port!s}"


def listen(
    app: App,
    host: str,
    port: int,
    *,
    base_url: str | None = None,
    timeout: float = TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> ThreadingHTTPServer:
    """A server bound to ``host``:``port`` (an IPv6 address such as ``::1`` too). An address
    that cannot be used (the port taken, a name that does not resolve, a port past 65535,
    an empty host) is one ConfigError naming it, not a traceback from socketserver; so is
    a bad ``base_url`` (``config.parse_base_url``)."""
    if timeout <= 0 or max_connections < 1:
        raise ConfigError("the timeout must be positive and max connections at least 1")
    if not host.strip():
        # The socket takes "" as INADDR_ANY: an empty --host (an unset "$HOST") listened
        # on every interface, where the default is loopback only.
        raise ConfigError(
            "--host is empty: name an address to listen on (0.0.0.0 for every interface)"
        )
    server = _Server6 if ":" in host else _Server
    handler = make_handler(app, base_url=base_url, timeout=timeout)
    try:
        return server(
            (host, port),
            handler,
            max_connections=max_connections,
            # A slot held by an idle client is free again within the timeout.
            retry_after=max(1, math.ceil(timeout)),
        )
    except (OSError, OverflowError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"cannot listen on {_hostport(host, port)}: {why}") from e


def _url(httpd: ThreadingHTTPServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{_hostport(host, port)}"


class FeedServer:
    """``with FeedServer(app, port=0) as s: s.url``: serves on a background thread. The
    keywords are ``listen``'s."""

    def __init__(
        self,
        app: App,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        base_url: str | None = None,
        timeout: float = TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.httpd = listen(
            app,
            host,
            port,
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
        )
        # The accept loop looks for shutdown() between waits: at the default half second,
        # leaving every `with FeedServer(...)` took ~0.5 s (a test-suite's worth of them).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

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
    base_url: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then close the socket; the caller closes
    ``app``. SIGTERM is how systemd, Docker and Kubernetes stop a service: it died of it
    (exit 143) with the store left open, where Ctrl-C returned and exited 0."""
    httpd = listen(app, host, port, base_url=base_url)
    # only the main thread may set a handler (FeedServer and tests serve from others)
    watching = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if watching else None
    try:
        if announce:  # inside: a broken stdout pipe here must not leave the socket open
            announce(_url(httpd) + "/")
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if watching:
            signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)
        httpd.server_close()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: out of ``serve_forever``'s wait, to the same clean stop."""
    raise KeyboardInterrupt
