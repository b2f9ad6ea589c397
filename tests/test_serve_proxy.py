"""``aggregator serve`` behind a reverse proxy and as a polite HTTP server: self links from
``--base-url`` (and never from headers a client can send), a timeout for idle and
dribbling clients, a bound on connections served at once, and Last-Modified /
If-Modified-Since (RFC 9110 §13.1.3, §13.2.2). Real sockets and real HTTP requests."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import feedparser
import pytest
from clirun import in_process
from test_config_serve import _store_stories

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.serve import FeedServer

NOW = datetime(2026, 11, 28, 12, 0, 30, 250000, tzinfo=UTC)
PUBLIC = "https://news.example.org/feeds/"


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as a:
        # published 2026-11-27 09:00 and 09:01; first stored at NOW
        _store_stories(
            a,
            "https://a.example/feed",
            [("1", "https://a.example/1", "KSK rollover"), ("2", "https://a.example/2", "Glue")],
        )
        yield a


def _request(
    srv: FeedServer, path: str, *headers: tuple[str, str], method: str = "GET"
) -> tuple[int, Message, bytes]:
    """One request on its own connection; ``headers`` may repeat a name."""
    host, port = srv.httpd.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        # http.client sends "Accept-Encoding: identity" unless told not to: a test's
        # own Accept-Encoding would come second
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.msg, resp.read()
    finally:
        conn.close()


def _connect(srv: FeedServer) -> socket.socket:
    host, port = srv.httpd.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=10)


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (which sends nothing more); fails the
    test past ``limit``."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(1024)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail(f"the server kept an idle connection open for {limit} s")
    assert data == b"", data
    return time.monotonic() - start


# --- links behind a reverse proxy --------------------------------------------------------


def test_base_url_gives_the_self_links_and_index_links(app: App) -> None:
    """Behind nginx at https://news.example.org/feeds/ (the prefix stripped by the proxy),
    every link the server writes is the public one, whatever Host the proxy passed on."""
    proxied = (("Host", "127.0.0.1:8080"),)
    with FeedServer(app, base_url=PUBLIC) as srv:
        _, _, atom = _request(srv, "/feed.atom?topic=DNS&since=7d", *proxied)
        _, _, rss = _request(srv, "/topics/DNS.rss", *proxied)
        _, _, feed_json = _request(srv, "/feed.json?q=KSK", *proxied)
        _, _, index = _request(srv, "/", *proxied)
    d = feedparser.parse(atom)
    assert not d.bozo
    assert d.feed.id == PUBLIC + "feed.atom?topic=DNS&since=7d"
    assert [link.href for link in d.feed.links if link.rel == "self"] == [d.feed.id]
    assert b'<atom:link href="https://news.example.org/feeds/topics/DNS.rss" rel="self"' in rss
    assert json.loads(feed_json)["feed_url"] == PUBLIC + "feed.json?q=KSK"
    page = index.decode()
    assert "127.0.0.1" not in page
    for link in ("feed.atom", "feed.rss", "feed.json", "topics/DNS.atom", "topics/DNS.json"):
        assert f'href="{PUBLIC}{link}"' in page, link


def test_without_a_base_url_links_follow_the_host_and_the_index_stays_relative(
    app: App,
) -> None:
    with FeedServer(app) as srv:
        host, port = srv.httpd.server_address[:2]
        _, _, feed_json = _request(srv, "/feed.json")
        _, _, index = _request(srv, "/")
    assert json.loads(feed_json)["feed_url"] == f"http://{host}:{port}/feed.json"
    assert 'href="/topics/DNS.atom"' in index.decode()


@pytest.mark.parametrize("base_url", [None, PUBLIC], ids=["host", "base-url"])
def test_forwarded_headers_do_not_choose_the_links(app: App, base_url: str | None) -> None:
    """X-Forwarded-* and Forwarded are not read: any client could send them and have its
    own host written into a feed that caches keep for the next reader."""
    with FeedServer(app, base_url=base_url) as srv:
        host, port = srv.httpd.server_address[:2]
        _, _, body = _request(
            srv,
            "/feed.json",
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Prefix", "/evil"),
            ("Forwarded", 'proto=https;host="evil.example"'),
        )
    expected = (base_url or f"http://{host}:{port}/") + "feed.json"
    assert json.loads(body)["feed_url"] == expected


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("ftp://news.example.org/feeds/", "must start with http:// or https://"),
        ("news.example.org/feeds/", "must start with http:// or https://"),
        ("https:///feeds/", "has no host"),
        ("https://news.example.org/feeds/?a=1", "must not have a query or fragment"),
        ("https://news.example.org/feeds/#top", "must not have a query or fragment"),
        ("https://news.example.org:99999/", "port must be a number from 1 to 65535"),
        ("https://news.example.org/my feeds/", "must not contain spaces"),
        ("https://ann:secret@news.example.org/", "must not hold a user name or password"),
    ],
    ids=["scheme", "no-scheme", "no-host", "query", "fragment", "port", "space", "password"],
)
def test_a_bad_base_url_is_one_config_error(app: App, base_url: str, message: str) -> None:
    for make in (
        lambda: Settings.from_env({"AGGREGATOR_BASE_URL": base_url}),
        lambda: FeedServer(app, base_url=base_url),
    ):
        with pytest.raises(ConfigError, match=message) as bad:
            make()
        assert "secret" not in str(bad.value)


def test_base_url_setting_flag_beats_environment() -> None:
    env = {"AGGREGATOR_BASE_URL": "https://env.example/"}
    assert Settings.from_env(env).base_url == "https://env.example/"
    assert Settings.from_env(env, base_url=PUBLIC).base_url == PUBLIC
    assert Settings.from_env({}).base_url is None


def test_serve_command_takes_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real command: ``--base-url`` beats AGGREGATOR_BASE_URL, and a bad one is one
    line on stderr and exit status 2 (the CLI's main in this process, tests/clirun.py: it
    ends before serving; the server that serves is a process, stopped by SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env["AGGREGATOR_BASE_URL"] = "https://env.example/"
    serve = ["--data-dir", str(tmp_path), "serve", "--port", "0"]
    bad = in_process(monkeypatch, capfd)(env, *serve, "--base-url", "ftp://x/", timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == "error: base URL 'ftp://x/' must start with http:// or https://\n"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *serve, "--base-url", PUBLIC],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "serve did not start"
        line = proc.stderr.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        address = line.split("http://", 1)[1].strip().rstrip("/")
        conn = http.client.HTTPConnection(address, timeout=10)
        conn.request("GET", "/feed.json")
        assert json.loads(conn.getresponse().read())["feed_url"] == PUBLIC + "feed.json"
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- idle and slow clients ---------------------------------------------------------------


def test_an_idle_client_is_disconnected_within_the_timeout(app: App) -> None:
    with FeedServer(app, timeout=1.0) as srv, _connect(srv) as idle:
        waited = _closed_after(idle, limit=5)
        assert 0.8 <= waited < 3, waited
        assert _request(srv, "/feed.atom")[0] == 200


def test_a_dribbling_client_is_disconnected_within_the_timeout(app: App) -> None:
    """A byte every 0.2 s resets any per-read timeout; one deadline for the whole request
    head ends the connection anyway."""
    with FeedServer(app, timeout=1.0) as srv, _connect(srv) as slow:
        start = time.monotonic()
        slow.sendall(b"GET /feed.atom HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        closed = False
        while time.monotonic() - start < 8 and not closed:
            readable, _, _ = select.select([slow], [], [], 0.2)
            if readable:
                try:
                    closed = slow.recv(1024) == b""
                except ConnectionResetError:
                    closed = True
            else:
                try:
                    slow.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
        waited = time.monotonic() - start
    assert closed, "a dribbling client kept its connection for 8 s"
    assert waited < 3, waited


def test_a_kept_alive_connection_serves_requests_then_is_dropped_when_idle(app: App) -> None:
    with FeedServer(app, timeout=1.0) as srv:
        host, port = srv.httpd.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        for _ in range(3):  # each request gets the whole timeout again
            conn.request("GET", "/feed.rss")
            resp = conn.getresponse()
            assert (resp.status, resp.will_close) == (200, False)
            resp.read()
            time.sleep(0.6)
        assert conn.sock is not None
        _closed_after(conn.sock, limit=5)
        conn.close()


def test_connections_beyond_the_limit_get_503_until_slots_free(app: App) -> None:
    """Three idle clients fill a server of three: the next request is answered within a
    moment (BUSY_WAIT_S), 503 with Retry-After (the timeout, within which an idle client
    is dropped), not left waiting behind them; once they are dropped, requests are served
    again."""
    with FeedServer(app, timeout=1.0, max_connections=3) as srv:
        idle = [_connect(srv) for _ in range(3)]
        try:
            # Accepted in order: by the time the request's connection is, they all are.
            start = time.monotonic()
            status, headers, body = _request(srv, "/feed.atom")
            assert time.monotonic() - start < 1.0  # before the idle ones are dropped
            assert (status, headers["Retry-After"], headers["Connection"]) == (503, "1", "close")
            assert body == b"too many connections; try again shortly\n"
            for sock in idle:
                _closed_after(sock, limit=5)
        finally:
            for sock in idle:
                sock.close()
        assert _request(srv, "/feed.atom")[0] == 200


def test_slots_are_given_back(app: App) -> None:
    """A server of one serves request after request, and concurrent ones get an answer
    each: 200, or 503 while the slot is taken."""
    with FeedServer(app, max_connections=1) as srv:
        assert [_request(srv, "/feed.json")[0] for _ in range(10)] == [200] * 10
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(_request(srv, "/feed.atom")[0]))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(statuses) == 8 and set(statuses) <= {200, 503} and 200 in statuses
        assert _request(srv, "/feed.json")[0] == 200


# --- Last-Modified and If-Modified-Since -------------------------------------------------

STORED = "Sat, 28 Nov 2026 12:00:30 GMT"  # NOW in whole seconds


def test_last_modified_and_if_modified_since(app: App) -> None:
    with FeedServer(app) as srv:
        status, headers, body = _request(srv, "/feed.atom")
        assert (status, headers["Last-Modified"]) == (200, STORED)
        etag = headers["ETag"]
        for since in (
            STORED,
            "Sat, 28 Nov 2026 12:00:31 GMT",  # later: nothing newer either
            "Saturday, 28-Nov-26 12:00:30 GMT",  # RFC 850, obsolete but to be read
            "Sat Nov 28 12:00:30 2026",  # asctime
        ):
            status, headers, body = _request(srv, "/feed.atom", ("If-Modified-Since", since))
            assert (status, body) == (304, b""), since
            assert (headers["ETag"], headers["Last-Modified"]) == (etag, STORED)
        status, _, body = _request(srv, "/feed.atom", ("If-Modified-Since", STORED), method="HEAD")
        assert (status, body) == (304, b"")
        for headers_sent in (
            [("If-Modified-Since", "Sat, 28 Nov 2026 12:00:29 GMT")],  # one second older
            [("If-Modified-Since", "yesterday")],  # not a date: ignored
            [("If-Modified-Since", "Sat, 31 Nov 2026 12:00:30 GMT")],
            [("If-Modified-Since", "Sat, 28 Nov 99999999999 12:00:30 GMT")],  # past 9999
            [("If-Modified-Since", STORED), ("If-Modified-Since", STORED)],  # two: ignored
            # If-None-Match decides when present, even against a date that would match
            [("If-None-Match", '"other"'), ("If-Modified-Since", STORED)],
        ):
            status, _, body = _request(srv, "/feed.atom", *headers_sent)
            assert status == 200 and b"KSK rollover" in body, headers_sent
        status, _, _ = _request(
            srv,
            "/feed.atom",
            ("If-None-Match", etag),
            ("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        )
        assert status == 304
        # an error is an error, validators or not
        status, _, _ = _request(srv, "/feed.atom?topic=Gardening", ("If-Modified-Since", STORED))
        assert status == 404  # no such topic


def test_a_story_dated_earlier_but_stored_later_is_not_hidden_by_a_304(
    app: App, clock: Clock
) -> None:
    """A merged feed gains stories dated before its newest one (another feed polled an
    hour late). The feed's date does not move, but Last-Modified does, so a client that
    keeps only the date still gets the story."""
    with FeedServer(app) as srv:
        status, headers, body = _request(srv, "/feed.atom")
        updated = feedparser.parse(body).feed.updated
        clock.at = NOW + timedelta(hours=1)
        _store_stories(
            app, "https://b.example/feed", [("3", "https://b.example/3", "Late")], day=26
        )
        status, headers, body = _request(
            srv, "/feed.atom", ("If-Modified-Since", headers["Last-Modified"])
        )
    assert status == 200
    assert b"Late" in body
    assert feedparser.parse(body).feed.updated == updated  # the newest story is still that
    assert headers["Last-Modified"] == "Sat, 28 Nov 2026 13:00:30 GMT"


def test_last_modified_is_never_in_the_future_nor_given_for_no_stories(
    tmp_path: Path, clock: Clock
) -> None:
    with (
        make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as app,
        FeedServer(app) as srv,
    ):
        status, headers, _ = _request(srv, "/feed.json", ("If-Modified-Since", STORED))
        assert (status, headers["Last-Modified"]) == (200, None)
        _store_stories(app, "https://a.example/feed", [("1", None, "Soon")], day=29)
        status, headers, _ = _request(srv, "/feed.json")
    assert headers["Last-Modified"] == STORED  # the story says tomorrow; the clock, now


def _store_copies(
    app: App, feed_url: str, stories: list[tuple[str, str, str]], *, day: int
) -> None:
    """``(key, link, title)`` rows whose link is their canonical URL, so a story another
    feed carried under that URL joins its cluster: one more source."""
    rows: list[tuple[str, str | None, str]] = list(stories)
    _store_stories(app, feed_url, rows, day=day, name=feed_url, canonical=True)


def test_a_page_changed_by_stories_stored_off_it_is_not_answered_304(
    tmp_path: Path, clock: Clock
) -> None:
    """A later page (``offset``) moves when a newer story is stored, and a page by
    ``sort=sources`` when another feed carries one of the stories: their content changes
    while no story on them was stored since. Their Last-Modified, the newest date of the
    stories shown, stayed put, and a client sending If-Modified-Since got 304 for a page
    that now holds other stories. They have no Last-Modified (the ETag still validates)."""
    with (
        make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as app,
        FeedServer(app) as srv,
    ):
        _store_copies(
            app,
            "https://a.example/feed",
            [("1", "https://x.example/1", "KSK rollover"), ("2", "https://x.example/2", "Glue")],
            day=27,
        )
        pages = {"/feed.atom?limit=1&offset=1": "Glue", "/feed.atom?sort=sources&limit=1": "KSK"}
        before: dict[str, str | None] = {}
        for path, later in pages.items():
            status, headers, body = _request(srv, path)
            assert status == 200 and later.encode() not in body, path
            before[path] = headers["Last-Modified"]
        assert _request(srv, "/feed.atom?limit=1")[1]["Last-Modified"] == STORED  # page 1
        clock.at = NOW + timedelta(hours=1)
        # a newer story (every later page moves one down) and a second source for KSK
        _store_copies(app, "https://b.example/feed", [("3", "https://x.example/3", "Zone")], day=28)
        _store_copies(
            app, "https://c.example/feed", [("4", "https://x.example/1", "KSK rollover")], day=26
        )
        for path, later in pages.items():
            since = before[path] or STORED  # what it said, or what it would have said
            status, headers, body = _request(srv, path, ("If-Modified-Since", since))
            assert status == 200 and later.encode() in body, path
            assert headers["Last-Modified"] is None, path
            status, _, _ = _request(srv, path, ("If-None-Match", headers["ETag"]))
            assert status == 304, path


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_a_feed_without_stories_keeps_its_etag_as_the_clock_moves(
    app: App, clock: Clock, fmt: str
) -> None:
    """A topic no story has yet: its Atom ``<updated>`` and RSS ``<lastBuildDate>`` were
    the time of the request, so the body and its ETag changed every second and a reader
    polling it got 200 forever instead of 304. They are the time the server started."""
    path = f"/feed.{fmt}?topic=Email"
    with FeedServer(app) as srv:
        status, headers, body = _request(srv, path)
        assert status == 200 and b"<item>" not in body and b"<entry>" not in body
        clock.at = NOW + timedelta(hours=1)
        status, again, _ = _request(srv, path, ("If-None-Match", headers["ETag"]))
        assert (status, again["ETag"]) == (304, headers["ETag"])


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_304_does_not_say_its_representation_is_empty(app: App, encoding: str) -> None:
    """RFC 9110 §8.6: a 304 may carry Content-Length only as the 200 would have it. It
    said 0, and a cache that takes a 304's fields into its stored response (as RFC 7234
    had them do) then held a feed of zero bytes. Kept-alive connections go on serving."""
    with FeedServer(app) as srv:
        sent = ("Accept-Encoding", encoding)
        status, headers, body = _request(srv, "/feed.atom", sent)
        assert status == 200 and headers.get("Content-Encoding") == (
            "gzip" if encoding == "gzip" else None
        )
        host, port = srv.httpd.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        try:
            for _ in range(2):
                conn.request(
                    "GET", "/feed.atom", headers={"If-None-Match": headers["ETag"], **dict([sent])}
                )
                r = conn.getresponse()
                assert (r.status, r.read()) == (304, b"")
                assert r.getheader("Content-Length") in (None, str(len(body)))
            conn.request("GET", "/feed.atom", headers=dict([sent]))
            r = conn.getresponse()
            assert (r.status, len(r.read())) == (200, len(body))
        finally:
            conn.close()


def test_list_fields_sent_on_several_lines_are_read_whole(app: App) -> None:
    """If-None-Match and Accept-Encoding are lists, which a client or proxy may send as
    several field lines (RFC 9110 §5.3: the same as one line joined by commas). Only the
    first line was read: a cache offering two stored ETags, ours on the second line, got
    200 for a feed that had not changed, and gzip named on a second line was not sent."""
    with FeedServer(app) as srv:
        _, headers, _ = _request(srv, "/feed.atom")
        status, _, _ = _request(
            srv, "/feed.atom", ("If-None-Match", '"other"'), ("If-None-Match", headers["ETag"])
        )
        assert status == 304
        status, zipped, _ = _request(
            srv, "/feed.atom", ("Accept-Encoding", "br"), ("Accept-Encoding", "gzip")
        )
        assert (status, zipped["Content-Encoding"]) == (200, "gzip")
