"""Fetching and what a poll makes of its answers, session 28: end to end with a real HTTP
server on 127.0.0.1, real SQLite files (and the local PostgreSQL where the SQL matters)
and the App's clock injected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clockedapp import Clock
from httpserver import LocalServer
from test_http11 import Scripted

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, FetchOptions
from aggregator.types import CacheState, FetchResult


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


def _app(tmp_path: Path, clock: Clock, database_url: str | None = None) -> App:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=database_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=5,
        workers=1,
    )
    return make_app(s, now=clock)


@pytest.fixture
def app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    with _app(tmp_path, clock, db_url) as a:
        yield a


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
    b"<item><title>one</title><guid>g1</guid></item></channel></rss>"
)
#: Not well-formed (a bare "&"), its item recoverable: stored, with a warning.
RECOVERABLE = RSS.replace(b"<title>one</title>", b"<title>A & B</title>")


def _feed_error(app: App) -> str | None:
    [feed] = app.feeds()
    return feed.last_error


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize("validator", ["etag", "none"], ids=["304", "same-body"])
def test_a_documents_warning_comes_back_after_a_failed_poll(
    app: App, server: LocalServer, clock: Clock, validator: str
) -> None:
    """A recoverable, not well-formed feed shows its problem as ``last_error`` for as long
    as the document stays the same (session 27). A poll that failed in between (a 500,
    a timeout) replaced it with the error, and the next 304, or the same body again,
    cleared that: the warning was gone for good although the document was still the
    broken one, and nothing but a change of the document could bring it back (a 304
    says nothing of the document)."""
    etag = '"v1"' if validator == "etag" else None
    url = server.route("/recoverable.xml", body=RECOVERABLE, etag=etag)
    app.add_feed(url, discover=False)
    [first] = app.update_due()
    assert first.status == "ok"
    warning = _feed_error(app)
    assert warning is not None and "not well-formed" in warning
    server.route("/recoverable.xml", status=500, body=b"oops", content_type="text/plain")
    clock.t += timedelta(days=1)
    [failed] = app.update_due()
    assert failed.status == "error" and "500" in (_feed_error(app) or "")
    server.route("/recoverable.xml", body=RECOVERABLE, etag=etag)
    clock.t += timedelta(days=1)
    [again] = app.update_due()
    assert again.status == ("not_modified" if validator == "etag" else "unchanged")
    assert _feed_error(app) == warning
    # and a document that parses cleanly still ends it
    server.route("/recoverable.xml", body=RSS, etag='"v2"' if etag else None)
    clock.t += timedelta(days=1)
    [fixed] = app.update_due()
    assert fixed.status == "ok" and _feed_error(app) is None
    server.route("/recoverable.xml", status=500, body=b"oops", content_type="text/plain")
    clock.t += timedelta(days=1)
    assert [r.status for r in app.update_due()] == ["error"]
    server.route("/recoverable.xml", body=RSS, etag='"v2"' if etag else None)
    clock.t += timedelta(days=1)
    [clean] = app.update_due()
    assert clean.status == ("not_modified" if validator == "etag" else "unchanged")
    assert _feed_error(app) is None


def test_migration_26_keeps_the_warnings_a_304_would_have_kept(db_url: str) -> None:
    """A database from before ``feed.warnings``: a feed whose ``last_error`` holds its
    document's warnings (its last check a success) keeps them for the next 304; a
    feed's error is no warning."""
    from sqlalchemy import text, update

    from aggregator.store import open_store
    from aggregator.store.tables import FeedRow, table
    from aggregator.types import FeedSource

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    st = open_store(db_url)
    try:
        warned = st.add_feed(FeedSource(url="https://warned.example/feed"), now)[0].id
        failing = st.add_feed(FeedSource(url="https://failing.example/feed"), now)[0].id
        feed = table(FeedRow)
        with st.engine.begin() as c:  # a version-25 database
            c.execute(
                update(feed)
                .where(feed.c.id == warned)
                .values(last_error="not well-formed", last_check=now, last_success=now)
            )
            c.execute(
                update(feed)
                .where(feed.c.id == failing)
                .values(
                    last_error="HTTP 500",
                    error_count=1,
                    last_check=now,
                    last_success=now - timedelta(days=1),
                )
            )
            c.execute(text("ALTER TABLE feed DROP COLUMN warnings"))
            c.execute(text("DELETE FROM schema_version WHERE version = 26"))
    finally:
        st.close()
    st = open_store(db_url)
    try:
        assert st.get_feed(warned).warnings == "not well-formed"
        assert st.get_feed(failing).warnings is None
    finally:
        st.close()


