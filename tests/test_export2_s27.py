"""Session 27 hunt, second pass over exports and ``serve``: entry ids that must outlive
the stories they were chosen against, and self links as the request named them. Real
SQLite files and the local PostgreSQL, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_config_serve import _store_stories
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


def test_an_absolute_form_target_names_the_self_links_host(app: App) -> None:
    """``GET http://feeds.example/feed.json`` with ``Host: x`` (a client that speaks to
    the server as to a proxy): RFC 9112 §3.2.2 has the server ignore Host and take the
    target's authority. The self link named the Host header's "x" instead. A target whose
    authority carries userinfo, names no host or another scheme is a 400, as an invalid Host
    is."""
    _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    with FeedServer(app) as srv:
        status, body = _raw_get(srv.url, b"http://feeds.example:8080/feed.json?limit=1")
        assert status == 200, body
        assert json.loads(body)["feed_url"] == "http://feeds.example:8080/feed.json?limit=1"
        bad = (b"http://u@feeds.example/feed.json", b'http://a"b/feed.json', b"ftp://x/feed.json")
        for target in (*bad, b"http:///feed.json", b"http:/feed.json"):
            status, body = _raw_get(srv.url, target)
            assert (status, body) == (400, b"invalid host in the request target\n"), target


def test_a_target_with_an_ipv6_literal_left_open_is_a_400(app: App) -> None:
    """``GET http://[::1/feed.json``: reading the target raised ValueError ("Invalid IPv6
    URL") inside the handler, so the connection closed without an answer and the server
    printed a traceback for each such request. It is a 400 now."""
    with FeedServer(app) as srv:
        for bad in (b"http://[::1/feed.json", b"http://[/feed.json?limit=1"):
            status, body = _raw_get(srv.url, bad)
            assert (status, body) == (400, b"invalid request target\n"), bad
