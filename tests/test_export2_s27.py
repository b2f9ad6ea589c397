"""Session 27 hunt, second pass over exports and ``serve``: entry ids that must outlive
the stories they were chosen against, and self links as the request named them. Real
SQLite files and the local PostgreSQL, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_dedupe_audit import Clock, _make_app
from test_serve_audit import _raw_get

from aggregator.app import App
from aggregator.serve import FeedServer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock, sqlite_url: str) -> Iterator[App]:
    yield from _make_app(tmp_path, clock, sqlite_url)


def test_a_target_with_an_ipv6_literal_left_open_is_a_400(app: App) -> None:
    """``GET http://[::1/feed.json``: reading the target raised ValueError ("Invalid IPv6
    URL") inside the handler, so the connection closed without an answer and the server
    printed a traceback for each such request. It is a 400 now."""
    with FeedServer(app) as srv:
        for bad in (b"http://[::1/feed.json", b"http://[/feed.json?limit=1"):
            status, body = _raw_get(srv.url, bad)
            assert (status, body) == (400, b"invalid request target\n"), bad