# --------------------------------------------------------------------------- caching hints


def _fetch(url: str, cache: CacheState | None = None) -> FetchResult:
    async def main() -> FetchResult:
        options = FetchOptions(allowed_networks=("127.0.0.1/32",), timeout=5.0)
        async with Fetcher(options) as fetcher:
            return await fetcher.fetch(url, cache)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        pytest.param('max-age=7200, no-cache="Set-Cookie"', 7200, id="qualified"),
        pytest.param('no-cache="set-cookie", max-age=7200', 7200, id="qualified-first"),
        pytest.param("no-cache=Set-Cookie, max-age=7200", 7200, id="unquoted"),
        pytest.param("max-age=7200, no-cache", 0, id="unqualified"),
        pytest.param('max-age=7200, no-cache=""', 0, id="no-fields"),
    ],
)
def test_a_no_cache_naming_fields_keeps_the_max_age(
    server: LocalServer, cache_control: str, seconds: int
) -> None:
    """``no-cache`` with field names (``no-cache="Set-Cookie"``, which AWS load balancers
    add to every response that sets their cookie) asks a cache to revalidate only those
    fields (RFC 9111 §5.2.2.4, the qualified form); the response itself stays fresh for
    its max-age. It was read as a bare ``no-cache``: no freshness at all, and the
    publisher's hint of how often to come back was lost."""
    url = server.route("/feed.xml", body=RSS, headers={"Cache-Control": cache_control})
    assert _fetch(url).max_age == timedelta(seconds=seconds)


# --------------------------------------------------------------------------- keep-alive


def _answer(status: bytes, body: bytes, close: bool = False) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body)
    return head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body


def test_a_408_on_a_kept_alive_connection_is_its_close_and_the_request_goes_again() -> None:
    """A server whose keep-alive timeout ends an idle connection may say so with a 408
    Request Timeout before closing it; when our next request on that connection
    crossed it on the wire, the 408 is the server's
    close, not an answer to the request, and the request goes out again on a new
    connection, as for a connection found closed (Chromium and Go do the same). It was
    recorded as the feed's error, "HTTP 408 Request Timeout"."""

    async def main() -> tuple[list[Any], Scripted]:
        answers = [
            _answer(b"408 Request Timeout", b"", close=True) + Scripted.CLOSE,
            _answer(b"200 OK", RSS),
            _answer(b"408 Request Timeout", b"", close=True) + Scripted.CLOSE,
            _answer(b"200 OK", RSS),
        ]
        async with Scripted(answers) as server:
            options = FetchOptions(allowed_networks=("127.0.0.1/32",), timeout=5.0)
            out: list[Any] = []
            async with Fetcher(options) as fetcher:
                for path in ("/a.xml", "/b.xml", "/c.xml"):
                    try:
                        out.append(await fetcher.fetch(server.url + path))
                    except FetchError as e:
                        out.append(e)
            return out, server

    got, server = asyncio.run(main())
    # on a new connection a 408 is the server's answer to the request
    assert isinstance(got[0], FetchError) and got[0].http_status == 408
    assert [(r.http_status, r.body) for r in got[1:]] == [(200, RSS), (200, RSS)]
    assert server.connections == 3
    paths = [r.split(b" ")[1] for r in server.requests]
    assert paths == [b"/a.xml", b"/b.xml", b"/c.xml", b"/c.xml"]  # /c.xml twice: retried


# --------------------------------------------------------------------------- framing


def test_transfer_encoding_identity_leaves_the_content_length_framing(
    server: LocalServer,
) -> None:
    """``Transfer-Encoding: identity`` (RFC 2616's name for no transfer coding, still sent
    by old servers and proxies) is no transfer coding, and the body is the
    Content-Length's (RFC 2616 §4.4). It was taken for a Transfer-Encoding all the same,
    which set the Content-Length aside: the body ran to the close, and a keep-alive
    server never closes, so the fetch waited for its read timeout and failed the feed."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
    url = server.route(
        "/identity.xml",
        raw=head + b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n\r\n" % len(RSS) + RSS,
        hang=True,  # the connection stays open, as a keep-alive server's does
    )
    started = time.monotonic()
    result = _fetch(url)
    assert (result.http_status, result.body) == (200, RSS)
    assert time.monotonic() - started < 2
