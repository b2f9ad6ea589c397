"""``aggregator serve`` against clients as they are met (session 28): a reader taking a
large feed slowly, requests whose Host is missing or spelt with escapes, methods the
server knows but does not allow. Real sockets on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_config_serve import _store_stories
from test_serve_proxy import Clock

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=Clock(NOW)) as a:
        _store_stories(
            a,
            "https://a.example/feed",
            [(str(i), f"https://a.example/{i}", f"KSK rollover {i}") for i in range(5)],
        )
        yield a


def _connect(srv: FeedServer) -> socket.socket:
    host, port = srv.httpd.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=10)


def _exchange(srv: FeedServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """``request`` sent byte for byte; the status, headers (names in lowercase) and body
    of the answer, read to the connection's end."""
    with _connect(srv) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body


def test_a_large_feed_reaches_a_reader_that_takes_it_slowly(app: App) -> None:
    """The timeout bounds each wait for the client to take more of a response (nginx's
    ``send_timeout``: between two writes), not the whole response: the body was written
    in one ``sendall``, which Python bounds as a whole, so a feed of some megabytes never
    reached a reader slower than its size over the timeout (30 s: a 6 MB feed, without
    gzip, to a reader on a 1 Mbit/s link), and it got a cut body, request after request.
    Here 1.6 MB (a feed's long name, written twice in each of 10 entries, makes the body
    large without a large store) to a reader taking 32 KiB every 10 ms, about 0.5 s,
    with a 0.25 s timeout. The listening socket's send buffer is made small (accepted
    sockets inherit it), as a real network's are next to the time a slow link takes:
    loopback's grow to megabytes."""
    _store_stories(
        app,
        "https://big.example/feed",
        [(f"b{i}", f"https://big.example/{i}", f"Big {i}") for i in range(10)],
        day=28,
        name="n" * 80_000,
    )
    with FeedServer(app, timeout=0.25) as srv:
        srv.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        with _connect(srv) as sock:
            sock.sendall(
                b"GET /feed.atom?feed=https://big.example/feed HTTP/1.1\r\n"
                b"Host: a\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(32768, socket.MSG_WAITALL):
                data += chunk
                time.sleep(0.01)
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head)
        assert head.startswith(b"HTTP/1.1 200") and length, head
        assert int(length[1]) > 1_600_000
        assert len(body) == int(length[1])
        assert body.rstrip().endswith(b"</feed>")


