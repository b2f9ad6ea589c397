"""``aggregator serve`` against clients as they are met (session 26): clients that reset
their connection. Real sockets on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_config_serve import _store_stories

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=lambda: NOW) as a:
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
