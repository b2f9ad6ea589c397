"""``aggregator serve`` against clients as they are met (session 26): clients that reset
their connection, and If-Modified-Since on a feed that changes without a newer story.
Real sockets on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import http.client
import re
import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest
from test_config_serve import _store_stories
from test_serve_proxy import Clock

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer
from aggregator.types import StoryQuery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as a:
        _store_stories(
            a,
            "https://a.example/feed",
            [(str(i), f"https://a.example/{i}", f"KSK rollover {i}") for i in range(30)],
        )
        yield a


def _connect(srv: FeedServer) -> socket.socket:
    host, port = srv.httpd.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=10)


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (SO_LINGER 0), as a reader that gives up does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("when", ["before-the-answer", "after-the-answer"])
def test_a_client_resetting_its_connection_prints_no_traceback(
    app: App, capfd: pytest.CaptureFixture[str], when: str
) -> None:
    """A reader that resets its connection, while the server answers or while it waits for
    the connection's next request, is a client gone: each printed a traceback on the
    server's stderr ("Exception occurred during processing of request"), so a server's
    log filled with them. The server goes on serving either way."""
    with FeedServer(app) as srv:
        for _ in range(3):
            sock = _connect(srv)
            sock.sendall(b"GET /feed.atom?limit=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
            if when == "after-the-answer":
                head = b""
                while b"</feed>" not in head:
                    chunk = sock.recv(65536)
                    assert chunk, head
                    head += chunk
            _reset(sock)
        time.sleep(0.5)  # the handlers meet the reset
        with _connect(srv) as sock:
            sock.sendall(b"GET /feed.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def _get(srv: FeedServer, path: str, *headers: tuple[str, str]) -> tuple[int, Message, bytes]:
    host, port = srv.httpd.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.msg, resp.read()
    finally:
        conn.close()


def test_a_story_retagged_into_a_topic_feed_is_not_hidden_by_a_304(app: App, clock: Clock) -> None:
    """A topic feed changes with no story newer than its Last-Modified: a story stored
    with the others is re-tagged into it (a label; the topics recomputed over the full
    text that `extract` fetched later). Its Last-Modified did not move, so a client that
    keeps only the date got 304 after 304 and never saw the story; a feed that changes
    gets a later Last-Modified, while one that does not keeps its own."""
    retagged = app.stories(StoryQuery(limit=None))[5]
    app.label(retagged.id, [], ["DNS"])
    with FeedServer(app) as srv:
        status, headers, body = _get(srv, "/topics/DNS.atom")
        assert status == 200 and retagged.title.encode() not in body
        since = headers["Last-Modified"]
        assert _get(srv, "/topics/DNS.atom", ("If-Modified-Since", since))[0] == 304
        clock.at = NOW + timedelta(minutes=5)
        app.label(retagged.id, ["DNS"], [])
        status, headers, body = _get(srv, "/topics/DNS.atom", ("If-Modified-Since", since))
        assert status == 200 and retagged.title.encode() in body
        assert headers["Last-Modified"] == "Sat, 28 Nov 2026 12:05:00 GMT"
        again = _get(srv, "/topics/DNS.atom", ("If-Modified-Since", headers["Last-Modified"]))
        assert again[0] == 304


def _responses(sock: socket.socket) -> list[bytes]:
    """The status lines of the answers on ``sock`` until the server closes it (a body
    does not end with a line break: an answer after it starts mid-line)."""
    data = b""
    sock.settimeout(10)
    while chunk := sock.recv(65536):
        data += chunk
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", data)


def test_an_empty_line_before_a_request_line_is_ignored(app: App) -> None:
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request
    line (a client ending its previous request with one CRLF too many). The connection
    was closed without an answer, losing the request sent after the empty line."""
    with FeedServer(app) as srv:
        with _connect(srv) as sock:
            sock.sendall(b"\r\nGET /feed.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert _responses(sock) == [b"HTTP/1.1 200 OK"]
        with _connect(srv) as sock:
            sock.sendall(
                b"GET /feed.json HTTP/1.1\r\nHost: a\r\n\r\n\r\n"
                b"GET /topics/DNS.rss HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert _responses(sock) == [b"HTTP/1.1 200 OK"] * 2
        with _connect(srv) as sock:  # the line after them is bounded as the first is
            sock.sendall(b"\r\nGET /feed.json?q=" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
            assert _responses(sock) == [b"HTTP/1.1 414 Request-URI Too Long"]


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"PRI * HTTP/2.0", b"HTTP/1.1 505"),  # h2c prior knowledge
        (b"GET /feed.atom HTTP/2.0", b"HTTP/1.1 505"),
        (b"GET /feed.atom HTTP/1.x", b"HTTP/1.1 400"),
        (b"GET /feed.atom HTP/1.1", b"HTTP/1.1 400"),
    ],
)
def test_a_request_line_with_a_version_refused_is_answered_with_a_status_line(
    app: App, line: bytes, status: bytes
) -> None:
    """A request line whose version http.server refuses was answered as HTTP/0.9: an
    HTML page with no status line and no headers, which a client reads as garbage; it
    gets its 505 or 400 as any other error (RFC 9112 §2.3, RFC 9110 §15.6.6)."""
    with FeedServer(app) as srv, _connect(srv) as sock:
        sock.sendall(line + b"\r\nHost: a\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(status + b" "), data[:200]
    assert b"\r\nConnection: close\r\n" in data.partition(b"\r\n\r\n")[0]