@pytest.mark.parametrize(
    "base_url", [None, "https://news.example/feeds/"], ids=["direct", "proxied"]
)
def test_an_http_1_1_request_without_host_is_a_400(app: App, base_url: str | None) -> None:
    """RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host
    field (only HTTP/1.0 may leave it out). It was served, its links naming the address
    the server listens on. HTTP/1.0 without Host is still served."""
    with FeedServer(app, base_url=base_url) as srv:
        status, _, body = _exchange(
            srv, b"GET /feed.json?limit=1 HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        assert (status, body) == (400, b"no Host header: HTTP/1.1 requires one\n")
        status, _, body = _exchange(
            srv, b"GET http://feeds.example/feed.json HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        assert status == 400, body
        status, _, body = _exchange(srv, b"GET /feed.json?limit=1 HTTP/1.0\r\n\r\n")
        assert status == 200 and b'"items"' in body
        status, _, body = _exchange(
            srv, b"GET /feed.json?limit=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert status == 200 and b'"items"' in body


def test_a_host_spelt_with_escapes_gives_the_feed_its_one_id(app: App) -> None:
    """``Host: %66eeds.example`` (an escaped letter, which RFC 3986 §6.2.2.2 says is the
    letter) gave the feed another self link, and so another Atom id, than ``Host:
    feeds.example``: a reader seeing both took them for two feeds. The host's case was
    already made one (session 27); its escaped unreserved characters are now decoded
    too, in Host and in a target naming the URL whole. An escape of anything else stays
    an escape, in uppercase. A trailing dot (``feeds.example.``) is left as sent: RFC
    3986 makes it another URI, and the self link must be one the client can fetch."""
    cases = [
        (b"/feed.json", b"%66eeds.example", "http://feeds.example/feed.json"),
        (b"/feed.json", b"%46EEDS%2eexample:80", "http://feeds.example/feed.json"),
        (b"/feed.json", b"f%7e%2D%5F.example", "http://f~-_.example/feed.json"),
        (b"http://%66eeds.example/feed.json", b"x", "http://feeds.example/feed.json"),
        (b"/feed.json", b"caf%c3%a9.example", "http://caf%C3%A9.example/feed.json"),
        (b"/feed.json", b"a%21b.example", "http://a%21b.example/feed.json"),
        (b"/feed.json", b"feeds.example.", "http://feeds.example./feed.json"),
    ]
    with FeedServer(app) as srv:
        for target, host, url in cases:
            status, _, body = _exchange(
                srv,
                b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
            )
            assert (status, json.loads(body)["feed_url"]) == (200, url), host


@pytest.mark.parametrize(
    "line",
    [b"TRACE /feed.atom HTTP/1.1", b"CONNECT feeds.example:443 HTTP/1.1"],
    ids=["TRACE", "CONNECT"],
)
def test_a_method_http_defines_but_the_server_does_not_allow_is_a_405(
    app: App, line: bytes
) -> None:
    """TRACE and CONNECT are methods RFC 9110 defines (§9.3.8, §9.3.6): like POST they
    get 405 naming the allowed methods (§15.5.6). They got 501 ("not implemented", for a
    method the server does not know at all) as an HTML page; a method nobody defined
    still does."""
    with FeedServer(app) as srv:
        status, fields, body = _exchange(srv, line + b"\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert (status, fields["allow"]) == (405, "GET, HEAD, OPTIONS")
        assert fields["content-type"] == "text/plain; charset=utf-8"
        assert body == line.split()[0] + b" is not allowed: feeds are read with GET\n"
        status, _, _ = _exchange(
            srv, b"BREW /feed.atom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert status == 501


def test_if_match_and_if_unmodified_since_are_evaluated(app: App) -> None:
    """RFC 9110 §13.1.1 and §13.1.4: a server MUST evaluate If-Match (a strong
    comparison: a weak tag never matches) and, without it, If-Unmodified-Since, and
    answer 412 when the condition is false (a client asking for the feed only as it
    still is, to page through it consistently). Both were ignored: the client got
    whatever the feed had become, with a 200."""
    get = b"GET /feed.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
    with FeedServer(app) as srv:
        status, fields, body = _exchange(srv, get + b"\r\n")
        assert status == 200
        etag, modified = fields["etag"], fields["last-modified"]
        ok = [
            b"If-Match: " + etag.encode(),
            b'If-Match: "other", ' + etag.encode(),
            b"If-Match: *",
            b"If-Unmodified-Since: " + modified.encode(),
            b"If-Unmodified-Since: Sun, 29 Nov 2026 12:00:00 GMT",
            b"If-Unmodified-Since: not a date",
            # If-Match decides; If-Unmodified-Since is then not read (§13.2.2)
            b"If-Match: "
            + etag.encode()
            + b"\r\nIf-Unmodified-Since: Sun, 01 Jan 2006 0:00:00 GMT",
        ]
        for field in ok:
            status, _, again = _exchange(srv, get + field + b"\r\n\r\n")
            assert (status, again) == (200, body), field
        failed = [
            b'If-Match: "other"',
            b"If-Match: W/" + etag.encode(),
            b"If-Unmodified-Since: Fri, 27 Nov 2026 12:00:00 GMT",
            # If-Match is evaluated before If-None-Match: a 412, not a 304
            b'If-Match: "other"\r\nIf-None-Match: ' + etag.encode(),
        ]
        for field in failed:
            status, fields, text = _exchange(srv, get + field + b"\r\n\r\n")
            assert (fields["etag"], "cache-control" in fields) == (etag, False)
            assert (status, text) == (
                412,
                b"the feed is not as the request's condition has it\n",
            ), field
